"""Executor ``ray`` on a real Ray cluster of processes on this machine (a head and two worker
nodes, which the fault test kills), started once for the module: results, reports and
early-stopping verdicts reach the job's store; per-trial resources bound how many trials run
at once; a trial's failure fails that trial alone; a trial lost with its node runs again up to
``executor.max_retries`` times, then fails; nothing finished is lost or run twice.

Without ray these tests skip, unless CORENAS_REQUIRE_RAY=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from corenas_ray.cluster import LocalCluster, Node
from corenas_test_helpers import SCRIPTED, pip_install

from corenas.config import compose
from corenas.engine import JobSummary, prepare, start_search
from corenas.executor.base import Finished
from corenas.jobdir import open_job_store
from corenas.plugins import Plugins, get_plugins
from corenas.records import Trial, TrialStatus
from corenas.trial import TrialTask

PACKAGE = Path(__file__).resolve().parents[1]
PIN = "pin"
"""A custom resource of the nodes that the node-loss test kills."""
PINNED_NODES = 2


def require_ray() -> None:
    """Skip the calling test when ray is missing (fail under CORENAS_REQUIRE_RAY=1)."""
    if importlib.util.find_spec("ray") is None:
        hint = 'ray is not installed (pip install "ray>=2.9")'
        if os.environ.get("CORENAS_REQUIRE_RAY") == "1":
            pytest.fail(f"{hint}, and CORENAS_REQUIRE_RAY=1 requires it")
        pytest.skip(f"{hint}; CORENAS_REQUIRE_RAY=1 turns this skip into a failure")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    """A Ray head (2 CPUs) and ``PINNED_NODES`` worker nodes (1 CPU each, with the resource
    ``PIN`` that the node-loss test pins its trials to) on this machine, the nodes started at
    once; every process it started is killed at the end, nothing else."""
    require_ray()
    cluster = LocalCluster(head_cpus=2)
    try:
        cluster.add_nodes(*[{PIN: 1}] * PINNED_NODES)
        yield cluster
    finally:
        cluster.stop()


def ray_search(
    plugins: Plugins, cluster: LocalCluster, job_dir: Path, *overrides: str
) -> tuple[JobSummary, list[Trial], dict[int, int]]:
    """Run a scripted search on ``cluster``; its summary, stored trials and the number of
    stored intermediate reports per trial."""
    cfg = compose(
        plugins, [*SCRIPTED, "executor=ray", f"executor.address={cluster.address}", *overrides]
    )
    summary = start_search(cfg, plugins, job_dir, progress=False)
    store = open_job_store(job_dir, plugins)
    try:
        trials = store.trials()
        return summary, trials, {t.id: len(store.intermediate(t.id)) for t in trials}
    finally:
        store.close()


def runs(run_log: Path) -> list[tuple[int, int]]:
    """``(pid, trial id)`` per run logged by ``corenas.testing:scripted_trainer``."""
    lines = run_log.read_text().split("\n") if run_log.exists() else []
    return [(int(p), int(t)) for p, _, t in (line.split() for line in lines if line)]


def test_search_stores_every_trial_with_its_reports_and_verdicts(
    plugins: Plugins, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    summary, trials, reports = ray_search(
        plugins,
        ray_cluster,
        tmp_path / "job",
        "trainer.target=corenas.testing:curve_trainer",
        "+budget.crippled_if={optimizer: sgd}",
        "search.max_trials=8",
        "search.max_parallel_trials=3",
        "search.early_stopping.thresholds=[{step: 3, value: 0.2}]",
    )
    assert summary.status.value == "completed"
    assert sorted(t.id for t in trials) == list(range(1, 9))
    crippled = [t for t in trials if t.genome["optimizer"] == "sgd"]
    assert crippled, "seed 0 draws at least one sgd architecture in 8"
    for trial in trials:
        if trial in crippled:  # judged hopeless at step 3 by the driver, stopped in its actor
            assert trial.status is TrialStatus.STOPPED and reports[trial.id] == 3
        else:
            assert trial.status is TrialStatus.SUCCEEDED and trial.metrics["steps"] == 10
            assert reports[trial.id] == 10 and trial.reward is not None
    assert summary.stopped_early == len(crippled)
    assert len({t.worker for t in trials}) <= 3  # actors are reused across trials


def test_per_trial_cpus_bound_the_trials_running_at_once(
    plugins: Plugins, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    # 2 CPUs per trial: only the head (2 CPUs) fits one, the worker nodes (1 CPU) none
    summary, trials, _ = ray_search(
        plugins,
        ray_cluster,
        tmp_path / "job",
        "executor.num_cpus_per_trial=2",
        "search.max_trials=4",
        "search.max_parallel_trials=3",
        "+budget.sleep_s=0.3",
    )
    assert summary.counts["succeeded"] == 4
    spans = sorted((t.started_at or 0.0, t.finished_at or 0.0) for t in trials)
    for (_, finished), (started, _) in zip(spans, spans[1:]):
        assert started >= finished, "two trials ran at once on a cluster with room for one"
    assert len({t.worker for t in trials}) == 1


def test_a_failing_trial_fails_alone(
    plugins: Plugins, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    summary, trials, _ = ray_search(
        plugins,
        ray_cluster,
        tmp_path / "job",
        "search.max_trials=8",
        "search.max_parallel_trials=3",
        "search.max_failed_trials=0",
        "search.trial_timeout_s=3",
        "+budget.raise_on=[2]",
        "+budget.abort_on=[3]",
        "+budget.hang_on=[4]",
        "+budget.nan_on=[5]",
        f"+budget.run_log={run_log}",
    )
    assert summary.status.value == "completed"
    by_id = {t.id: t for t in trials}
    assert sorted(by_id) == list(range(1, 9))
    assert "injected failure in trial 2" in (by_id[2].error or "")
    assert "died: because its worker process has died" in (by_id[3].error or "")
    assert by_id[4].error == "timed out after 3 s (search.trial_timeout_s)"
    assert "non-finite metric(s): accuracy" in (by_id[5].error or "")
    assert {i for i, t in by_id.items() if t.status is TrialStatus.FAILED} == {2, 3, 4, 5}
    assert all(by_id[i].status is TrialStatus.SUCCEEDED for i in (1, 6, 7, 8))
    assert sorted(trial for _, trial in runs(run_log)) == list(range(1, 9))  # each ran once


def test_cancel_all_stops_running_and_waiting_trials(
    plugins: Plugins, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    cfg = compose(
        plugins,
        [
            *SCRIPTED,
            "executor=ray",
            f"executor.address={ray_cluster.address}",
            "executor.num_cpus_per_trial=2",  # room for one trial: the other one waits
            "+budget.hang_on=[1,2]",
            f"+budget.run_log={run_log}",
        ],
    )
    prepared = prepare(cfg, plugins, tmp_path / "job")
    executor = prepared.executor
    executor.start(prepared.setup, 2)
    try:
        genome = prepared.space.sample(np.random.default_rng(0))
        for trial_id in (1, 2):
            executor.submit(TrialTask(trial_id, genome, "a", seed=trial_id))
        with pytest.raises(RuntimeError, match="beyond capacity"):
            executor.submit(TrialTask(3, genome, "a", seed=3))
        deadline = time.monotonic() + 60
        while not runs(run_log):  # one trial hangs in its actor
            assert not executor.poll(0.2)
            assert time.monotonic() < deadline, "no trial started on the Ray cluster"
        assert sorted(executor.running()) == [1, 2]
        (running,) = [int(line.split()[2]) for line in run_log.read_text().splitlines()]
        pid = run_log.read_text().split()[0]  # the actor's process, from the trainer's log
        assert (executor.where(running) or "").endswith(f":{pid}")  # shown by corenas status
        assert executor.where(3 - running) is None  # waiting for an actor
        assert sorted(executor.cancel_all()) == [1, 2]
        assert executor.running() == []
        assert not [e for e in executor.poll(0.5) if isinstance(e, Finished)]
        assert len(runs(run_log)) == 1  # the waiting trial never ran
    finally:
        executor.shutdown()


class NodeKiller(threading.Thread):
    """Kills the node running trial ``trial_id`` each time it starts there, ``times`` times
    (the trainer logs each run's pid before it sleeps)."""

    def __init__(self, nodes: list[Node], run_log: Path, trial_id: int, times: int) -> None:
        super().__init__(daemon=True)
        self.nodes, self.run_log, self.trial_id, self.times = nodes, run_log, trial_id, times
        self.killed: list[Node] = []
        self.done = threading.Event()

    def run(self) -> None:
        seen = 0
        while not self.done.wait(0.02) and len(self.killed) < self.times:
            logged = runs(self.run_log)
            for pid, trial in logged[seen:]:
                for node in self.nodes:
                    if trial == self.trial_id and node not in self.killed and pid in node.pids():
                        node.kill()
                        self.killed.append(node)
            seen = len(logged)


def test_a_trial_lost_with_its_node_is_retried_or_failed_per_max_retries(
    plugins: Plugins, ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    pinned = [n for n in ray_cluster.nodes if n.resources.get(PIN)]
    assert len(pinned) == 2

    def search_killing_trial_1(job: str, *overrides: str) -> tuple[NodeKiller, list[Trial]]:
        run_log = tmp_path / f"{job}.log"
        killer = NodeKiller(pinned, run_log, trial_id=1, times=1)
        killer.start()
        try:
            summary, trials, _ = ray_search(
                plugins,
                ray_cluster,
                tmp_path / job,
                f"executor.resources_per_trial={{{PIN}: 1}}",  # only the pinned nodes
                "search.max_parallel_trials=1",
                "+budget.sleep_s=1.0",
                f"+budget.run_log={run_log}",
                *overrides,
            )
        finally:
            killer.done.set()
            killer.join()
        assert summary.status.value == "completed"
        assert len(killer.killed) == 1, "trial 1 ran on a pinned node, which was killed"
        return killer, trials

    # max_retries=1: trial 1 runs again on the other pinned node and succeeds
    killer, trials = search_killing_trial_1(
        "retried", "executor.max_retries=1", "search.max_trials=3"
    )
    assert [(t.id, t.status) for t in trials] == [(i, TrialStatus.SUCCEEDED) for i in (1, 2, 3)]
    assert sorted(trial for _, trial in runs(tmp_path / "retried.log")) == [1, 1, 2, 3]
    survivor = next(n for n in pinned if n not in killer.killed)

    # max_retries=0: trial 1 fails with the reason when the last pinned node dies under it
    killer, trials = search_killing_trial_1(
        "failed", "executor.max_retries=0", "search.max_trials=1"
    )
    assert killer.killed == [survivor]
    assert [(t.id, t.status) for t in trials] == [(1, TrialStatus.FAILED)]
    assert "lost with its Ray node" in (trials[0].error or "")
    assert "run once (executor.max_retries=0)" in (trials[0].error or "")
    assert [trial for _, trial in runs(tmp_path / "failed.log")] == [1]


def run_installed(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``corenas ARGS`` in a fresh interpreter whose plugins include those in ``site``."""
    blocked = ("CORENAS_BLOCK_PLUGINS", "CORENAS_DISABLE_PLUGIN_AUTOLOAD")
    env = {k: v for k, v in os.environ.items() if k not in blocked}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "corenas.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_installed_plugin_searches_through_the_cli(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    pip_install(PACKAGE, site)
    job = tmp_path / "job"
    # executor=ray and its executor.* keys resolve only through the installed entry point
    # and the config directory it brings
    result = run_installed(
        site,
        "search",
        *SCRIPTED,
        "executor=ray",
        f"executor.address={ray_cluster.address}",
        "executor.max_retries=0",
        "search.max_trials=6",
        "search.max_parallel_trials=2",
        f"job_dir={job}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    store = open_job_store(job, get_plugins())
    try:
        trials = store.trials()
    finally:
        store.close()
    assert sorted(t.id for t in trials) == list(range(1, 7))
    assert {t.status for t in trials} == {TrialStatus.SUCCEEDED}
