"""The dashboard's first page on a job of 10,000 trials, beside optuna-dashboard on the same
trials.

What it measures
----------------
1. A real job: ``corenas search experiment=nb201 search.max_trials=N`` (random search over
   NAS-Bench-201, each trial looked up in the shipped table), unless ``--job DIR`` names one.
2. ``corenas dashboard JOB --port 0`` in its own process: its start-up until it listens (it reads
   the job named on its command line before listening, so a bad one is refused at once), and the
   same full read of all N trials timed in this process (a new ``JobView``; what a change of a
   running job costs the server at most). Then, over HTTP, the requests the job page makes
   before its trial table shows, in order: the page, the job summary and the first page of the
   table (50 rows, sorted by id), the *first time* and *again* ``--repeat`` times, each after
   the server's snapshot expired (what every refresh of an unchanged job costs). The charts'
   data (reward curve, scatter with its Pareto front) and the table sorted by accuracy are
   timed the same way.
3. With Debian Chromium, chromium-driver and selenium present: the job page in headless
   Chromium, from ``driver.get`` until the page script has drawn the table and both charts.
4. The peer, when ``optuna-dashboard`` is installed (``pip install optuna-dashboard``): the same
   N trials (decisions as categorical parameters, the accuracy as the value) in an Optuna
   SQLite study, served by ``optuna-dashboard --server wsgiref``; its page and
   ``/api/studies/ID``, which returns every trial (its table pages in the browser). Its
   readiness is probed on ``/api/studies``, which lists studies without their trials.

Prints each figure in milliseconds and the ratio peer / corenas. Nothing asserts on times.

Usage::

    python scripts/bench_dashboard.py [--trials 10000] [--repeat 5] [--job DIR] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REFRESH_WAIT_S = 1.1
"""Longer than the dashboard's snapshot life (``corenas.dashboard.jobs.REFRESH_S``)."""


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return bytes(response.read())


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def make_job(trials: int, job_dir: Path) -> None:
    print(f"search: {trials} NAS-Bench-201 trials (table look-ups) into {job_dir} ...", flush=True)
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "corenas.cli.main",
            "search",
            "experiment=nb201",
            f"search.max_trials={trials}",
            f"job_dir={job_dir}",
            "--no-progress",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"search: done in {time.perf_counter() - start:.1f} s", flush=True)


def start_server(command: list[str], pattern: str | None, probe: str | None) -> tuple[Any, str]:
    """Start a server process; its base URL, read from its output (``pattern``) or known in
    advance (``probe``, polled until it answers)."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    if pattern is not None:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(pattern, line)
        if found is None:
            process.kill()
            raise SystemExit(f"server printed no address: {line!r}")
        return process, found.group(1)
    assert probe is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            fetch(probe)
            return process, probe.rsplit("/api/", 1)[0] + "/"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"server did not answer {probe}")


def stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def corenas_figures(job_dir: Path, repeat: int) -> dict[str, Any]:
    from corenas.dashboard.jobs import JobSource

    key = JobSource.of_dir(job_dir).key  # the job page's address, without asking the server
    started = time.perf_counter()
    process, url = start_server(
        [sys.executable, "-m", "corenas.cli.main", "dashboard", str(job_dir), "--port", "0"],
        r"(http://\S+/)",
        None,
    )
    startup = (time.perf_counter() - started) * 1000.0
    try:

        def first_page() -> None:
            fetch(f"{url}jobs/{key}")
            fetch(f"{url}api/jobs/{key}")
            rows = json.loads(fetch(f"{url}api/jobs/{key}/trials?sort=id&limit=50"))
            assert len(rows["rows"]) == 50, rows

        def charts() -> None:
            fetch(f"{url}api/jobs/{key}/curve")
            fetch(f"{url}api/jobs/{key}/scatter")

        cold = timed(first_page)
        cold_charts = timed(charts)
        reread, reread_charts, sorted_ms = [], [], []
        for _ in range(repeat):
            time.sleep(REFRESH_WAIT_S)
            reread.append(timed(first_page))
            reread_charts.append(timed(charts))
            sorted_ms.append(
                timed(lambda: fetch(f"{url}api/jobs/{key}/trials?sort=accuracy&order=desc"))
            )
        total = json.loads(fetch(f"{url}api/jobs/{key}"))["trials"]
        browser = browser_figures(f"{url}jobs/{key}", repeat)
    finally:
        stop(process)
    return {
        "trials": total,
        "startup": startup,
        "fresh_read": fresh_read(job_dir),
        "cold": cold,
        "cold_charts": cold_charts,
        "reread": statistics.median(reread),
        "reread_charts": statistics.median(reread_charts),
        "sorted": statistics.median(sorted_ms),
        "browser": browser,
    }


def fresh_read(job_dir: Path) -> float:
    """Milliseconds for a new ``JobView`` to read every trial of the job into its table
    (what the server does at start, and at most what a change of the job costs it)."""
    from corenas.dashboard.jobs import JobSource, JobView
    from corenas.plugins import get_plugins

    view = JobView(JobSource.of_dir(job_dir), get_plugins())
    try:
        return timed(view.snapshot)
    finally:
        view.close()


def browser_figures(page: str, repeat: int) -> dict[str, list[float]] | None:
    """Milliseconds from ``driver.get`` until the job page shows its trial table, and until
    it has drawn the charts too, per load; None without a browser."""
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    times: dict[str, list[float]] = {"table": [], "all": []}
    try:
        for _ in range(repeat):
            time.sleep(REFRESH_WAIT_S)
            start = time.perf_counter()
            driver.get(page)
            for name, flag in (("table", "tableDrawn"), ("all", "drawn")):
                WebDriverWait(driver, 60, poll_frequency=0.005).until(
                    lambda d, flag=flag: d.execute_script(f"return document.body.dataset.{flag}")
                )
                times[name].append((time.perf_counter() - start) * 1000.0)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return times


def optuna_figures(job_dir: Path, repeat: int, workdir: Path) -> dict[str, float] | None:
    if shutil.which("optuna-dashboard") is None:
        return None
    import optuna

    from corenas.jobdir import open_job_store
    from corenas.plugins import get_plugins

    store = open_job_store(job_dir, get_plugins())
    try:
        trials = [t for t in store.trials() if t.reward is not None]
    finally:
        store.close()
    choices: dict[str, set[Any]] = {}
    for trial in trials:
        for name, value in trial.genome.items():
            choices.setdefault(name, set()).add(value)
    distributions = {
        name: optuna.distributions.CategoricalDistribution(sorted(values))
        for name, values in choices.items()
    }
    url = f"sqlite:///{workdir / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="nb201", storage=url, direction="maximize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params=dict(trial.genome),
                distributions=distributions,
                value=float(trial.reward or 0.0),
                user_attrs={"accuracy": trial.metrics.get("accuracy")},
            )
            for trial in trials
        ]
    )
    port = free_port()
    process, base = start_server(
        ["optuna-dashboard", url, "--port", str(port), "--server", "wsgiref", "--quiet"],
        None,
        f"http://127.0.0.1:{port}/api/studies",
    )
    try:
        study_id = json.loads(fetch(base + "api/studies"))["study_summaries"][0]["study_id"]

        def first_page() -> None:
            fetch(f"{base}dashboard/studies/{study_id}")
            answer = json.loads(fetch(f"{base}api/studies/{study_id}"))
            assert len(answer["trials"]) == len(trials)

        cold = timed(first_page)
        warm = [timed(first_page) for _ in range(repeat)]
    finally:
        stop(process)
    return {"trials": len(trials), "cold": cold, "warm": statistics.median(warm)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--job", type=Path, help="an existing job instead of a new search")
    parser.add_argument("--no-peer", action="store_true", help="skip optuna-dashboard")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        job_dir = args.job or workdir / "job"
        if args.job is None:
            make_job(args.trials, job_dir)
        ours = corenas_figures(job_dir, args.repeat)
        peer = None if args.no_peer else optuna_figures(job_dir, args.repeat, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\njob of {ours['trials']} trials; milliseconds (medians of {args.repeat} repeats)")
    print(f"  corenas dashboard start-up until it listens:  {ours['startup']:8.1f}")
    print(f"  corenas reading all trials (in process):      {ours['fresh_read']:8.1f}")
    print(f"  corenas first page of the table, first time:  {ours['cold']:8.1f}")
    print(f"  corenas first page of the table, again:       {ours['reread']:8.1f}")
    print(f"  corenas charts' data (curve, scatter), first: {ours['cold_charts']:8.1f}")
    print(f"  corenas charts' data, again:                  {ours['reread_charts']:8.1f}")
    print(f"  corenas table sorted by accuracy, again:      {ours['sorted']:8.1f}")
    if ours["browser"]:
        for name, label in (("table", "trial table shown"), ("all", "charts drawn too")):
            loads = ours["browser"][name]
            shown = ", ".join(f"{t:.0f}" for t in loads)
            middle = statistics.median(loads)
            print(f"  Chromium, job page to {label + ':':22}{middle:8.1f}  ({shown})")
    else:
        print("  (no Chromium + chromium-driver + selenium: browser timing skipped)")
    if peer:
        print(f"  optuna-dashboard study page + trials, cold:   {peer['cold']:8.1f}")
        print(f"  optuna-dashboard study page + trials, warm:   {peer['warm']:8.1f}")
        print(f"  ratio optuna-dashboard / corenas, first time: {peer['cold'] / ours['cold']:8.2f}")
        warm_ratio = peer["warm"] / ours["reread"]
        print(f"  ratio optuna-dashboard / corenas, again:      {warm_ratio:8.2f}")
    else:
        print("  (optuna-dashboard not installed or --no-peer: no peer figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
