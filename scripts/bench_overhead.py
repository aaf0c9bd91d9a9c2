"""Framework overhead of a corenas search, next to Optuna's ask/tell loop on the same space.

What it measures
----------------
*corenas*: ``start_search`` (in-process, as ``corenas search`` runs it) with the random
controller, the inline executor, the SQLite store in the job directory and a no-op function
trainer (``corenas.testing:noop_trainer``, constant accuracy 0.5) on the built-in
``tabular_mlp`` space: a conditional space of 1-4 repeated layers (width x dropout), activation,
optimiser branch (sgd: momentum float + nesterov; adam: beta1), log-uniform learning rate and
batch size; 9-15 decisions per architecture. Everything a real search does per trial is timed:
sampling and de-duplication, genome validation, architecture ids, three store transactions,
building the (identity) architecture, the trainer call, reward, event hooks, the trial timeout.

The per-trial overhead is ``(T(N) - T(1)) / (N - 1)`` where ``T(n)`` is the wall time of
``start_search`` with ``search.max_trials=n`` in a fresh job directory, so one-time costs (job
directory, store schema, config file, executor start) are left out of it; they are shown as
"setup s" together with Hydra's composition of the config.

*Optuna*: ``study.ask()`` / ``objective(trial)`` / ``study.tell(trial, value)`` with
``RandomSampler(seed=0)`` (the same algorithm as corenas' random controller) and an objective
that suggests the same decisions with the same conditions and returns 0.5; once on
``sqlite:///`` storage (Optuna's default RDB storage) and once in memory. Per-trial overhead is
the loop's wall time / N; ``create_study`` is "setup s". Optuna with SQLite is slow enough that
it runs ``--optuna-sqlite-trials`` trials (default 2,000) unless told otherwise: the table's
"trials" column says how many each row ran.

Extra rows: corenas with its store in memory (``storage.url=sqlite:///:memory:``) next to
Optuna in memory; with ``--durability``, corenas with ``storage.synchronous=FULL`` (an fsync per
commit, like Optuna's default SQLite) and Optuna's SQLite switched to WAL +
``synchronous=NORMAL`` (corenas' default), so each store is also compared at equal durability.

Other modes: ``--breakdown`` times corenas' per-trial work by component (exclusive wall time,
by wrapping the functions involved), ``--profile PATH`` saves a cProfile of one corenas run,
``--cli`` times ``corenas --help`` and ``corenas plugins`` (median of 5 runs of the console
script) and checks with ``PYTHONPROFILEIMPORTTIME`` that they import neither torch nor lightning.

Nothing here asserts on timings; it prints them.

Usage::

    pip install -e .[bench]
    python scripts/bench_overhead.py [--trials 10000] [--optuna-sqlite-trials 2000]
        [--repeat 1] [--durability] [--breakdown] [--profile PATH] [--cli] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPACE_OVERRIDES = [
    "space=tabular_mlp",
    "hardware=none",
    "trainer=function",
    "trainer.target=corenas.testing:noop_trainer",
    "reward=accuracy",
    "executor=inline",
    "controller=random",
    "search.max_failed_trials=0",
]
"""The corenas search of every corenas row (plus job_dir and max_trials)."""

OBJECTIVE_VALUE = 0.5
"""What both trainers return (``corenas.testing.noop_trainer`` returns accuracy 0.5)."""


# --- results ----------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the results table."""

    system: str
    storage: str
    trials: int
    setup_s: float
    total_s: float
    ms_per_trial: float
    runs_ms: list[float] = field(default_factory=list)


def _status(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# --- corenas ----------------------------------------------------------------------------------
def _corenas_search(
    trials: int, workdir: Path, extra: list[str], plugins: Any
) -> tuple[float, float]:
    """Compose and run one corenas search of ``trials`` trials; (compose s, start_search s)."""
    from corenas.config import compose
    from corenas.engine import start_search

    job_dir = Path(tempfile.mkdtemp(prefix="corenas-", dir=workdir)) / "job"
    overrides = [*SPACE_OVERRIDES, *extra, f"job_dir={job_dir}", f"search.max_trials={trials}"]
    started = time.perf_counter()
    cfg = compose(plugins, overrides)
    composed = time.perf_counter()
    summary = start_search(cfg, plugins, job_dir, progress=False)
    finished = time.perf_counter()
    done = summary.counts.get("succeeded", 0)
    if done != trials:
        raise RuntimeError(f"corenas ran {done} of {trials} trials: {summary.message}")
    shutil.rmtree(job_dir.parent, ignore_errors=True)
    return composed - started, finished - composed


def bench_corenas(trials: int, repeat: int, workdir: Path, storage: str, extra: list[str]) -> Row:
    """Per-trial overhead (T(N) - T(1)) / (N - 1), median over ``repeat`` pairs of runs."""
    from corenas.plugins import get_plugins

    plugins = get_plugins()
    _corenas_search(2, workdir, extra, plugins)  # warm-up: first Hydra compose, imports
    per_trial, setups, totals = [], [], []
    for _ in range(repeat):
        compose_s, one = _corenas_search(1, workdir, extra, plugins)
        compose_n, many = _corenas_search(trials, workdir, extra, plugins)
        per_trial.append((many - one) / (trials - 1) * 1000)
        setups.append(compose_s + one)
        totals.append(compose_n + many)
    return Row(
        "corenas", storage, trials, _median(setups), _median(totals), _median(per_trial), per_trial
    )


# --- optuna -----------------------------------------------------------------------------------
def objective(trial: Any) -> float:
    """The ``tabular_mlp`` space (conf/space/tabular_mlp.yaml) in Optuna's define-by-run API,
    with corenas' decision names; returns the no-op trainer's constant."""
    layers = trial.suggest_categorical("layers", [1, 2, 3, 4])
    for i in range(layers):
        trial.suggest_categorical(f"layers.{i}.width", [16, 32, 64, 128, 256])
        trial.suggest_categorical(f"layers.{i}.dropout", [0.0, 0.1, 0.3])
    trial.suggest_categorical("activation", ["relu", "gelu", "silu"])
    if trial.suggest_categorical("optimizer", ["sgd", "adam"]) == "sgd":
        trial.suggest_float("optimizer.sgd.momentum", 0.0, 0.99)
        trial.suggest_categorical("optimizer.sgd.nesterov", [False, True])
    else:
        trial.suggest_categorical("optimizer.adam.beta1", [0.8, 0.9, 0.95])
    trial.suggest_float("lr", 1.0e-4, 1.0e-1, log=True)
    trial.suggest_categorical("batch_size", [32, 64, 128])
    return OBJECTIVE_VALUE


def _optuna_storage(kind: str, workdir: Path) -> Any:
    """None (in memory), an ``sqlite:///`` URL, or an RDBStorage in WAL + synchronous=NORMAL."""
    if kind == "memory":
        return None
    path = Path(tempfile.mkdtemp(prefix="optuna-", dir=workdir)) / "optuna.db"
    url = f"sqlite:///{path}"
    if kind == "sqlite":
        return url
    import optuna
    import sqlalchemy

    storage = optuna.storages.RDBStorage(url)

    def wal(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", wal)
    storage.engine.dispose()  # later connections get the pragmas
    return storage


def _optuna_run(trials: int, kind: str, workdir: Path) -> tuple[float, float]:
    """(create_study s, ask/tell loop s) of one Optuna study of ``trials`` trials."""
    import optuna

    started = time.perf_counter()
    storage = _optuna_storage(kind, workdir)
    study = optuna.create_study(
        storage=storage, sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize"
    )
    created = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        study.tell(trial, objective(trial))
    finished = time.perf_counter()
    done = len(study.trials)
    if done != trials:
        raise RuntimeError(f"optuna ran {done} of {trials} trials")
    return created - started, finished - created


def bench_optuna(trials: int, repeat: int, workdir: Path, kind: str, label: str) -> Row:
    per_trial, setups, totals = [], [], []
    for _ in range(repeat):
        setup, loop = _optuna_run(trials, kind, workdir)
        per_trial.append(loop / trials * 1000)
        setups.append(setup)
        totals.append(setup + loop)
    return Row(
        "optuna", label, trials, _median(setups), _median(totals), _median(per_trial), per_trial
    )


# --- breakdown --------------------------------------------------------------------------------
class ExclusiveTimer:
    """Wall time spent in wrapped functions, each call's time minus that of wrapped callees."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[float] = []

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        stack, own, calls = self._stack, self.own, self.calls
        clock = time.perf_counter

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack.append(0.0)
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = clock() - started
                own[label] += elapsed - stack.pop()
                calls[label] += 1
                if stack:
                    stack[-1] += elapsed

        return timed


@contextlib.contextmanager
def _patched(targets: list[tuple[Any, str, str]], timer: ExclusiveTimer) -> Iterator[None]:
    """Replace ``owner.attribute`` by its timed version for the duration."""
    saved = [(owner, attr, owner.__dict__[attr]) for owner, attr, _ in targets]
    try:
        for owner, attr, label in targets:
            original = owner.__dict__[attr]
            if isinstance(original, staticmethod):
                setattr(owner, attr, staticmethod(timer.wrap(label, original.__func__)))
            else:
                setattr(owner, attr, timer.wrap(label, original))
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def _breakdown_targets() -> list[tuple[Any, str, str]]:
    import corenas.controller.random as random_controller
    import corenas.records as records
    import corenas.store.sql as sql_store
    from corenas.controller.base import Controller
    from corenas.engine import SearchDriver
    from corenas.executor.inline import InlineExecutor
    from corenas.space.space import Space
    from corenas.trainer.function import FunctionTrainer
    from corenas.trial import TrialRunner

    store = sql_store.SQLStore  # SQLiteStore's queries live in the shared SQL base
    return [
        (store, "add_trials", "store.add_trials: INSERT trial + checkpoint, 1 commit"),
        (store, "mark_running", "store.mark_running: UPDATE, 1 commit"),
        (store, "finish_trial", "store.finish_trial: UPDATE + SELECT + checkpoint, 1 commit"),
        (sql_store, "dump_data", "store: canonical JSON of genome / controller state"),
        (sql_store, "dump_metrics", "store: JSON of metrics"),
        (store, "_trial_of", "store: row -> Trial (json.loads genome, metrics)"),
        (random_controller.RandomController, "ask", "controller.ask: sample genome"),
        (random_controller, "architecture_id", "architecture_id (controller de-dup)"),
        (records, "architecture_id", "architecture_id (driver, Architecture.of)"),
        (Controller, "state_dict", "controller.state_dict: RNG state"),
        (Space, "validate", "space.validate (driver + build)"),
        (Space, "build", "space.build: materialise architecture"),
        (FunctionTrainer, "fit", "trainer: no-op function"),
        (TrialRunner, "run", "TrialRunner.run: context, metric checks"),
        (InlineExecutor, "poll", "inline executor: SIGALRM timeout, events"),
        (SearchDriver, "_emit", "event hooks (pluggy, no listeners)"),
        (SearchDriver, "_fill", "driver._fill: rest"),
        (SearchDriver, "_submit", "driver._submit: TrialTask, bookkeeping"),
        (SearchDriver, "_finish", "driver._finish: reward, Trial record"),
        (SearchDriver, "summary", "end of search: summary (reads all trials)"),
        (SearchDriver, "run", "driver loop: _done, _show, rest"),
    ]


@dataclass
class Breakdown:
    trials: int
    total_ms_per_trial: float
    statements_per_trial: float
    rows: list[tuple[str, float, float]]  # (component, calls per trial, us per trial)


def run_breakdown(trials: int, workdir: Path) -> Breakdown:
    """One instrumented corenas run; exclusive time per component, per trial."""
    from corenas.plugins import get_plugins
    from corenas.store.sqlite import SQLiteStore

    plugins = get_plugins()
    timer = ExclusiveTimer()
    statements = Counter[str]()
    original_init = SQLiteStore.__init__

    def traced_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self._conn is not None:
            self._conn.set_trace_callback(lambda sql: statements.update([sql.split()[0]]))

    _corenas_search(2, workdir, [], plugins)  # warm-up
    SQLiteStore.__init__ = traced_init  # type: ignore[method-assign]
    try:
        with _patched(_breakdown_targets(), timer):
            _, seconds = _corenas_search(trials, workdir, [], plugins)
    finally:
        SQLiteStore.__init__ = original_init  # type: ignore[method-assign]
    timed = sum(timer.own.values())
    rows = [
        (label, timer.calls[label] / trials, timer.own[label] / trials * 1e6)
        for label in sorted(timer.own, key=lambda k: -timer.own[k])
    ]
    rows.append(("start_search outside the driver (setup)", 0.0, (seconds - timed) / trials * 1e6))
    return Breakdown(trials, seconds / trials * 1000, sum(statements.values()) / trials, rows)


def print_breakdown(result: Breakdown) -> None:
    total_us = sum(us for _, _, us in result.rows)
    print(
        f"\ncorenas per-trial breakdown ({result.trials} trials, instrumented run: "
        f"{result.total_ms_per_trial:.3f} ms/trial incl. setup and timer overhead; "
        f"{result.statements_per_trial:.1f} SQL statements/trial)\n"
    )
    print("| component | calls/trial | us/trial | share |")
    print("|---|---:|---:|---:|")
    for label, calls, us in result.rows:
        print(f"| {label} | {calls:.2f} | {us:.1f} | {us / total_us:.0%} |")


def run_profile(trials: int, workdir: Path, path: Path) -> str:
    """cProfile one corenas run into ``path``; the top functions by own time, as text."""
    import cProfile
    import io
    import pstats

    from corenas.plugins import get_plugins

    plugins = get_plugins()
    _corenas_search(2, workdir, [], plugins)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _corenas_search(trials, workdir, [], plugins)
    finally:
        profiler.disable()
    profiler.dump_stats(str(path))
    text = io.StringIO()
    text.write(
        f"\ncProfile of one corenas run of {trials} trials saved to {path}; top by own time:\n"
    )
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return text.getvalue()


# --- CLI start-up -----------------------------------------------------------------------------
def _console_script() -> str:
    sibling = Path(sys.executable).with_name("corenas")
    found = str(sibling) if sibling.exists() else shutil.which("corenas")
    if not found:
        raise SystemExit("the corenas console script is not installed: pip install -e .")
    return found


def _imported_packages(command: list[str]) -> tuple[set[str], list[tuple[str, float]]]:
    """Top-level packages ``command`` imports, and the slowest top-level imports (name, ms)."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    packages: set[str] = set()
    top: list[tuple[str, float]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        name = parts[2].rstrip()
        if not parts[1].strip().isdigit():
            continue  # the header line
        packages.add(name.strip().split(".")[0])
        if not name.startswith("  "):  # imported by the command itself, not by a module
            top.append((name.strip(), int(parts[1]) / 1000))
    top.sort(key=lambda item: -item[1])
    return packages, top[:3]


def bench_cli(runs: int = 5) -> list[dict[str, Any]]:
    """Median wall time of the console script's ``--help`` and ``plugins``, and their imports."""
    script = _console_script()
    results = []
    for args in (["--help"], ["plugins"]):
        command = [script, *args]
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - started)
        packages, top = _imported_packages(command)
        results.append(
            {
                "command": "corenas " + " ".join(args),
                "median_ms": _median(times) * 1000,
                "runs_ms": [t * 1000 for t in times],
                "imports_torch": "torch" in packages,
                "imports_lightning": "lightning" in packages or "pytorch_lightning" in packages,
                "slowest_imports_ms": top,
            }
        )
    baseline = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - started)
    results.append(
        {
            "command": "python -c pass (interpreter start-up)",
            "median_ms": _median(baseline) * 1000,
            "runs_ms": [t * 1000 for t in baseline],
        }
    )
    return results


def print_cli(results: list[dict[str, Any]]) -> None:
    print("\nCLI start-up (median of 5 runs of the console script)\n")
    print("| command | median ms | imports torch | imports lightning | slowest imports |")
    print("|---|---:|---|---|---|")
    for item in results:
        if "imports_torch" not in item:
            print(f"| {item['command']} | {item['median_ms']:.0f} | - | - | - |")
            continue
        slow = ", ".join(f"{name} {ms:.0f} ms" for name, ms in item["slowest_imports_ms"])
        print(
            f"| {item['command']} | {item['median_ms']:.0f} | "
            f"{'yes' if item['imports_torch'] else 'no'} | "
            f"{'yes' if item['imports_lightning'] else 'no'} | {slow} |"
        )


# --- report -----------------------------------------------------------------------------------
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": usable,
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "corenas": _version("corenas"),
        "optuna": _version("optuna"),
        "load_before": _load(),
    }


def _load() -> str:
    """The 1-minute load average (other processes on the machine skew every number)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def print_table(rows: list[Row], info: dict[str, Any]) -> None:
    reference = next(
        (r.ms_per_trial for r in rows if r.system == "corenas" and r.storage == "sqlite"), None
    )
    print(
        f"\n{info['date']} | {info['cores']} cores ({info['cpu']}) | {info['platform']} | "
        f"python {info['python']} | SQLite {info['sqlite']} | corenas {info['corenas']} | "
        f"optuna {info['optuna']} | load average {info['load_before']} before, "
        f"{info.get('load_after', '?')} after\n"
    )
    print(
        "| system | storage | trials | setup s | total s | ms/trial | min-max ms/trial "
        "| ratio vs corenas (sqlite) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = f"{row.ms_per_trial / reference:.1f}x" if reference else "-"
        runs = row.runs_ms
        spread = f"{min(runs):.3f}-{max(runs):.3f}" if len(runs) > 1 else "-"
        print(
            f"| {row.system} | {row.storage} | {row.trials:,} | {row.setup_s:.2f} | "
            f"{row.total_s:.1f} | {row.ms_per_trial:.3f} | {spread} | {ratio} |"
        )
    print(
        "\nms/trial: median of the row's runs; corenas (T(N) - T(1)) / (N - 1) of start_search, "
        "Optuna ask/tell loop / N.\nsetup s: corenas compose + T(1), Optuna create_study. "
        "total s: one run of N trials, setup included."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=10_000,
        help="trials of corenas and of Optuna in memory (default 10000)",
    )
    parser.add_argument(
        "--optuna-sqlite-trials",
        type=int,
        default=2_000,
        help="trials of Optuna on SQLite (default 2000; ~0.1 s each)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per row; the table shows their median and range (default 1)",
    )
    parser.add_argument(
        "--durability",
        action="store_true",
        help="also corenas synchronous=FULL and Optuna SQLite in WAL/NORMAL",
    )
    parser.add_argument("--skip-optuna", action="store_true", help="corenas rows only")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time corenas' per-trial work by component"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PATH",
        help="also save a cProfile of one corenas run to PATH",
    )
    parser.add_argument(
        "--cli", action="store_true", help="also time `corenas --help` and `corenas plugins`"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where job directories and databases go (default: the temp dir)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    if args.trials < 2 or args.optuna_sqlite_trials < 1 or args.repeat < 1:
        parser.error("--trials must be >= 2, --optuna-sqlite-trials and --repeat >= 1")
    if not args.skip_optuna:
        try:
            import optuna
        except ImportError:
            parser.error("Optuna is not installed: pip install -e .[bench] (or --skip-optuna)")
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    n, n_sql = args.trials, args.optuna_sqlite_trials
    phases: list[tuple[str, Callable[[Path], Row]]] = [
        (f"corenas, sqlite, {n} trials", lambda d: bench_corenas(n, args.repeat, d, "sqlite", [])),
        (
            f"corenas, sqlite in memory, {n} trials",
            lambda d: bench_corenas(
                n, args.repeat, d, "sqlite :memory:", ["storage.url=sqlite:///:memory:"]
            ),
        ),
    ]
    if args.durability:
        phases.append(
            (
                f"corenas, sqlite synchronous=FULL, {n_sql} trials",
                lambda d: bench_corenas(
                    n_sql, args.repeat, d, "sqlite synchronous=FULL", ["storage.synchronous=FULL"]
                ),
            )
        )
    if not args.skip_optuna:
        phases.append(
            (
                f"optuna, sqlite, {n_sql} trials",
                lambda d: bench_optuna(n_sql, args.repeat, d, "sqlite", "sqlite"),
            )
        )
        if args.durability:
            phases.append(
                (
                    f"optuna, sqlite WAL synchronous=NORMAL, {n_sql} trials",
                    lambda d: bench_optuna(
                        n_sql, args.repeat, d, "wal", "sqlite WAL synchronous=NORMAL"
                    ),
                )
            )
        phases.append(
            (
                f"optuna, in memory, {n} trials",
                lambda d: bench_optuna(n, args.repeat, d, "memory", "in memory"),
            )
        )

    info = machine()
    rows: list[Row] = []
    breakdown: Breakdown | None = None
    cli: list[dict[str, Any]] | None = None
    profile = ""
    extra_phases = int(args.breakdown) + int(args.profile is not None) + int(args.cli)
    count = len(phases) + extra_phases
    with tempfile.TemporaryDirectory(prefix="bench-overhead-", dir=args.dir) as tmp:
        workdir = Path(tmp)
        for index, (label, phase) in enumerate(phases, 1):
            _status(f"[{index}/{count}] {label} x{args.repeat} ...", end=" ")
            started = time.perf_counter()
            row = phase(workdir)
            rows.append(row)
            _status(f"{row.ms_per_trial:.3f} ms/trial ({time.perf_counter() - started:.0f} s)")
        index = len(phases)
        if args.breakdown:
            index += 1
            _status(f"[{index}/{count}] corenas breakdown, {n} trials ...", end=" ")
            breakdown = run_breakdown(n, workdir)
            _status("done")
        if args.profile is not None:
            index += 1
            _status(f"[{index}/{count}] corenas cProfile, {n} trials ...", end=" ")
            profile = run_profile(n, workdir, args.profile)
            _status("done")
        if args.cli:
            index += 1
            _status(f"[{index}/{count}] CLI start-up ...", end=" ")
            cli = bench_cli()
            _status("done")

    info["load_after"] = _load()
    print_table(rows, info)
    if breakdown is not None:
        print_breakdown(breakdown)
    if cli is not None:
        print_cli(cli)
    if profile:
        print(profile)
    if args.json is not None:
        data = {
            "command": " ".join(["python", *sys.argv]),
            "machine": info,
            "rows": [asdict(row) for row in rows],
            "breakdown": asdict(breakdown) if breakdown else None,
            "cli": cli,
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
