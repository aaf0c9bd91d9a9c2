"""``corenas plot`` on real NAS-Bench-201 jobs: the three PNGs (valid images of their sizes),
the top-k decision counts against a count by hand, the scatter's highlighted points against
``pareto_front``, the reward curve's markers, and one-line errors with exit code 2."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from matplotlib.image import imread

from corenas import analysis_plots
from corenas.analysis_plots import (
    ABSENT,
    NUMBER_BINS,
    choose_scatter,
    decision_frequencies,
    decisions_figure,
    reward_figure,
    scatter_figure,
    write_job_plots,
)
from corenas.errors import ConfigError
from corenas.jobdir import open_job_store
from corenas.pareto import objective_value, pareto_front
from corenas.plugins import get_plugins
from corenas.records import Trial, TrialStatus


@pytest.fixture(scope="module")
def nb201(cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random search on NAS-Bench-201: 100 trials reporting accuracy, macs and params."""
    job_dir = tmp_path_factory.mktemp("plot") / "nb201"
    result = cli("search", "experiment=nb201", f"job_dir={job_dir}", "--no-progress")
    assert result.returncode == 0, result.stderr
    return job_dir


@pytest.fixture(scope="module")
def nsga2(cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nsga2 over accuracy (max) and macs (min), 60 trials."""
    job_dir = tmp_path_factory.mktemp("plot") / "nsga2"
    result = cli(
        "search", "experiment=nb201_pareto", "search.max_trials=60", f"job_dir={job_dir}",
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return job_dir


def read_job(job_dir: Path) -> tuple[list[Trial], dict]:
    store = open_job_store(job_dir, get_plugins())
    try:
        job = store.job()
        assert job is not None
        return store.trials(), job.config
    finally:
        store.close()


def trial(number: int, status: TrialStatus, reward: float | None = None, **genome: object) -> Trial:
    metrics = {"accuracy": reward} if reward is not None else {}
    return Trial(number, dict(genome), f"{number:016x}", status, metrics, reward)


def test_writes_three_valid_pngs_into_job_dir_plots(corenas, nb201: Path) -> None:
    result = corenas("plot", str(nb201))
    assert result.returncode == 0, result.stderr
    plots = nb201 / "plots"
    names = ["reward_curve.png", "metric_scatter.png", "decision_frequencies.png"]
    assert result.stdout.splitlines() == [str(plots / name) for name in names]
    # 7 x 4.5, 7 x 5 and (3 x 3.4) x (2 x 2.6 + 0.6) inches at 110 dpi; six decisions
    sizes = [(495, 770), (550, 770), (638, 1122)]
    for name, size in zip(names, sizes, strict=True):
        image = imread(plots / name)
        assert image.shape[:2] == size
        assert image.std() > 0.05  # drawn on, not a blank canvas
    assert sorted(p.name for p in plots.iterdir()) == sorted(names)  # no temporary left


def test_top_k_counts_equal_a_count_by_hand(nb201: Path) -> None:
    trials, _ = read_job(nb201)
    table = decision_frequencies(trials, 10)
    best_first = sorted(trials, key=lambda t: (-(t.reward or 0.0), t.id))
    top = best_first[:10]
    assert (table.top_k, table.succeeded) == (10, 100)
    assert [f.decision for f in table.frequencies] == list(trials[0].genome)
    figure = decisions_figure(table)
    for frequency, axes in zip(table.frequencies, figure.axes, strict=True):
        by_hand_top = Counter(t.genome[frequency.decision] for t in top)
        by_hand_all = Counter(t.genome[frequency.decision] for t in trials)
        assert dict(zip(frequency.labels, frequency.top_counts, strict=True)) == {
            label: by_hand_top[label] for label in frequency.labels
        }
        assert sum(frequency.top_counts) == 10 and frequency.all_counts == tuple(
            by_hand_all[label] for label in frequency.labels
        )
        heights = [bar.get_height() for bar in axes.patches]  # top-k bars, then all bars
        expected = [by_hand_top[label] / 10 for label in frequency.labels] + [
            by_hand_all[label] / 100 for label in frequency.labels
        ]
        assert heights == pytest.approx(expected)


def test_default_top_k_is_a_tenth_and_at_least_five() -> None:
    assert [analysis_plots.default_top_k(n) for n in (3, 20, 100, 300)] == [3, 5, 10, 30]


def test_scatter_highlights_exactly_the_pareto_front(nsga2: Path) -> None:
    trials, config = read_job(nsga2)
    choice = choose_scatter(trials, config, None, None)
    assert choice.objectives == {"accuracy": "max", "macs": "min"}
    figure, notes = scatter_figure(trials, choice)
    (front_points,) = [
        c for c in figure.axes[0].collections if c.get_label().startswith("Pareto front")
    ]
    front = pareto_front(trials, choice.objectives)
    expected = [(objective_value(t, "accuracy"), objective_value(t, "macs")) for t in front]
    assert len(front) >= 3 and notes == []
    drawn = [tuple(point) for point in front_points.get_offsets().tolist()]
    assert drawn == expected


def test_default_scatter_of_a_random_job_and_chosen_axes(corenas, nb201: Path) -> None:
    trials, config = read_job(nb201)
    assert choose_scatter(trials, config, None, None).objectives == {
        "macs": "min",
        "reward": "max",
    }
    chosen = choose_scatter(trials, config, "params", "accuracy:max")
    assert chosen.objectives == {"params": "min", "accuracy": "max"}
    figure, _ = scatter_figure(trials, chosen)
    assert figure.axes[0].get_xlabel() == "params (min)"
    out = nb201 / "chosen"
    result = corenas("plot", str(nb201), "--out", str(out), "--x", "params", "--y", "accuracy")
    assert result.returncode == 0, result.stderr
    assert (out / "metric_scatter.png").stat().st_size > 10_000


def test_reward_curve_marks_each_unsucceeded_kind_and_the_best_so_far() -> None:
    trials = [
        trial(1, TrialStatus.SUCCEEDED, 0.5, op="a"),
        trial(2, TrialStatus.FAILED, op="b"),
        trial(3, TrialStatus.SUCCEEDED, 0.7, op="a"),
        trial(4, TrialStatus.INFEASIBLE, op="b"),
        trial(5, TrialStatus.SUCCEEDED, 0.6, op="b"),
        trial(6, TrialStatus.FAILED, op="a"),
        trial(7, TrialStatus.STOPPED, op="a"),
        trial(8, TrialStatus.RUNNING, op="a"),
    ]
    axes = reward_figure(trials).axes[0]
    labels = [c.get_label() for c in axes.collections]
    assert labels == ["succeeded (3)", "failed (2)", "infeasible (1)", "stopped (1)"]
    failed = axes.collections[1].get_offsets()[:, 0].tolist()
    assert failed == [2, 6]
    (best,) = axes.lines
    assert best.get_xdata().tolist() == [1, 3, 5, 8]
    assert best.get_ydata().tolist() == [0.5, 0.7, 0.7, 0.7]
    assert axes.get_title() == "8 trials: 1 running, 3 succeeded, 2 failed, 1 stopped, 1 infeasible"


def test_many_numeric_values_are_binned_and_many_others_skipped() -> None:
    trials = [
        trial(i, TrialStatus.SUCCEEDED, float(i), lr=10 ** (-i / 10), tag=f"t{i}", op="ab"[i % 2])
        for i in range(1, 41)
    ]
    trials.append(trial(41, TrialStatus.SUCCEEDED, 0.0, tag="t41"))  # no lr nor op
    table = decision_frequencies(trials, 5)
    lr, op = table.frequencies
    assert lr.binned and len(lr.labels) == NUMBER_BINS + 1 and lr.labels[-1] == ABSENT
    assert sum(lr.all_counts) == 41 and lr.all_counts[-1] == 1
    assert lr.top_counts[0] == 5  # the best five have the five smallest lr
    assert all(4 <= count <= 6 for count in lr.all_counts[:-1])  # log-spaced bins
    assert op.labels == ("a", "b", ABSENT) and op.top_counts == (3, 2, 0)  # ids 40, 38, 36: a
    assert table.notes == ["decision 'tag' has 41 distinct non-numeric values: not drawn"]


def test_a_job_without_a_succeeded_trial_writes_nothing(tmp_path: Path) -> None:
    trials = [trial(1, TrialStatus.FAILED, op="a"), trial(2, TrialStatus.RUNNING, op="b")]
    with pytest.raises(ConfigError, match="no succeeded trial with a reward yet"):
        write_job_plots(trials, {}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--x", "nosuch", "--y", "reward"], "no succeeded trial reports metric 'nosuch'; they"),
        (["--x", "macs"], "--x and --y go together"),
        (["--x", "macs:up", "--y", "reward"], "objective 'macs' has direction 'up'"),
        (["--top", "0"], "--top must be at least 1, got 0"),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(
    corenas, nb201: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = corenas("plot", str(nb201), "--out", str(out), *arguments)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("corenas plot: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_missing_job_dir_and_unwritable_out(corenas, nb201: Path, tmp_path: Path) -> None:
    missing = corenas("plot", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "is not a directory; give the job directory of a search" in missing.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    blocked = corenas("plot", str(nb201), "--out", str(blocker / "plots"))
    assert blocked.returncode == 2 and blocked.stderr.count("\n") == 1
    assert f"cannot create the plot directory '{blocker / 'plots'}'" in blocked.stderr
