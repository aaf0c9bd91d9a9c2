"""``corenas plot``: PNGs of a job's reward curve, metric scatter and top-k decision values."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corenas.analysis_plots import write_job_plots
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins

PLOTS_DIR = "plots"
"""Default output folder, inside the job directory."""


def run(args: argparse.Namespace) -> int:
    """Read the job's store (safe while it runs), write the plots, print each path written on
    stdout and notes on stderr."""
    job_dir = Path(args.job_dir)
    store = open_job_store(job_dir, get_plugins())
    try:
        job = store.job()
        trials = store.trials()
    finally:
        store.close()
    assert job is not None
    out_dir = Path(args.out) if args.out else job_dir / PLOTS_DIR
    report = write_job_plots(trials, job.config, out_dir, top_k=args.top, x=args.x, y=args.y)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in report.paths:
        print(path)
    return 0
