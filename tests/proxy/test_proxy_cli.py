"""The proxy workflow through the real command line: select-models, train-candidates, search
and variance write their JSON and PNG results, and a killed run resumes instead of starting
over. Trainings are corenas.testing's deterministic learning curves, so every verdict is
known in advance."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from corenas_test_helpers import stored

from corenas.records import TRAIN_STAGE, TrialStatus

CURVES = [
    "space=tabular_mlp",
    "hardware=none",
    "trainer=function",
    "trainer.target=corenas.testing:curve_trainer",
    "reward=accuracy",
    "executor=inline",
    "+budget.steps=4",
]
SELECT = ["--models", "12", "--keep", "6", "--drop", "3", "--no-progress"]
CONFIGS = """
threshold: 0.65
configs:
  - name: short
    overrides: [budget.steps=3]
  - name: upside_down
    overrides: [budget.steps=3, +budget.invert=true]
"""


def assert_png(path: Path) -> None:
    """A PNG a user can open: the signature, some size, and more than one pixel colour."""
    image = pytest.importorskip("matplotlib.image")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 5


def finished(job: Path) -> dict[int, float]:
    """finished_at of each finished trial of a job (succeeded, or stopped by the proxy
    search's correlation stop)."""
    trials, _ = stored(job)
    return {t.id: t.finished_at for t in trials if t.status.is_final}


def wait_until(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # the store is being created
            pass
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s")


@pytest.mark.slow
def test_the_whole_workflow_chooses_the_agreeing_proxy(cli, tmp_path: Path) -> None:
    proxy = tmp_path / "proxy"
    selected = cli("proxy", "select-models", str(proxy), *CURVES, *SELECT)
    assert selected.returncode == 0, selected.stderr
    candidates = json.loads((proxy / "candidates.json").read_text())
    assert len(candidates["candidates"]) == 6
    assert [len(r["dropped"]) for r in candidates["rounds"]] == [3, 3]
    assert "round 2: dropped trials" in selected.stdout
    assert_png(proxy / "selection.png")

    missing = cli("proxy", "search", str(proxy), "--configs", str(tmp_path / "none.yaml"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    (tmp_path / "proxies.yaml").write_text(CONFIGS)
    early = cli("proxy", "search", str(proxy), "--configs", str(tmp_path / "proxies.yaml"))
    assert early.returncode != 0
    assert "proxy train-candidates" in early.stderr and "Traceback" not in early.stderr

    full = cli(
        "proxy", "train-candidates", str(proxy), "search.stage2.budget.steps=10", "--no-progress"
    )
    assert full.returncode == 0, full.stderr
    trials, _ = stored(proxy / "select")
    assert sum(t.stage == TRAIN_STAGE for t in trials) == 6

    (tmp_path / "typo.yaml").write_text(CONFIGS + "  - name: typo\n    overrides: [space.nope=1]\n")
    typo = cli("proxy", "search", str(proxy), "--configs", str(tmp_path / "typo.yaml"))
    assert typo.returncode == 2 and "has no parameter 'nope'" in typo.stderr
    assert not (proxy / "search").exists()  # checked before the first config trained
    searched = cli(
        "proxy", "search", str(proxy), "--configs", str(tmp_path / "proxies.yaml"), "--no-progress"
    )
    assert searched.returncode == 0, searched.stderr
    result = json.loads((proxy / "proxy_search.json").read_text())
    short, upside_down = result["configs"]
    assert short["passed"] and short["stop_step"] == 1 and short["tau"] == 1.0
    assert short["p_value"] == pytest.approx(2 / 720)  # 6 candidates, one agreeing order
    assert not upside_down["passed"] and upside_down["tau"] == -1.0
    assert result["chosen"] == "short"
    assert "chosen: 'short'" in searched.stdout
    assert_png(proxy / "tau.png")
    # the stop: every candidate of 'short' reported step 1, so the last ones stopped there
    trials, _ = stored(proxy / "search" / "short")
    assert any(t.status is TrialStatus.STOPPED for t in trials)

    again = cli("proxy", "search", str(proxy), "--configs", str(tmp_path / "proxies.yaml"))
    assert again.returncode == 0 and "completed before" in again.stderr  # nothing retrained
    (tmp_path / "changed.yaml").write_text(CONFIGS.replace("budget.steps=3]", "budget.steps=2]"))
    changed = cli("proxy", "search", str(proxy), "--configs", str(tmp_path / "changed.yaml"))
    assert changed.returncode == 2
    assert "was run with another configuration" in changed.stderr

    variance = cli("proxy", "variance", str(proxy), "-k", "3", "--no-progress")
    assert variance.returncode == 0, variance.stderr
    report = json.loads((proxy / "variance-short.json").read_text())
    assert report["config"] == "short" and report["runs"] == 3 and report["stop_step"] == 1
    trials, _ = stored(proxy / "variance" / "short-s1-k3")
    assert all(t.status is TrialStatus.STOPPED for t in trials)  # the proxy ends at step 1
    assert report["cv_percent"] == 0.0 and report["cv_good"]  # a deterministic curve
    assert report["smoothness"] == [None, None, None]  # one point per curve: no verdict
    assert "coefficient of variation: 0.000 % -> good" in variance.stdout
    assert "unknown: curves need 3 points" in variance.stdout
    assert_png(proxy / "variance-short.png")
    baseline = cli("proxy", "variance", str(proxy), "--config", "baseline", "-k", "2")
    assert baseline.returncode == 0, baseline.stderr
    report = json.loads((proxy / "variance-baseline.json").read_text())
    assert report["stop_step"] is None and report["smoothness"] == [0.0, 0.0]
    assert report["smoothness_good"] is True


@pytest.mark.slow
def test_killed_select_models_resumes_instead_of_starting_over(
    cli, corenas_process, tmp_path: Path
) -> None:
    proxy = tmp_path / "proxy"
    args = ["proxy", "select-models", str(proxy), *CURVES, "+budget.sleep_s=0.1", *SELECT]
    process = corenas_process(*args)
    wait_until(lambda: len(finished(proxy / "select")) >= 3)
    process.kill()
    process.wait()
    before = finished(proxy / "select")
    assert 3 <= len(before) < 12
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert f"resuming {proxy / 'select'}" in again.stderr
    after = finished(proxy / "select")
    assert sorted(after) == list(range(1, 13))  # 12 models, none trained twice
    assert all(after[i] == before[i] for i in before)  # what finished before was kept
    assert (proxy / "candidates.json").is_file()


@pytest.mark.slow
def test_killed_proxy_search_resumes_and_keeps_finished_configs(
    cli, corenas_process, tmp_path: Path
) -> None:
    proxy = tmp_path / "proxy"
    assert cli("proxy", "select-models", str(proxy), *CURVES, *SELECT).returncode == 0
    full = cli("proxy", "train-candidates", str(proxy), "search.stage2.budget.steps=10")
    assert full.returncode == 0, full.stderr
    slow = """
configs:
  - name: first
    overrides: [budget.steps=3, budget.sleep_s=0.05]
  - name: second
    overrides: [budget.steps=6, +budget.invert=true, budget.sleep_s=0.2]
"""
    (tmp_path / "slow.yaml").write_text(slow)
    args = ["proxy", "search", str(proxy), "--configs", str(tmp_path / "slow.yaml")]
    process = corenas_process(*args, "--no-progress")
    second = proxy / "search" / "second"
    wait_until(lambda: len(finished(second)) >= 2)
    process.kill()
    process.wait()
    first_before, second_before = finished(proxy / "search" / "first"), finished(second)
    assert len(first_before) == 6 and 2 <= len(second_before) < 6
    again = cli(*args, "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "completed before; reading its results" in again.stderr
    assert f"resuming {second}" in again.stderr
    assert finished(proxy / "search" / "first") == first_before
    second_after = finished(second)
    assert sorted(second_after) == list(range(1, 7))
    assert all(second_after[i] == second_before[i] for i in second_before)
    result = json.loads((proxy / "proxy_search.json").read_text())
    assert [c["name"] for c in result["configs"]] == ["first", "second"]
    assert result["chosen"] == "first"


@pytest.mark.slow
def test_real_digits_trainings_with_measured_latency(cli, tmp_path: Path) -> None:
    """The same tools on Lightning trainings of real CNNs with CPU latency: the spread is over
    latency too, a data subset passes through to the trainer, and latency tau is computed."""
    proxy = tmp_path / "proxy"
    tiny = ["budget.epochs=1", "hardware.runs=10", "hardware.warmup=2"]
    selected = cli(
        "proxy",
        "select-models",
        str(proxy),
        *tiny,
        "--models",
        "7",
        "--keep",
        "5",
        "--drop",
        "1",
        "--no-progress",
    )
    assert selected.returncode == 0, selected.stderr
    candidates = json.loads((proxy / "candidates.json").read_text())
    assert candidates["latency_metric"] == "latency_ms"
    assert all(c["latency_ms"] > 0 for c in candidates["candidates"])
    full = cli(
        "proxy", "train-candidates", str(proxy), "search.stage2.budget.epochs=2", "--no-progress"
    )
    assert full.returncode == 0, full.stderr
    (tmp_path / "p.yaml").write_text(
        "configs:\n  - name: half\n    overrides: [budget.data_fraction=0.5]\n"
    )
    searched = cli(
        "proxy", "search", str(proxy), "--configs", str(tmp_path / "p.yaml"), "--no-progress"
    )
    assert searched.returncode in (0, 1), searched.stderr  # 1: no config reached 0.65
    (half,) = json.loads((proxy / "proxy_search.json").read_text())["configs"]
    assert half["valid"] == 5 and half["curve"]
    assert half["latency"] is not None and -1 <= half["latency"]["tau"] <= 1
    trials, _ = stored(proxy / "search" / "half")
    steps = {t.metrics.get("steps") for t in trials}
    selection, _ = stored(proxy / "select")
    full_steps = {t.metrics.get("steps") for t in selection if t.stage != TRAIN_STAGE}
    assert max(steps) < max(full_steps)  # half the data: fewer optimizer steps per epoch
    assert_png(proxy / "tau.png")
