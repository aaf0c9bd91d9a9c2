"""``corenas search`` and ``corenas resume``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from corenas.config import compose, run_multirun, sweep_combinations
from corenas.engine import (
    JobSummary,
    Stage2Request,
    plan_resume,
    plan_search,
    resume_search,
    start_search,
)
from corenas.errors import ConfigError, CorenasError
from corenas.plugins import Plugins, get_plugins
from corenas.records import JobStatus


def _plugins_for(cfg: DictConfig, args: argparse.Namespace) -> Plugins:
    return get_plugins(list(cfg.plugins.block), args.config_dir)


def print_summary(summary: JobSummary, top: int = 5) -> None:
    """Counts, savings, the top trials by reward (with the metrics the reward reads), the best
    architecture in full, stage-2 results and where the job lives."""
    from corenas.cli.tables import reward_metrics, trials_table
    from corenas.engine import best_trials
    from corenas.jobdir import open_job_store

    counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n)
    print(f"\n{summary.status.value}: {counts or 'no trials'} in {summary.elapsed_s:.1f} s")
    if summary.trainings_saved:
        print(f"pre-filter: {summary.trainings_saved} infeasible architectures were not trained")
    if summary.measurements_reused:
        print(
            f"hardware: {summary.measurements_reused} measurements reused from the job's cache "
            "(architectures measured before)"
        )
    if summary.stopped_early:
        print(
            f"early stopping: {summary.stopped_early} trials stopped, about "
            f"{summary.trial_hours_saved:.3f} trial-hours saved"
        )
    if summary.message:
        print(summary.message)
    store = open_job_store(Path(summary.job_dir), get_plugins())
    try:
        best = best_trials(store, top)
        job = store.job()
    finally:
        store.close()
    config = job.config if job is not None else {}
    if best:
        columns = reward_metrics(config, [*best, *summary.stage2])
        print(f"\ntop {len(best)} by reward:")
        print(trials_table(best, genome_width=70, metrics=columns))
        winner = best[0]
        shown = ", ".join(f"{k} {winner.metrics[k]:.6g}" for k in columns)
        print(
            f"\nbest: trial {winner.id}, reward {winner.reward:.6g}"
            + (f", {shown}" if shown else "")
        )
        print(f"  architecture: {json.dumps(winner.genome, separators=(',', ':'))}")
    if summary.stage2:
        columns = reward_metrics(config, summary.stage2)
        print(f"\nstage 2 ({len(summary.stage2)} retrainings; parent = the search trial):")
        print(trials_table(summary.stage2, genome_width=50, metrics=columns))
    print(f"\njob dir: {summary.job_dir}")


def exit_code(summary: JobSummary) -> int:
    return {JobStatus.COMPLETED: 0, JobStatus.STOPPED: 130, JobStatus.FAILED: 1}.get(
        summary.status, 1
    )


def _announce(job_dir: Path) -> None:
    print(f"corenas: searching in {job_dir}", file=sys.stderr)


def _search(args: argparse.Namespace) -> int:
    plugins = get_plugins(config_dirs=args.config_dir)
    if args.multirun and args.show_config:
        for number, combo in enumerate(sweep_combinations(args.overrides)):
            cfg = compose(plugins, combo)
            cfg.job_dir = str(Path(str(cfg.job_dir)) / str(number))  # where the job will run
            print(f"# job {number}: {' '.join(combo)}")
            print(OmegaConf.to_yaml(cfg), end="")
        return 0
    if args.multirun:
        return _multirun(args, plugins)
    cfg = compose(plugins, args.overrides)
    plugins = _plugins_for(cfg, args)
    if args.show_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return 0
    job_dir = Path(str(cfg.job_dir))
    prepared = plan_search(cfg, plugins, job_dir)
    summary = start_search(cfg, plugins, job_dir, not args.no_progress, prepared, _announce)
    print_summary(summary)
    return exit_code(summary)


def _multirun(args: argparse.Namespace, plugins: Plugins) -> int:
    combos = sweep_combinations(args.overrides)
    custom_sweeper = any(o.split("=")[0].lstrip("+") == "hydra/sweeper" for o in args.overrides)
    if not custom_sweeper:  # validate every job before the first one starts
        for number, combo in enumerate(combos):
            cfg = compose(plugins, combo)
            plan_search(cfg, _plugins_for(cfg, args), Path(str(cfg.job_dir)) / str(number))
    swept = swept_keys(args.overrides)

    def task(cfg: DictConfig, job_dir: str) -> dict[str, str]:
        label = " ".join(o for o in task_overrides() if o.split("=")[0] in swept)
        print(f"\n[multirun] {label} -> {job_dir}", file=sys.stderr)
        try:
            summary = start_search(
                cfg, _plugins_for(cfg, args), Path(job_dir), progress=not args.no_progress
            )
        except CorenasError as exc:
            print(f"corenas search: error: {exc}", file=sys.stderr)
            return {"job_dir": job_dir, "status": "error", "label": label}
        print_summary(summary, top=3)
        return {"job_dir": job_dir, "status": summary.status.value, "label": label}

    results = run_multirun(plugins, args.overrides, task)
    completed = [r for r in results if r["status"] == JobStatus.COMPLETED.value]
    print(f"\nmultirun: {len(completed)} of {len(results)} searches completed")
    for result in results:
        print(f"  {result['status']:<10} {result['label']}  {result['job_dir']}")
    return 0 if len(completed) == len(results) else 1


def task_overrides() -> list[str]:
    """The overrides of the multirun job being run (Hydra's record of them)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task)


def swept_keys(overrides: list[str]) -> set[str]:
    """Keys that a multirun sweeps (``seed=0,1`` -> ``seed``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.get_key_element() for o in parsed if o.is_sweep_override()}


def _resume(args: argparse.Namespace) -> int:
    plugins = get_plugins()
    job_dir = Path(args.job_dir)
    prepared = plan_resume(job_dir, list(args.overrides), plugins)

    def announce(path: Path) -> None:
        print(f"corenas: resuming {path}", file=sys.stderr)

    summary = resume_search(
        job_dir, list(args.overrides), plugins, not args.no_progress, prepared, announce
    )
    print_summary(summary)
    return exit_code(summary)


def _train(args: argparse.Namespace) -> int:
    plugins = get_plugins()
    job_dir = Path(args.job_dir)
    if args.top is not None and args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    ids: list[int] | None = None
    if args.trials is not None:
        try:
            ids = [int(part) for part in args.trials.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"--trials '{args.trials}' is not a list of trial ids; write e.g. --trials 3,17"
            ) from None
        if not ids:
            raise ConfigError("--trials names no trial; write e.g. --trials 3,17")
    prepared = plan_resume(job_dir, list(args.overrides), plugins)

    def announce(path: Path) -> None:
        print(f"corenas: stage 2 in {path}", file=sys.stderr)

    summary = resume_search(
        job_dir,
        list(args.overrides),
        plugins,
        not args.no_progress,
        prepared,
        announce,
        retrain=Stage2Request(top=args.top or 0, trial_ids=ids),
    )
    print_summary(summary)
    return exit_code(summary)


def run(args: argparse.Namespace) -> int:
    if args.command == "resume":
        return _resume(args)
    if args.command == "train":
        return _train(args)
    return _search(args)
