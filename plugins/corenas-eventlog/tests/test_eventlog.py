"""The event-log plugin sees every event of a search, in order, in-process and installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import corenas_eventlog.plugin as eventlog
from corenas_test_helpers import SCRIPTED, pip_install

from corenas.config import compose
from corenas.engine import resume_search, start_search
from corenas.plugins import load_plugins

PACKAGE = Path(__file__).resolve().parents[1]


def events(job_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (job_dir / "events.jsonl").read_text().splitlines()]


def test_every_event_of_a_search_in_order(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", "1")  # in case it is installed too
    plugins = load_plugins(extra=[("eventlog", eventlog)])
    job = tmp_path / "job"
    cfg = compose(
        plugins, [*SCRIPTED, f"job_dir={job}", "search.max_trials=3", "+budget.raise_on=[2]"]
    )
    start_search(cfg, plugins, job, progress=False)
    kinds = [e["event"] for e in events(job)]
    assert kinds[0] == "job_started" and kinds[-1] == "job_finished"
    assert kinds.count("trial_started") == kinds.count("trial_finished") == 3
    per_trial = {}
    for event in events(job):
        trial_id = event.get("trial_id") or event.get("trial", {}).get("id")
        if trial_id:
            per_trial.setdefault(trial_id, []).append(event["event"])
    assert per_trial[1] == ["trial_started", "trial_reported", "trial_finished"]
    assert per_trial[2] == ["trial_started", "trial_finished"]  # failed before reporting
    finished = {e["trial"]["id"]: e["trial"] for e in events(job) if e["event"] == "trial_finished"}
    assert finished[2]["status"] == "failed" and "injected failure" in finished[2]["error"]
    assert events(job)[-1]["summary"]["counts"]["succeeded"] == 2
    assert events(job)[0]["resumed"] is False
    resume_search(job, ["search.max_trials=4"], plugins, progress=False)
    assert [e["resumed"] for e in events(job) if e["event"] == "job_started"] == [False, True]


def test_installed_plugin_is_discovered_and_logs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(PACKAGE, site)
    env = dict(os.environ)
    env.pop("CORENAS_BLOCK_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "corenas.cli.main"]
    listing = subprocess.run(
        [*command, "plugins", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    info = {p["name"]: p for p in json.loads(listing.stdout)}["eventlog"]
    assert info["source"] == "entry point" and info["registered"] == {}
    assert "corenas_trial_finished" in info["hooks"]
    job = tmp_path / "job"
    result = subprocess.run(
        [
            *command,
            "search",
            *SCRIPTED,
            "executor=local",
            "search.max_trials=2",
            f"job_dir={job}",
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert [e["event"] for e in events(job)].count("trial_finished") == 2
    blocked = dict(env, CORENAS_BLOCK_PLUGINS="eventlog")
    other = tmp_path / "other"
    subprocess.run(
        [*command, "search", *SCRIPTED, "search.max_trials=1", f"job_dir={other}", "--no-progress"],
        env=blocked,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert not (other / "events.jsonl").exists()
