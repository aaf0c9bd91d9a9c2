"""The plugin registers its controllers and configs, searches and resumes in-process, and is
found through its entry point once pip-installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import corenas_optuna.plugin as optuna_plugin
import pytest
from corenas_test_helpers import pip_install

from corenas.benchmarks.nb201 import make_nb201_space
from corenas.config import component, compose
from corenas.engine import resume_search, start_search
from corenas.jobdir import open_job_store
from corenas.plugins import Plugins, clear_plugin_cache, load_plugins

PACKAGE = Path(__file__).resolve().parents[1]
NB201 = ["experiment=nb201", "controller=optuna-tpe"]


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """Built-ins plus this plugin's module, whether or not it is installed."""
    monkeypatch.setenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", "1")
    clear_plugin_cache()
    yield load_plugins(extra=[("optuna", optuna_plugin)])
    clear_plugin_cache()


def genomes(job_dir: Path, plugins: Plugins) -> list[dict]:
    store = open_job_store(job_dir, plugins)
    try:
        return [t.genome for t in store.trials()]
    finally:
        store.close()


def test_controllers_and_configs_are_registered(plugins: Plugins) -> None:
    info = plugins.info("optuna")
    assert info.registered == {"controller": ["optuna-gp", "optuna-nsga2", "optuna-tpe"]}
    assert info.config_dirs == [optuna_plugin.CONFIG_DIR]
    controller = component(compose(plugins, NB201), "controller")
    assert controller == {
        "name": "optuna-tpe",
        "n_startup_trials": 20,
        "n_ei_candidates": 24,
        "multivariate": True,
        "group": True,
        "constant_liar": True,
        "objectives": None,
        "max_retries": 3,
        "duplicates": "fail",
        "max_categories": 1000,
    }
    for name in ("optuna-nsga2", "optuna-gp"):  # every shipped config builds its controller
        node = component(compose(plugins, ["experiment=nb201", f"controller={name}"]), "controller")
        params = {k: v for k, v in node.items() if k != "name"}
        controller = plugins.registry("controller").create(
            name, space=make_nb201_space(), seed=0, **params
        )
        assert controller.label == name


def test_resumed_search_continues_the_uninterrupted_one(plugins: Plugins, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    cfg = compose(plugins, [*NB201, "search.max_trials=40", "controller.n_startup_trials=10"])
    start_search(cfg, plugins, straight, progress=False)
    interrupted = tmp_path / "interrupted"
    cfg = compose(plugins, [*NB201, "search.max_trials=25", "controller.n_startup_trials=10"])
    start_search(cfg, plugins, interrupted, progress=False)
    summary = resume_search(interrupted, ["search.max_trials=40"], plugins, progress=False)
    assert summary.counts["succeeded"] == 40
    assert genomes(interrupted, plugins) == genomes(straight, plugins)
    assert len({json.dumps(g, sort_keys=True) for g in genomes(straight, plugins)}) == 40


def test_bad_controller_parameters_stop_the_search_before_it_starts(
    plugins: Plugins, tmp_path: Path
) -> None:
    from corenas.errors import ConfigError

    cfg = compose(plugins, [*NB201, "controller.duplicates=skip"])
    with pytest.raises(ConfigError, match="duplicates must be one of fail, prune, value"):
        start_search(cfg, plugins, tmp_path / "job", progress=False)


@pytest.mark.slow
def test_installed_plugin_is_discovered_and_searches(tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip_install(PACKAGE, site)
    env = dict(os.environ)
    for name in ("CORENAS_BLOCK_PLUGINS", "CORENAS_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))

    def corenas(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corenas.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    listing = corenas("plugins", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    info = {p["name"]: p for p in json.loads(listing.stdout)}["optuna"]
    assert info["source"] == "entry point"
    assert info["entry_point"] == "optuna = corenas_optuna.plugin"
    assert info["version"] == "0.1.0"
    assert info["registered"] == {"controller": ["optuna-gp", "optuna-nsga2", "optuna-tpe"]}
    assert info["config_dirs"][0].startswith(str(site))
    job = tmp_path / "job"
    result = corenas("search", *NB201, "search.max_trials=20", f"job_dir={job}", "--no-progress")
    assert result.returncode == 0, result.stderr
    trials = json.loads(corenas("trials", "list", str(job), "--format", "json").stdout)
    assert len(trials) == 20 and {t["status"] for t in trials} == {"succeeded"}
    assert len({json.dumps(t["genome"], sort_keys=True) for t in trials}) == 20
