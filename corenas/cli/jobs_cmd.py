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

from corenas.cli.tables import render_table, trials_table
from corenas.engine import best_trials
from corenas.errors import ConfigError, StoreError
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import JobStatus, Trial, TrialStatus
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
        writer.writerow(["id", "status", "reward", *metric_keys, "arch_id", "genome", "error"])
        for t in trials:
            writer.writerow(
                [
                    t.id,
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
    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    store = _open(args.job_dir)
    try:
        best = best_trials(store, args.top)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps([t.to_json() for t in best], indent=2))
    else:
        print(trials_table(best, genome_width=80) if best else "(no succeeded trials yet)")
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {"status": _status, "stop": _stop, "trials": _trials, "best": _best}
    return handlers[args.command](args)
