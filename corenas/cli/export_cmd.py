"""``corenas export``: write chosen trials of a job as loadable models with their genome."""

from __future__ import annotations

import argparse
from pathlib import Path

from corenas.errors import ConfigError
from corenas.export import FORMATS, INITIALISED, TRAINED, ExportedTrial, export_trials


def _count(text: str | None, option: str) -> int | None:
    """``text`` of ``option`` as an int (None stays None); ``ConfigError`` if it is none."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} takes a whole number, got '{text}'") from None


def _describe(item: ExportedTrial) -> str:
    notes = [f"weights: {item.weights}"]
    if item.weights == INITIALISED:
        notes[0] += ", no trained checkpoint of this trial: seeded as its training began"
    if item.ranked_as is not None:
        notes.append(f"the stage-2 retraining of search trial {item.ranked_as}")
    return f"trial {item.trial.id} -> {item.directory} ({'; '.join(notes)})"


def run(args: argparse.Namespace) -> int:
    trial_id = _count(args.trial, "--trial")
    top = _count(args.top, "--top")
    if args.format is None:
        raise ConfigError(f"--format is required: one of {', '.join(FORMATS)}")
    exported = export_trials(
        Path(args.job_dir),
        args.format,
        trial_id=trial_id,
        top=top,
        out=Path(args.out) if args.out else None,
    )
    for item in exported:
        print(_describe(item))
    trained = sum(item.weights == TRAINED for item in exported)
    print(f"exported {len(exported)} trial(s) as {args.format}, {trained} with trained weights")
    return 0
