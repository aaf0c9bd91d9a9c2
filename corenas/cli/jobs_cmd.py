"""``corenas status | stop | trials | best``: read a job's store (safe while it runs)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

from corenas.cli.tables import render_table, short, trials_table
from corenas.engine import best_trials
from corenas.errors import ConfigError, StoreError
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import SEARCH_STAGE, TRAIN_STAGE, JobStatus, Trial, TrialStatus
from corenas.store.base import Store


def _open(job_dir: str) -> Store:
    return open_job_store(Path(job_dir), get_plugins())


def _status(args: argparse.Namespace) -> int:
    store = _open(args.job_dir)
    try:
        job = store.job()
        assert job is not None
        counts = {s.value: n for s, n in store.counts().items()}
        best = best_trials(store, 1)
        driver = store.driver()
    finally:
        store.close()
    search = job.config.get("search", {})
    status = job.status.value
    if job.status is JobStatus.RUNNING and driver is None:
        status = "interrupted"  # marked running, but no driver holds the lock: it crashed
    data = {
        "job_dir": str(Path(args.job_dir).absolute()),
        "status": status,
        "driver": driver,
        "max_trials": search.get("max_trials"),
        "counts": counts,
        "best": best[0].to_json() if best else None,
    }
    if args.format == "json":
        print(json.dumps(data, indent=2))
        return 0
    print(f"job {data['job_dir']}: {status}" + (f" (driver: {driver})" if driver else ""))
    if status == "interrupted":
        print(f"its driver died; continue with `corenas resume {args.job_dir}`")
    print(render_table(["status", "trials"], [[k, v] for k, v in counts.items()]))
    if best:
        print(f"best: trial {best[0].id} reward {best[0].reward:.6g}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    store = _open(args.job_dir)
    try:
        owner = store.driver()
    finally:
        store.close()
    if owner is None:
        raise ConfigError(f"no search is running in '{args.job_dir}' (its driver lock is free)")
    match = re.fullmatch(r"pid (\d+) on (\S+)", owner)
    if match is None:
        raise ConfigError(f"cannot tell the driver's process from its lock ('{owner}')")
    pid, host = int(match.group(1)), match.group(2)
    if host != socket.gethostname():
        raise ConfigError(f"the driver runs on {host} ({owner}); run `corenas stop` there")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise ConfigError(f"the driver of '{args.job_dir}' ({owner}) has exited") from None
    print(
        f"sent SIGTERM to the driver ({owner}): it stops now, running trials are requeued "
        f"and re-run by `corenas resume {args.job_dir}`"
    )
    return 0


def _trials(args: argparse.Namespace) -> int:
    store = _open(args.job_dir)
    try:
        if args.trials_command == "show":
            return _show(store, args)
        status = None
        if args.status:
            try:
                status = TrialStatus(args.status)
            except ValueError:
                allowed = ", ".join(s.value for s in TrialStatus)
                raise ConfigError(f"unknown status '{args.status}'; allowed: {allowed}") from None
        trials = store.trials(status)
    finally:
        store.close()
    if args.stage:
        stage = SEARCH_STAGE if args.stage in ("1", SEARCH_STAGE) else TRAIN_STAGE
        trials = [t for t in trials if t.stage == stage]
    if args.limit:
        trials = trials[: args.limit]
    _print_trials(trials, args.format)
    return 0


def _print_trials(trials: list[Trial], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([t.to_json() for t in trials], indent=2))
    elif fmt == "csv":
        metric_keys = sorted({k for t in trials for k in t.metrics})
        writer = csv.writer(sys.stdout)
        writer.writerow(
            [
                "id",
                "stage",
                "parent",
                "status",
                "reward",
                *metric_keys,
                "arch_id",
                "genome",
                "error",
            ]
        )
        for t in trials:
            writer.writerow(
                [
                    t.id,
                    t.stage,
                    t.parent_id,
                    t.status.value,
                    t.reward,
                    *[t.metrics.get(k) for k in metric_keys],
                    t.arch_id,
                    json.dumps(t.genome),
                    t.error or "",
                ]
            )
    else:
        print(trials_table(trials) if trials else "(no trials)")


def _show(store: Store, args: argparse.Namespace) -> int:
    try:
        trial = store.trial(args.trial_id)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    reports = store.intermediate(trial.id)
    if args.format == "json":
        data = trial.to_json()
        data["intermediate"] = [{"step": step, "metrics": m} for step, m in reports]
        print(json.dumps(data, indent=2))
        return 0
    print(f"trial {trial.id} ({trial.status.value}), architecture {trial.arch_id}")
    print(f"reward: {trial.reward}")
    if trial.duration_s is not None:
        print(f"time: {trial.duration_s:.2f} s on {trial.worker}")
    print("genome:")
    for key, value in trial.genome.items():
        print(f"  {key}: {json.dumps(value)}")
    if trial.metrics:
        print("metrics:")
        for key, value in trial.metrics.items():
            print(f"  {key}: {value:.6g}")
    if reports:
        names = sorted({k for _, m in reports for k in m})
        print("intermediate:")
        print(render_table(["step", *names], [[s, *[m.get(n) for n in names]] for s, m in reports]))
    if trial.error:
        print(f"error: {trial.error}")
    return 0


def _best(args: argparse.Namespace) -> int:
    if args.pareto:
        return _pareto(args)
    if args.objective or args.plot:
        raise ConfigError("--objective and --plot go with --pareto")
    top = 5 if args.top is None else args.top
    if top < 1:
        raise ConfigError("--top must be at least 1")
    store = _open(args.job_dir)
    try:
        best = best_trials(store, top)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps([t.to_json() for t in best], indent=2))
    else:
        print(trials_table(best, genome_width=80) if best else "(no succeeded trials yet)")
    return 0


def _pareto(args: argparse.Namespace) -> int:
    """``best --pareto``: the non-dominated succeeded trials, best first by the first objective."""
    from corenas import pareto

    if args.top is not None:
        raise ConfigError("--top does not apply to --pareto: the whole front is shown")
    store = _open(args.job_dir)
    try:
        job = store.job()
        trials = [t for t in store.trials(TrialStatus.SUCCEEDED) if t.stage == SEARCH_STAGE]
    finally:
        store.close()
    assert job is not None
    if args.objective:
        objectives = pareto.parse_objectives(args.objective, where="--objective")
    else:
        saved = (job.config.get("controller") or {}).get("objectives")
        if saved is None:
            name = (job.config.get("controller") or {}).get("name", "?")
            raise ConfigError(
                f"controller '{name}' of this job has no objectives; name them with "
                "--objective METRIC:max|min (repeatable), e.g. --objective accuracy:max "
                "--objective macs:min"
            )
        objectives = pareto.parse_objectives(saved, where="the job's controller.objectives")
    for name in objectives:
        if trials and all(pareto.objective_value(t, name) is None for t in trials):
            reported = sorted({k for t in trials for k in t.metrics} | {pareto.REWARD})
            raise ConfigError(
                f"no succeeded trial has objective '{name}'; they report: {', '.join(reported)}"
            )
    front = pareto.pareto_front(trials, objectives)
    if args.plot:
        for note in pareto.plot_front(trials, objectives, args.plot):
            print(f"note: {note}", file=sys.stderr)
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps([t.to_json() for t in front], indent=2))
        return 0
    if not front:
        print("(no succeeded trials with every objective yet)")
        return 0
    headers = ["id", *[f"{n} ({d})" for n, d in objectives.items()], "reward", "genome"]
    rows = [
        [
            t.id,
            *[pareto.objective_value(t, n) for n in objectives],
            t.reward,
            short(json.dumps(t.genome, separators=(",", ":")), 80),
        ]
        for t in front
    ]
    print(render_table(headers, rows))
    complete = sum(pareto.is_complete(t, objectives) for t in trials)
    which = "succeeded trials" + (" with every objective" if complete < len(trials) else "")
    print(
        f"{len(front)} of {complete} {which} are non-dominated "
        f"({pareto.describe_objectives(objectives)})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"status": _status, "stop": _stop, "trials": _trials, "best": _best}
    return handlers[args.command](args)
