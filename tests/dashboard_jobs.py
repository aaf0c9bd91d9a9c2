"""Real jobs for the dashboard tests: a scripted search with stage 2 whose networks build
(the ``mlp`` space on wine), and one whose stored strings carry markup (a genome value and
failed trials' errors holding ``<script>``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import cli_env
from corenas_test_helpers import SCRIPTED

from corenas.config import compose
from corenas.engine import start_search
from corenas.plugins import get_plugins
from corenas.records import Genome, Metrics
from corenas.testing import pseudo_accuracy
from corenas.trainer.base import TrialContext

HOSTILE = "<script>window.__corenas_xss = 1</script>"
"""Markup that runs if any page inserts stored text as HTML."""
HOSTILE_SPACE = f"""\
name: declared
label: hostile
decisions:
  note: {{choice: ["{HOSTILE}", "<b>bold</b>", "plain"]}}
  width: {{choice: [8, 16, 32, 64, 128]}}
  depth: {{choice: [1, 2, 3]}}
"""
REAL_TRIALS = 24
HOSTILE_TRIALS = 12


def hostile_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """Every third trial fails with the genome's note in its error; the others report an
    accuracy and a cost that grows with the network."""
    context.reporter(1, {"accuracy": 0.25})
    if context.trial_id % 3 == 0:
        raise RuntimeError(f"trainer rejected note {genome['note']} {HOSTILE}")
    cost = float(genome["width"] * genome["depth"])
    return {"accuracy": pseudo_accuracy(context.arch_id), "cost": cost}


def real_job(job_dir: Path) -> Path:
    """A finished search of ``REAL_TRIALS`` MLPs with learning curves, two retrained in
    stage 2."""
    plugins = get_plugins()
    overrides = [
        *SCRIPTED,
        "space=mlp",
        "data=wine",
        "trainer.target=corenas.testing:curve_trainer",
        "+budget.steps=4",
        f"search.max_trials={REAL_TRIALS}",
        "search.stage2.top=2",
        f"job_dir={job_dir}",
    ]
    start_search(compose(plugins, overrides), plugins, job_dir, progress=False)
    return job_dir


def hostile_job(job_dir: Path, config_dir: Path) -> Path:
    """A finished search whose genomes and errors hold ``HOSTILE``."""
    (config_dir / "space").mkdir(parents=True, exist_ok=True)
    (config_dir / "space" / "hostile.yaml").write_text(HOSTILE_SPACE)
    plugins = get_plugins(config_dirs=[str(config_dir)])
    overrides = [
        *SCRIPTED,
        "space=hostile",
        "trainer.target=dashboard_jobs:hostile_trainer",
        f"search.max_trials={HOSTILE_TRIALS}",
        f"search.max_failed_trials={HOSTILE_TRIALS}",
        f"job_dir={job_dir}",
    ]
    start_search(compose(plugins, overrides), plugins, job_dir, progress=False)
    return job_dir


@dataclass
class Served:
    """A running ``corenas dashboard``: its address and the jobs it shows by name."""

    url: str
    process: subprocess.Popen[str]
    jobs: dict[str, Path]
    keys: dict[str, str]

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> object:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


def start_dashboard(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``corenas dashboard ARGS --port 0`` in a process, and the address it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "corenas.cli.main", "dashboard", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"(http://\S+)", line)
    if found is None:
        process.kill()
        _, errors = process.communicate()
        raise AssertionError(f"no address printed: {line!r} {errors!r}")
    return process, found.group(1)
