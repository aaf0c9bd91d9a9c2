"""Helpers for testing corenas and its plugins: deterministic trainers and fault injection.

``trainer=function trainer.target=corenas.testing:scripted_trainer`` gives every architecture a
deterministic pseudo-accuracy (from its id) and misbehaves on cue, as set in ``budget``:
``sleep_s`` (every trial), and the trial-id lists ``raise_on``, ``nan_on``, ``abort_on``
(``os.abort()``), ``exit_on`` (``os._exit(3)``), ``hang_on`` (sleeps for an hour) and
``memory_on`` (raises MemoryError), ``bad_report_on`` (reports a string); ``run_log`` names
a file that gets a line "<pid> <parent pid> <trial id>" at the start of every run;
``busy_s`` keeps the CPU busy that long, appending "<trial id> <time.time()>" to the file
``busy_log`` about every millisecond (to see when a trial really ran). Used by the test suite
and scripts/bench_overhead.py.
"""

from __future__ import annotations

import os
import time
from typing import Any

from corenas.records import Genome, Metrics
from corenas.trainer.base import TrialContext


def pseudo_accuracy(arch_id: str) -> float:
    """A stable number in [0, 1) derived from an architecture id."""
    return int(arch_id[:8], 16) / 16**8


def noop_trainer(genome: Genome, built: Any) -> Metrics:
    """Does nothing; returns a constant accuracy (measures framework overhead)."""
    return {"accuracy": 0.5}


def curve_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """A deterministic learning curve: ``accuracy`` rises towards a final value derived from
    the architecture id, reported at steps 1..``budget.steps`` (default 10); the final value
    is scaled down to 0.05-0.15 when the genome matches every item of ``budget.crippled_if``
    (e.g. ``{optimizer: sgd}``); ``budget.invert`` turns the ranking of architectures upside
    down (a proxy task that disagrees with full training). Returns ``accuracy`` and
    ``steps``; ``budget.sleep_s`` per step."""
    steps = int(context.budget.get("steps", 10))
    crippled = context.budget.get("crippled_if") or {}
    base = pseudo_accuracy(context.arch_id)
    if context.budget.get("invert"):
        base = 1.0 - base
    if crippled and all(genome.get(k) == v for k, v in crippled.items()):
        final = 0.05 + 0.1 * base
    else:
        final = 0.5 + 0.5 * base
    accuracy = 0.0
    for step in range(1, steps + 1):
        if context.budget.get("sleep_s"):
            time.sleep(float(context.budget["sleep_s"]))
        accuracy = final * (1.0 - 0.5 ** (step / 2.0))
        context.reporter(step, {"accuracy": accuracy})
    return {"accuracy": accuracy, "steps": float(steps)}


def scripted_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """Deterministic pseudo-accuracy, with faults injected per ``context.budget``."""
    budget = context.budget
    trial = context.trial_id
    if budget.get("run_log"):  # one line per run, written before anything else
        with open(budget["run_log"], "a") as log:
            log.write(f"{os.getpid()} {os.getppid()} {trial}\n")

    def on(key: str) -> bool:
        return trial in (budget.get(key) or [])

    if budget.get("sleep_s"):
        time.sleep(float(budget["sleep_s"]))
    if budget.get("busy_s"):
        busy(trial, float(budget["busy_s"]), budget.get("busy_log"))
    if on("raise_on"):
        raise RuntimeError(f"injected failure in trial {trial}")
    if on("memory_on"):
        raise MemoryError(f"injected out-of-memory in trial {trial}")
    if on("abort_on"):
        os.abort()
    if on("exit_on"):
        os._exit(3)
    if on("hang_on"):
        time.sleep(3600)
    accuracy = pseudo_accuracy(context.arch_id)
    if on("bad_report_on"):
        context.reporter(1, {"accuracy": "high"})  # type: ignore[dict-item]
    context.reporter(1, {"accuracy": accuracy / 2})
    if on("nan_on"):
        return {"accuracy": float("nan")}
    return {"accuracy": accuracy}


def busy(trial: int, seconds: float, log_path: str | None) -> None:
    """Spin the CPU for ``seconds``; with ``log_path``, append "<trial> <time.time()>" about
    every millisecond."""
    end = time.monotonic() + seconds
    log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
    try:
        while time.monotonic() < end:
            mark = time.monotonic() + 0.001
            while time.monotonic() < mark:
                pass
            if log is not None:
                log.write(f"{trial} {time.time():.6f}\n")
    finally:
        if log is not None:
            log.close()


# --- conformance suites: built-ins pass them, plugin authors run them on their own kinds ----


def check_search_space(
    space: Any, samples: int = 200, seed: int = 0, grid_limit: int = 5000
) -> None:
    """Assert that ``space`` keeps the SearchSpace promises; raises AssertionError naming the
    broken one. Checks sampling determinism, validate/JSON round trips, stable ids, mutation
    and neighbourhoods staying inside, encodings of constant length, and (for finite spaces of
    at most ``grid_limit`` architectures) that the grid enumerates each one once."""
    import json
    import math

    import numpy as np

    from corenas.records import architecture_id, canonical_json

    size = space.size()
    assert (isinstance(size, int) and size >= 1) or size == math.inf, f"bad size {size!r}"
    description = json.loads(json.dumps(space.describe()))
    assert {"name", "size", "decisions"} <= set(description), "describe() lacks keys"
    assert description["size"] == (size if size != math.inf else "inf"), "describe() size"
    first = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    second = [space.sample(np.random.default_rng(seed)) for _ in range(3)]
    assert first == second, "sampling is not deterministic for a fixed seed"
    rng = np.random.default_rng(seed)
    width = space.encoding_size()
    for _ in range(samples):
        genome = space.sample(rng)
        assert space.validate(genome) == genome, f"sample is not canonical: {genome}"
        again = space.validate(json.loads(json.dumps(genome)))
        assert canonical_json(again) == canonical_json(genome), "JSON round trip changed it"
        assert architecture_id(again) == architecture_id(genome)
        mutated = space.mutate(genome, rng)
        assert space.validate(mutated) == mutated, f"mutation left the space: {mutated}"
        for neighbour in space.neighbours(genome, rng)[:20]:
            assert space.validate(neighbour) == neighbour, "neighbour left the space"
            assert neighbour != genome, "a neighbour equals the genome"
        vector = np.asarray(space.encode(genome), dtype=float)
        assert vector.shape == (width,), f"encoding length {vector.shape} != ({width},)"
        assert np.all(np.isfinite(vector)), "encoding is not finite"
    if size != math.inf and size <= grid_limit:
        ids = [architecture_id(space.validate(g)) for g in space.grid()]
        assert len(ids) == size == len(set(ids)), "grid does not enumerate the space once"


def check_random_genomes_train(
    space: Any,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    count: int = 100,
    seed: int = 0,
) -> list[Genome]:
    """Assert that ``count`` genomes sampled from ``space`` (numpy and torch seeded with
    ``seed``) each build a model whose output for a random batch of 2 inputs of
    ``input_shape`` has shape ``(2, *output_shape)`` and whose every parameter gets a gradient
    from the output's sum; returns the genomes (for checks of what was covered)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    genomes: list[Genome] = []
    for _ in range(count):
        genome = space.sample(rng)
        model = space.build(genome)
        out = model(torch.randn(2, *input_shape))
        assert out.shape == (2, *output_shape), f"output {tuple(out.shape)} for {genome}"
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters()), f"no gradient: {genome}"
        genomes.append(genome)
    return genomes


def ask_tell(
    controller: Any,
    objective: Any,
    trials: int,
    batch: int = 1,
    start_id: int = 1,
) -> list[Any]:
    """Drive ``controller`` without a job: ask ``batch`` genomes at a time, tell each as a
    succeeded trial whose reward is ``objective(genome)``, until ``trials`` trials or until the
    controller has nothing more to propose. Returns the trials in order; raises AssertionError
    if ``ask(n)`` returns more than ``n`` genomes. (The loop of ``corenas benchmark``:
    ``corenas.benchmarks.runner.ask_tell``, which also tells the trials' metrics.)"""
    from corenas.benchmarks.runner import ask_tell as run_ask_tell

    return run_ask_tell(
        controller, lambda genome, _trial_id: (objective(genome), {}), trials, batch, start_id
    )


def check_controller(make: Any, space: Any, rounds: int = 6, batch: int = 3, seed: int = 0) -> None:
    """Assert that a controller (``make(space, seed) -> Controller``) proposes valid genomes, has
    JSON state, and resumes exactly: a controller restored with ``load_state_dict(state,
    trials)`` after some rounds proposes what the uninterrupted one proposes next."""
    import json

    from corenas.records import architecture_id

    def play(controller: Any, start_id: int, n_rounds: int) -> list[Any]:
        trials = ask_tell(
            controller,
            lambda g: pseudo_accuracy(architecture_id(g)),
            n_rounds * batch,
            batch=batch,
            start_id=start_id,
        )
        for trial in trials:
            genome = trial.genome
            assert space.validate(genome) == genome, f"proposal outside the space: {genome}"
        return trials

    straight = make(space, seed)
    history = play(straight, 1, rounds)
    state = straight.state_dict()
    assert json.loads(json.dumps(state)) == state, "state_dict() is not JSON data"
    expected = play(straight, len(history) + 1, rounds)
    restored = make(space, seed + 1)
    restored.load_state_dict(json.loads(json.dumps(state)), history)
    continued = play(restored, len(history) + 1, rounds)
    assert [t.genome for t in continued] == [t.genome for t in expected], (
        "a controller restored from state_dict() proposes differently"
    )
