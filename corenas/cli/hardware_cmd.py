"""``corenas hardware profile | show``: latency lookup tables for ``hardware=lut``
(docs/latency-predictor.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from corenas.cli.choices import input_spec, load_backend, load_space
from corenas.cli.tables import render_table
from corenas.errors import ConfigError
from corenas.hardware.lut import (
    LatencyTable,
    ProfileProgress,
    describe_spec,
    profile_space,
    read_table,
    write_table,
)
from corenas.plugins import Plugins, get_plugins


def _output_path(args: argparse.Namespace, label: str, backend: str) -> Path:
    path = Path(args.out or f"latency-{label}-{backend}.json")
    if path.is_dir():
        raise ConfigError(f"--out '{path}' is a directory; give the table's file name")
    if not path.parent.is_dir():
        raise ConfigError(f"--out '{path}': directory '{path.parent}' does not exist; create it")
    return path


def _summary(table: LatencyTable, path: str) -> dict[str, Any]:
    """The table's header, calibration, quality and profile, without its per-layer entries and
    per-architecture points (their count instead)."""
    data = table.to_json()
    calibration = {k: v for k, v in data["calibration"].items() if k != "points"}
    data.update(calibration=calibration, entries=len(table.entries), path=path)
    data.pop("evaluation")
    return data


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _report_lines(table: LatencyTable) -> list[str]:
    """The human-readable account of a table: what was profiled, calibration, quality."""
    space, backend, quality, profile = table.space, table.backend, table.quality, table.profile
    space_params = _params_text(space.get("params") or {})
    lines = [
        f"space {space.get('name', '?')}"
        + (f" ({space_params})" if space_params else "")
        + f" on hardware {backend.get('name', '?')} ({_params_text(backend.get('params') or {})})"
        + f", input {describe_spec(table.input_spec)}",
        f"distinct layers: {len(table.entries)} ({profile.get('architectures_sampled', '?')} "
        f"architectures sampled; stopped: {profile.get('stopped', '?')})",
        f"calibration: latency_ms = {table.calibration.intercept_ms:.4f} + "
        f"{table.calibration.slope:.4f} x sum of layer latencies (fitted on "
        f"{table.calibration.architectures} architectures measured for real)",
    ]
    if profile.get("failed_architectures"):
        lines.append(
            f"skipped {profile['failed_architectures']} architectures that failed to build or "
            f"run; first: {profile.get('first_failure')}"
        )
    if profile.get("added_during_evaluation"):
        lines.append(
            f"{profile['added_during_evaluation']} layers first seen in the evaluation set were "
            "timed and added (raise --patience to find them while sampling)"
        )
    lines.append(
        f"prediction quality on {quality.get('architectures', 0)} random architectures "
        "measured for real (none used for calibration):"
    )
    rows = [
        [
            "lut (calibrated layer sum)",
            _number(quality.get("spearman")),
            _number(quality.get("kendall_tau_b")),
            _number(quality.get("mape_pct"), 1),
        ],
        [
            "macs (for comparison)",
            _number(quality.get("macs_spearman")),
            _number(quality.get("macs_kendall_tau_b")),
            "-",
        ],
    ]
    lines.append(render_table(["predictor", "spearman", "kendall_tau_b", "mape_pct"], rows))
    phases = profile.get("phase_seconds") or {}
    if "seconds" in profile:
        detail = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in phases.items())
        lines.append(
            f"profile time: {profile['seconds']:.1f} s" + (f" ({detail})" if detail else "")
        )
    machine = table.machine
    lines.append(
        f"profiled {table.created or '?'} with torch {table.torch_version or '?'} on "
        f"{machine.get('processor') or machine.get('platform') or '?'} "
        f"({machine.get('cpu_count', '?')} CPUs)"
    )
    return lines


def _profile(args: argparse.Namespace, plugins: Plugins) -> int:
    if args.backend == "none":
        raise ConfigError("hardware profile: --backend none times nothing; use --backend cpu")
    chosen = load_space(plugins, args.space, args.overrides, args.data)
    backend = load_backend(plugins, args.backend, args.set)
    spec = input_spec(backend, chosen, args.input_shape, args.batch_size)
    path = _output_path(args, args.space, backend.registered)
    progress = ProfileProgress(enabled=not args.no_progress)
    try:
        table = profile_space(
            chosen.space,
            backend.backend,
            spec,
            args.samples,
            calibration=args.calibration,
            patience=args.patience,
            max_architectures=args.max_architectures,
            seed=args.seed,
            rounds=args.rounds,
            backend_name=backend.registered,
            space_info=chosen.to_json(),
            backend_info=backend.to_json(),
            progress=progress,
        )
    finally:
        progress.close()
    write_table(table, path)
    if args.format == "json":
        print(json.dumps(_summary(table, str(path)), indent=2))
        return 0
    for line in _report_lines(table):
        print(line)
    print(f"table written to {path}  (use it: hardware=lut hardware.table={path})")
    return 0


def _show(args: argparse.Namespace) -> int:
    table = read_table(args.table)
    if args.format == "json":
        summary = _summary(table, args.table)
        if args.entries:
            summary["entries"] = table.entries
        print(json.dumps(summary, indent=2))
        return 0
    print(f"latency table {args.table}: {len(table.entries)} layers")
    for line in _report_lines(table):
        print(line)
    if args.entries:
        ordered = sorted(table.entries.items(), key=lambda item: -item[1])
        print(render_table(["ms", "layer"], [[f"{ms:.4f}", key] for key, ms in ordered]))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.hardware_command == "show":
        return _show(args)
    return _profile(args, get_plugins(config_dirs=args.config_dir))
