"""experiment=tabular and experiment=sequence through the real CLI, with the user's own CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from corenas_test_helpers import stored

from corenas.config import component, compose
from corenas.plugins import get_plugins
from corenas.records import TrialStatus

FAST = ["budget.epochs=2", "executor=inline"]
"""Few epochs, trials in the driver's process: seconds per trial on a CPU."""


def write_csv(path: Path, regression: bool = False, rows: int = 120) -> Path:
    """Columns x1, x2, x3, note (text) and label (yes/no, or a float when ``regression``)."""
    rng = np.random.default_rng(0)
    lines = ["x1,x2,x3,note,label"]
    for i in range(rows):
        a, b, c = rng.normal(size=3)
        label = f"{2 * a - b:.4f}" if regression else ("yes" if a + b > 0 else "no")
        lines.append(f"{a:.4f},{b:.4f},{c:.4f},row{i},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_experiments_compose_their_components() -> None:
    plugins = get_plugins()
    tabular = compose(plugins, ["experiment=tabular"])
    assert {group: component(tabular, group)["name"] for group in ("space", "trainer", "data")} == {
        "space": "mlp",
        "trainer": "lightning",
        "data": "tabular",
    }
    assert component(tabular, "hardware")["name"] == "analytic"
    assert component(tabular, "reward") == {"name": "accuracy", "metric": "accuracy", "mode": "max"}
    own = compose(plugins, ["experiment=tabular", "data=csv", "data.path=x.csv", "data.target=y"])
    assert component(own, "data")["name"] == "csv" and component(own, "space")["name"] == "mlp"
    sequence = compose(plugins, ["experiment=sequence"])
    names = {group: component(sequence, group)["name"] for group in ("space", "data", "hardware")}
    assert names == {"space": "sequence", "data": "sequence", "hardware": "analytic"}


@pytest.mark.slow
def test_tabular_search_on_a_user_csv(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "table.csv")
    job = tmp_path / "job"
    result = run_cli(  # the command: data.path and data.target pick the CSV
        "search",
        "experiment=tabular",
        f"data.path={csv}",
        "data.target=label",
        "data.drop=[note]",
        "search.max_trials=3",
        f"job_dir={job}",
        *FAST,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 3
    for trial in trials:
        assert 0.0 <= trial.metrics["accuracy"] <= 1.0
        assert trial.reward == trial.metrics["accuracy"]
        assert trial.metrics["params"] > 0 and trial.metrics["macs"] > 0
        assert trial.metrics["epochs"] == 2


@pytest.mark.slow
def test_tabular_regression_rewards_low_rmse(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "table.csv", regression=True)
    job = tmp_path / "job"
    result = run_cli(
        "search",
        "experiment=tabular",
        "data=csv",
        f"data.path={csv}",
        "data.target=label",
        "data.drop=[note]",
        "reward.metric=rmse",
        "reward.mode=min",
        "search.max_trials=2",
        f"job_dir={job}",
        *FAST,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 2
    for trial in trials:
        assert {"rmse", "mae", "r2", "loss"} <= set(trial.metrics)
        assert trial.reward == -trial.metrics["rmse"]


@pytest.mark.slow
def test_sequence_search_measures_and_trains(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_cli(
        "search",
        "experiment=sequence",
        "data.num_samples=240",
        "search.max_trials=2",
        "budget.epochs=1",
        "executor=inline",
        f"job_dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials, _ = stored(job)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 2
    for trial in trials:
        assert 0.0 <= trial.metrics["accuracy"] <= 1.0
        assert trial.metrics["macs"] > trial.metrics["params"] > 0


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["data.target=species"], ["target column 'species' not in", "x1, x2, x3, note, label"]),
        (["data.target=label"], ["feature column 'note'", "data.drop=[note]"]),
        (["data.target=label", "data.path=missing.csv"], ["'missing.csv' not found"]),
        ([], ["data.path is set but data.target is not", "data.target=COLUMN"]),
    ],
)
def test_bad_user_data_stops_the_search_with_one_line(
    tmp_path: Path, overrides: list[str], needles: list[str]
) -> None:
    csv = write_csv(tmp_path / "table.csv")
    job = tmp_path / "job"
    result = run_cli(
        "search",
        "experiment=tabular",
        f"data.path={csv}",
        *overrides,
        f"job_dir={job}",
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (job / "trials").exists()
