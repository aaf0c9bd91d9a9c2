"""``corenas status | stop | trials | best``: read a job's store (safe while it runs);
``stop`` alone writes, a stop request for the driver."""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from corenas.cli.tables import render_table, short, trials_table
from corenas.engine import best_of, best_trials
from corenas.errors import ConfigError, StoreError
from corenas.jobdir import open_job_store
from corenas.plugins import get_plugins
from corenas.records import SEARCH_STAGE, TRAIN_STAGE, Trial, TrialStatus
from corenas.store.base import Store
from corenas.store.sqlite import default_lock_owner


def _open(job_dir: str) -> Store:
    return open_job_store(Path(job_dir), get_plugins())


RECENT_FAILURES = 3
"""How many of the latest failed trials ``corenas status`` lists."""


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _stage_progress(trials: list[Trial], total_key: str, total: Any) -> dict[str, Any]:
    """``finished`` (final trials), ``total_key: total`` and ``counts`` per status."""
    counts = {status.value: 0 for status in TrialStatus}
    for trial in trials:
        counts[trial.status.value] += 1
    finished = sum(n for status, n in counts.items() if TrialStatus(status).is_final)
    return {"finished": finished, total_key: total, "counts": counts}


def status_data(store: Store, job_dir: str, now: float | None = None) -> dict[str, Any]:
    """Everything ``corenas status`` shows, as JSON data; reads the store only."""
    now = time.time() if now is None else now
    job = store.job()
    if job is None:
        raise ConfigError(f"'{job_dir}' has no search in its store yet")
    driver = store.driver()
    request = store.stop_request()
    trials = store.trials()
    best = best_of(trials, 1)
    running = [t for t in trials if t.status is TrialStatus.RUNNING]
    reports = {t.id: store.intermediate(t.id) for t in running}
    search_config = job.config.get("search", {})
    status = job.status.shown(driver)
    if request is not None and request.driver != driver:
        request = None  # addressed to a driver that is gone
    max_trials = search_config.get("max_trials")
    search = _stage_progress(
        [t for t in trials if t.stage == SEARCH_STAGE], "max_trials", max_trials
    )
    retrained = [t for t in trials if t.stage == TRAIN_STAGE]
    stage2 = _stage_progress(retrained, "total", len(retrained))
    failed = sorted(
        (t for t in trials if t.status is TrialStatus.FAILED),
        key=lambda t: (t.finished_at or 0.0, t.id),
    )
    return {
        "job_dir": str(Path(job_dir).absolute()),
        "status": status,
        "driver": driver,
        "draining": request is not None and request.mode == "drain",
        "stop_request": None if request is None else request.to_json(),
        "max_trials": max_trials,
        "progress": {"search": search, "stage2": stage2},
        "counts": {s.value: n for s, n in store.counts().items()},
        "running": [
            {
                "id": t.id,
                "stage": t.stage,
                "worker": t.worker,
                "started_at": t.started_at,
                "running_s": None if t.started_at is None else max(0.0, now - t.started_at),
                "latest_report": (
                    {"step": reports[t.id][-1][0], "metrics": reports[t.id][-1][1]}
                    if reports[t.id]
                    else None
                ),
            }
            for t in running
        ],
        "failures": {
            "count": len(failed),
            "search": sum(t.stage == SEARCH_STAGE for t in failed),
            "max_failed_trials": search_config.get("max_failed_trials"),
            "recent": [
                {
                    "id": t.id,
                    "stage": t.stage,
                    "finished_at": t.finished_at,
                    "error": _last_line(t.error),
                }
                for t in failed[-RECENT_FAILURES:]
            ],
        },
        "best": best[0].to_json() if best else None,
    }


def _duration(seconds: float | None) -> str:
    """``42s``, ``3m05s`` or ``2h03m``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _progress_line(name: str, progress: dict[str, Any], total: int | None) -> str:
    counts = progress["counts"]
    finals = [f"{n} {s}" for s, n in counts.items() if n and TrialStatus(s).is_final]
    of = f"/{total}" if total is not None else ""
    return (
        f"{name}: {progress['finished']}{of} finished"
        + (f" ({', '.join(finals)})" if finals else "")
        + f", {counts['running']} running, {counts['pending']} pending"
    )


def _report_text(report: dict[str, Any] | None) -> str:
    if report is None:
        return "-"
    values = ", ".join(f"{k}={v:.4g}" for k, v in report["metrics"].items())
    return short(f"step {report['step']}: {values}", 60)


def _print_status(data: dict[str, Any], job_arg: str) -> None:
    status = data["status"] + (", draining" if data["draining"] else "")
    driver = data["driver"]
    print(f"job {data['job_dir']}: {status}" + (f" (driver: {driver})" if driver else ""))
    if data["status"] == "interrupted":
        print(f"its driver died; continue with `corenas resume {job_arg}`")
    request = data["stop_request"]
    if request is not None:
        ago = _duration(max(0.0, time.time() - request["requested_at"]))
        what = (
            "no new trials start; the driver exits once the running ones finish"
            if request["mode"] == "drain"
            else "the driver stops the running trials and exits"
        )
        print(f"stop requested by {request['requested_by']} {ago} ago: {what}")
    search, stage2 = data["progress"]["search"], data["progress"]["stage2"]
    print(_progress_line("search", search, search["max_trials"]))
    if stage2["total"]:
        print(_progress_line("stage 2", stage2, stage2["total"]))
    if data["running"]:
        interrupted = data["status"] == "interrupted"
        print("running when the driver died (resume re-runs them):" if interrupted else "running:")
        rows = [
            [
                t["id"],
                t["stage"],
                t["worker"],
                _duration(t["running_s"]),
                _report_text(t["latest_report"]),
            ]
            for t in data["running"]
        ]
        print(render_table(["id", "stage", "worker", "for", "latest report"], rows))
    failures = data["failures"]
    if failures["count"]:
        limit = failures["max_failed_trials"]
        of = f" of search.max_failed_trials={limit}" if limit else ""
        print(
            f"failed: {failures['count']} (search: {failures['search']}{of}); latest "
            f"(all: `corenas trials list {job_arg} --status failed`):"
        )
        rows = [[f["id"], f["stage"], short(f["error"], 80)] for f in failures["recent"]]
        print(render_table(["id", "stage", "error"], rows))
    best = data["best"]
    if best is not None:
        print(f"best: trial {best['id']} reward {best['reward']:.6g}")


def _status(args: argparse.Namespace) -> int:
    store = _open(args.job_dir)
    try:
        data = status_data(store, args.job_dir)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        _print_status(data, args.job_dir)
    return 0


def _driver_process(owner: str) -> tuple[int, str] | None:
    """(pid, host) of a lock owner text ``pid N on HOST``, or None for another form."""
    match = re.fullmatch(r"pid (\d+) on (\S+)", owner)
    return None if match is None else (int(match.group(1)), match.group(2))


def _stop(args: argparse.Namespace) -> int:
    job = args.job_dir
    store = _open(job)
    try:
        owner = store.driver()
        if owner is None:
            raise ConfigError(f"no search is running in '{job}' (its driver lock is free)")
        running = [t.id for t in store.trials(TrialStatus.RUNNING)]
        earlier = store.stop_request()
        if earlier is not None and earlier.driver != owner:
            earlier = None
        if not args.now and earlier is not None:  # a second stop changes nothing
            ago = _duration(max(0.0, time.time() - earlier.requested_at))
            asked = f"the driver ({owner}) was asked {ago} ago by {earlier.requested_by}"
            if earlier.mode == "now":
                print(f"{asked} to stop now; it stops within a second")
            else:
                print(
                    f"{asked} to stop and is waiting for {_trial_list(running)} to finish; "
                    f"`corenas stop {job} --now` stops them at once"
                )
            return 0
        process = _driver_process(owner)
        if args.now and process is not None and process[1] == socket.gethostname():
            try:
                os.kill(process[0], signal.SIGTERM)  # at once, even while the driver waits
            except ProcessLookupError:
                pass  # not on this machine after all (a host name shared): the store tells it
            else:
                print(
                    f"sent SIGTERM to the driver ({owner}): it stops now, running trials are "
                    f"requeued and re-run by `corenas resume {job}`"
                )
                return 0
        store.request_stop("now" if args.now else "drain", owner, default_lock_owner())
    finally:
        store.close()
    if args.now:
        print(
            f"asked the driver ({owner}) to stop now: within a second it kills "
            f"{_trial_list(running)}, sets them back to pending and exits; `corenas resume "
            f"{job}` re-runs them"
        )
    elif not running:
        print(
            f"asked the driver ({owner}) to stop: no trial is running, so it exits within a "
            f"second; `corenas resume {job}` continues the search"
        )
    else:
        print(
            f"asked the driver ({owner}) to stop: it starts no new trials and exits once "
            f"{_trial_list(running)} finish (their results are kept); `corenas status {job}` "
            f"shows them, `corenas stop {job} --now` stops them at once, and `corenas resume "
            f"{job}` continues the search"
        )
    return 0


def _trial_list(ids: list[int]) -> str:
    if not ids:
        return "its running trials"
    return ("trial " if len(ids) == 1 else "trials ") + ", ".join(str(i) for i in ids)


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
