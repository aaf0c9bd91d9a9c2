"""The example third-party plugin package, pip-installed, works with no change to corenas."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from corenas_test_helpers import pip_install

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "corenas-example-plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    pip_install(FIXTURE, target)
    env = dict(os.environ)
    env.pop("CORENAS_BLOCK_PLUGINS", None)
    env.pop("CORENAS_DISABLE_PLUGIN_AUTOLOAD", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return env


def test_installed_plugin_is_listed(cli, plugin_env: dict[str, str]) -> None:
    result = cli("plugins", "--format", "json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    example = {item["name"]: item for item in json.loads(result.stdout)}["example"]
    assert example["source"] == "entry point"
    assert example["entry_point"] == "example = corenas_example_plugin.plugin"
    assert example["version"] == "0.3.0"
    assert example["registered"] == {"space": ["polynomial"], "controller": ["hillclimb"]}
    assert example["config_dirs"][0].endswith(os.path.join("corenas_example_plugin", "conf"))


def test_plugin_config_and_space_are_usable(cli, plugin_env: dict[str, str]) -> None:
    shown = cli("space", "show", "polynomial", "--format", "json", env=plugin_env)
    assert shown.returncode == 0, shown.stderr
    # the plugin's conf/space/polynomial.yaml sets degree 4: 10**4 exponents x 2 signs
    assert json.loads(shown.stdout)["size"] == 2 * 10**4


def test_search_with_the_plugins_space_and_controller(
    cli, plugin_env: dict[str, str], tmp_path: Path
) -> None:
    job = tmp_path / "job"
    result = cli(
        "search",
        "space=polynomial",
        "controller=hillclimb",
        "trainer=function",
        "trainer.target=corenas_example_plugin.plugin:score",
        "reward=accuracy",
        "hardware=none",
        "executor=local",
        "search.max_trials=30",
        "search.max_parallel_trials=1",  # one worker: the climb does not depend on timing
        f"job_dir={job}",
        "--no-progress",
        env=plugin_env,
    )
    assert result.returncode == 0, result.stderr
    best = cli("best", str(job), "--format", "json", "--top", "3", env=plugin_env)
    trials = json.loads(best.stdout)
    assert len(trials) == 3
    # hill climbing from the best found so far beats the median of random sampling easily
    assert trials[0]["reward"] > 0.1
    listing = json.loads(cli("trials", "list", str(job), "--format", "json", env=plugin_env).stdout)
    assert len(listing) == 30 and {t["status"] for t in listing} == {"succeeded"}
    assert all(set(t["genome"]) == {"term0", "term1", "term2", "term3", "sign"} for t in listing)


def test_without_the_plugin_its_names_are_unknown(cli) -> None:
    result = cli("search", "space=polynomial")
    assert result.returncode == 2 and "unknown space 'polynomial'" in result.stderr
