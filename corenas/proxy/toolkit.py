"""The proxy-task tools as runs of ordinary corenas jobs inside one proxy directory.

    PROXY/select/            the model-selection job (random models, then stage 2 of the kept)
    PROXY/candidates.json    the correlation candidates           PROXY/selection.png
    PROXY/search/NAME/       one job per proxy configuration      PROXY/proxy_search.json, tau.png
    PROXY/variance/NAME-kK/  K repeated proxy trainings           PROXY/variance-NAME.json, .png

Every job is a normal job dir (store, resume, ``corenas trials``): running a tool again
resumes its unfinished jobs, leaves finished ones as they are and recomputes its results.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from corenas.config import compose, derive_config, to_container
from corenas.early_stopping import ReportJudge
from corenas.engine import (
    JobSummary,
    Stage2Request,
    plan_search,
    resume_search,
    start_search,
)
from corenas.errors import ConfigError
from corenas.jobdir import is_job_dir, open_job_store, read_job_config, write_atomically
from corenas.plugins import Plugins
from corenas.proxy.correlation import (
    ConfigVerdict,
    CorrelationStop,
    Requirements,
    choose,
    judge_config,
)
from corenas.proxy.plots import plot_selection, plot_tau, plot_variance
from corenas.proxy.selection import Model, select_spread
from corenas.proxy.variance import StepLimit, measure_variance
from corenas.records import (
    SEARCH_STAGE,
    TRAIN_STAGE,
    JobStatus,
    Metrics,
    Trial,
    TrialStatus,
    architecture_id,
)

CANDIDATES_FILE = "candidates.json"
SEARCH_FILE = "proxy_search.json"
BASELINE = "baseline"
"""The name of the selection job's own training as a proxy configuration (no overrides)."""

NO_EARLY_STOPPING = [
    "search.early_stopping.median=false",
    "search.early_stopping.thresholds=[]",
    "search.stage2.top=0",
    "search.stage2.every=0",
]
"""Every model of a proxy tool trains to its end (or to the tool's own stop)."""


def _say(text: str) -> None:
    print(f"corenas proxy: {text}", file=sys.stderr)


@dataclass(frozen=True)
class ProxyConfig:
    """A candidate proxy task: a name (a directory name) and dotted overrides of the
    selection job's config, e.g. ``budget.epochs=2`` or ``budget.data_fraction=0.25``."""

    name: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", self.name):
            raise ConfigError(
                f"proxy config name '{self.name}' must be letters, digits, '_', '.' or '-' "
                "(it names a directory)"
            )


def read_proxy_configs(path: Path) -> tuple[list[ProxyConfig], dict[str, Any]]:
    """The configurations of a YAML file ``configs: [{name: N, overrides: [k=v, ...]}, ...]``
    and its optional settings (``metric``, ``threshold``, ``hold``, ``time_limit_s``)."""
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except FileNotFoundError:
        raise ConfigError(f"proxy configs file '{path}' does not exist") from None
    except Exception as exc:
        raise ConfigError(f"proxy configs file '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("configs"), list):
        raise ConfigError(
            f"{path}: expected `configs: [{{name: quarter, overrides: "
            "[budget.data_fraction=0.25]}}, ...]`"
        )
    configs: list[ProxyConfig] = []
    for index, item in enumerate(data["configs"]):
        overrides = item.get("overrides", []) if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(overrides, list)
            or not all(isinstance(o, str) and "=" in o for o in overrides)
        ):
            raise ConfigError(
                f"{path}: configs[{index}] must be {{name: TEXT, overrides: [key=value, ...]}}"
            )
        configs.append(ProxyConfig(item["name"], tuple(overrides)))
    names = [c.name for c in configs]
    if not configs or len(set(names)) != len(names):
        raise ConfigError(f"{path}: give at least one config, each with a distinct name")
    settings = {str(k): v for k, v in data.items() if k != "configs"}
    unknown = set(settings) - {"metric", "threshold", "hold", "time_limit_s"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown keys {sorted(unknown)} (known: configs, metric, threshold, hold, "
            "time_limit_s)"
        )
    return configs, settings


# --- jobs -------------------------------------------------------------------------------------
def run_job(
    job_dir: Path,
    new_config: Callable[[], DictConfig],
    plugins: Plugins,
    progress: bool,
    judge: ReportJudge | None = None,
    same_config: bool = True,
) -> None:
    """Run the job in ``job_dir``: start it from ``new_config()`` when the directory is new,
    resume it when it did not complete, leave it when it did. With ``same_config`` an
    existing job must have been made from the same config (else ``ConfigError``: its results
    would be mislabelled). A run stopped before its end (Ctrl-C, ``corenas stop``) is a
    ``ConfigError`` too: its results would be partial."""
    if is_job_dir(job_dir):
        if same_config and _comparable(read_job_config(job_dir)) != _comparable(new_config()):
            raise ConfigError(
                f"{job_dir} was run with another configuration (the proxy config or the "
                "selection changed since); give this config another name or remove that directory"
            )
        store = open_job_store(job_dir, plugins)
        try:
            job = store.job()
        finally:
            store.close()
        if job is not None and job.status is JobStatus.COMPLETED:
            _say(f"{job_dir} completed before; reading its results")
            return
        _say(f"resuming {job_dir}")
        summary = resume_search(job_dir, [], plugins, progress, judge=judge)
    else:
        cfg = new_config()  # a bad config fails here, before anything is announced or written
        _say(f"running {job_dir}")
        summary = start_search(cfg, plugins, job_dir, progress, judge=judge)
    if summary.status is JobStatus.STOPPED:
        raise ConfigError(
            f"{job_dir} stopped before its end ({summary.message or 'stopped'}); run the same "
            "command again to resume it"
        )


def _comparable(cfg: DictConfig) -> dict[str, Any]:
    """A job config without what differs between runs of the same job."""
    data = to_container(cfg)
    for key in ("job_dir", "corenas_version"):
        data.pop(key, None)
    return data


def read_trials(job_dir: Path, plugins: Plugins) -> tuple[list[Trial], dict[int, list[Any]]]:
    """A job's trials and their intermediate reports by trial id."""
    store = open_job_store(job_dir, plugins)
    try:
        trials = store.trials()
        return trials, {t.id: store.intermediate(t.id) for t in trials}
    finally:
        store.close()


def _fixed(cfg: DictConfig, genomes: Sequence[dict[str, Any]]) -> DictConfig:
    cfg.controller = {"name": "fixed", "genomes": [dict(g) for g in genomes]}
    return cfg


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    write_atomically(path, json.dumps(data, indent=2) + "\n")
    return path


# --- select-models ----------------------------------------------------------------------------
def select_models(
    proxy_dir: Path,
    overrides: list[str],
    plugins: Plugins,
    models: int = 30,
    keep: int = 10,
    drop: int = 5,
    max_failed: int = 6,
    min_valid_ratio: float = 0.7,
    metric: str = "accuracy",
    latency_metric: str = "latency_ms",
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``models`` random architectures (the job's config with ``overrides``), then drop
    ``drop`` per round, keeping the spread of ``metric`` and ``latency_metric``, down to
    ``keep`` correlation candidates; writes candidates.json and selection.png. Fails with one
    line when more than ``max_failed`` models failed or under ``min_valid_ratio`` gave results."""
    if keep < 5 or models <= keep or drop < 1:
        raise ConfigError(
            f"need models > keep >= 5 and drop >= 1 (got models={models}, keep={keep}, "
            f"drop={drop}); correlation needs at least 5 candidates"
        )
    select_dir = proxy_dir / "select"

    def new_config() -> DictConfig:
        return compose(
            plugins,
            [
                *overrides,
                "controller=random",
                f"search.max_trials={models}",
                f"search.max_failed_trials={max_failed + 1}",
                *NO_EARLY_STOPPING,
                f"job_dir={select_dir}",
            ],
        )

    if overrides and is_job_dir(select_dir):
        _say(f"{select_dir} exists: its saved config applies, the overrides given now do not")
    run_job(select_dir, new_config, plugins, progress, same_config=False)
    trials, _ = read_trials(select_dir, plugins)
    search = [t for t in trials if t.stage == SEARCH_STAGE]
    failed = [t for t in search if t.status is TrialStatus.FAILED]
    valid = [t for t in search if t.status is TrialStatus.SUCCEEDED and metric in t.metrics]
    finished = [t for t in search if t.status.is_final]
    if len(failed) > max_failed or not finished or len(valid) / len(finished) < min_valid_ratio:
        raise ConfigError(
            f"model selection in {select_dir}: {len(failed)} of {len(finished)} models failed "
            f"and {len(valid)} gave '{metric}' (allowed: at most {max_failed} failures and "
            f"{min_valid_ratio:.0%} valid); see `corenas trials list {select_dir} --status "
            "failed`"
        )
    if len(valid) <= keep:
        raise ConfigError(
            f"model selection in {select_dir}: only {len(valid)} valid models, need more than "
            f"--keep {keep}"
        )
    pool = [
        Model(t.id, float(t.metrics[metric]), _optional_float(t.metrics.get(latency_metric)))
        for t in valid
    ]
    selection = select_spread(pool, keep=keep, drop=drop)
    by_id = {t.id: t for t in valid}
    timed = all(m.latency is not None for m in pool)
    candidates = [
        {
            "trial_id": i,
            "arch_id": by_id[i].arch_id,
            "genome": by_id[i].genome,
            metric: by_id[i].metrics[metric],
            **({latency_metric: by_id[i].metrics[latency_metric]} if timed else {}),
        }
        for i in selection.kept
    ]
    ids = ",".join(str(i) for i in selection.kept)
    result = {
        "metric": metric,
        "latency_metric": latency_metric if timed else None,
        "models": len(search),
        "failed": len(failed),
        "valid": len(valid),
        "valid_ratio": round(len(valid) / len(finished), 4),
        "rounds": [{"round": n, "dropped": d} for n, d in enumerate(selection.rounds, 1)],
        "candidates": candidates,
        "spread": _spread(pool, selection.kept),
        "next": f"corenas proxy train-candidates {proxy_dir} search.stage2.budget.epochs=N",
        "stage2_command": f"corenas train {select_dir} --trials {ids}",
    }
    _write_json(proxy_dir / CANDIDATES_FILE, result)
    result["plot"] = str(
        plot_selection(pool, selection, metric, latency_metric, proxy_dir / "selection.png")
    )
    return result


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _spread(pool: Sequence[Model], kept: Sequence[int]) -> dict[str, Any]:
    chosen = [m for m in pool if m.trial_id in set(kept)]

    def span(group: Sequence[Model], key: Callable[[Model], float | None]) -> list[float] | None:
        values = [v for v in (key(m) for m in group) if v is not None]
        return [min(values), max(values)] if values else None

    return {
        "all": {
            "accuracy": span(pool, lambda m: m.accuracy),
            "latency": span(pool, lambda m: m.latency),
        },
        "kept": {
            "accuracy": span(chosen, lambda m: m.accuracy),
            "latency": span(chosen, lambda m: m.latency),
        },
    }


def read_candidates(proxy_dir: Path) -> dict[str, Any]:
    """candidates.json of ``proxy_dir``; ``ConfigError`` when select-models has not run."""
    path = proxy_dir / CANDIDATES_FILE
    if not path.is_file():
        raise ConfigError(
            f"'{proxy_dir}' has no {CANDIDATES_FILE}: run `corenas proxy select-models "
            f"{proxy_dir}` first"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); rerun select-models") from None
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise ConfigError(f"{path} holds no candidates; rerun select-models")
    return data


# --- full training (stage 2 of the candidates) ------------------------------------------------
def train_candidates(
    proxy_dir: Path, overrides: list[str], plugins: Plugins, progress: bool = True
) -> JobSummary:
    """Stage 2 of the selection job for the candidates that have none yet (``corenas train
    PROXY/select --trials ...``); ``overrides`` as for ``corenas train``."""
    candidates = read_candidates(proxy_dir)["candidates"]
    ids = [int(c["trial_id"]) for c in candidates]
    _say(f"full training of {len(ids)} candidates in {proxy_dir / 'select'}")
    return resume_search(
        proxy_dir / "select",
        overrides,
        plugins,
        progress,
        retrain=Stage2Request(top=0, trial_ids=ids),
    )


def full_results(
    proxy_dir: Path, plugins: Plugins, metric: str, path: Path | None
) -> dict[str, dict[str, float]]:
    """Full-training ``metric`` (and latency) by architecture id of the candidates: from the
    selection job's stage-2 trials, or from ``path`` (JSON: ``[{genome: {...}, METRIC: x}]``)."""
    data = read_candidates(proxy_dir)
    latency = data.get("latency_metric")
    ids = {c["arch_id"] for c in data["candidates"]}
    found: dict[str, dict[str, float]] = {}
    if path is not None:
        try:
            rows = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--full-results file '{path}' does not exist") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--full-results file '{path}' is not JSON: {exc}") from None
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a list of {{genome: {{...}}, {metric}: x}}")
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("genome"), dict):
                raise ConfigError(f"{path}: item {index} has no genome object")
            if not isinstance(row.get(metric), int | float):
                raise ConfigError(f"{path}: item {index} has no number '{metric}'")
            arch = architecture_id(row["genome"])
            if arch in ids:
                found[arch] = {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
    else:
        trials, _ = read_trials(proxy_dir / "select", plugins)
        parents = {int(c["trial_id"]) for c in data["candidates"]}
        for t in trials:
            if (
                t.stage == TRAIN_STAGE
                and t.parent_id in parents
                and t.status is TrialStatus.SUCCEEDED
                and metric in t.metrics
            ):
                found[t.arch_id] = {metric: float(t.metrics[metric])}
    if latency:
        for c in data["candidates"]:
            if c["arch_id"] in found and latency in c:
                found[c["arch_id"]].setdefault(latency, float(c[latency]))
    if not found:
        raise ConfigError(
            f"no full-training results for the candidates of {proxy_dir}: run `corenas proxy "
            f"train-candidates {proxy_dir} search.stage2.budget.epochs=N` or pass "
            "--full-results FILE"
        )
    return found


# --- proxy search -----------------------------------------------------------------------------
def search_proxies(
    proxy_dir: Path,
    configs: Sequence[ProxyConfig],
    plugins: Plugins,
    requirements: Requirements | None = None,
    metric: str = "accuracy",
    time_limit_s: float | None = None,
    results_file: Path | None = None,
    parallel: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the candidates under each configuration (all at once by default, ``parallel``
    otherwise), stopping a configuration once its tau reaches the threshold at some step or
    ``time_limit_s`` passes; judge each (``judge_config``) and choose the cheapest that passes.
    Writes proxy_search.json and tau.png."""
    requirements = requirements or Requirements()
    data = read_candidates(proxy_dir)
    full = full_results(proxy_dir, plugins, metric, results_file)
    candidates = [c for c in data["candidates"] if c["arch_id"] in full]
    if not requirements.enough(len(candidates), len(data["candidates"])):
        raise ConfigError(
            f"only {len(candidates)} of {len(data['candidates'])} candidates have full-training "
            f"results; the proxy search needs {requirements.min_valid} and "
            f"{requirements.min_valid_ratio:.0%} (finish `corenas proxy train-candidates`)"
        )
    reference = {c["arch_id"]: full[c["arch_id"]][metric] for c in candidates}
    latency = data.get("latency_metric")
    latency_reference = {
        a: v[latency] for a, v in full.items() if latency and latency in v and a in reference
    }
    base = read_job_config(proxy_dir / "select")
    width = parallel or len(candidates)
    genomes = [c["genome"] for c in candidates]

    def config_for(config: ProxyConfig, job_dir: Path) -> DictConfig:
        cfg = derive_config(
            base,
            [
                *config.overrides,
                f"search.max_trials={len(candidates)}",
                f"search.max_parallel_trials={width}",
                "search.max_failed_trials=0",
                *NO_EARLY_STOPPING,
                f"job_dir={job_dir}",
            ],
        )
        return _fixed(cfg, genomes)

    rule = {
        "metric": metric,
        "threshold": requirements.threshold,
        "hold": requirements.hold,
        "reference": reference,
    }
    for config in configs:  # every config checked before the first trains (writes nothing)
        job_dir = proxy_dir / "search" / config.name
        if not is_job_dir(job_dir):
            plan_search(config_for(config, job_dir), plugins, job_dir)
    verdicts: list[ConfigVerdict] = []
    for number, config in enumerate(configs, 1):
        job_dir = proxy_dir / "search" / config.name
        _say(f"config {number}/{len(configs)} '{config.name}': {' '.join(config.overrides)}")
        _keep_rule(job_dir, rule)
        stop = CorrelationStop(reference, metric, requirements, time_limit_s)
        run_job(job_dir, partial(config_for, config, job_dir), plugins, progress, judge=stop)
        trials, curves = read_trials(job_dir, plugins)
        verdicts.append(
            judge_config(
                config.name,
                list(config.overrides),
                trials,
                curves,
                reference,
                metric,
                requirements,
                latency_reference or None,
                latency or "latency_ms",
            )
        )
    chosen = choose(verdicts)
    configs_json = [v.to_json() for v in verdicts]
    result: dict[str, Any] = {
        "metric": metric,
        "threshold": requirements.threshold,
        "hold": requirements.hold,
        "min_valid": requirements.min_valid,
        "min_valid_ratio": requirements.min_valid_ratio,
        "candidates": len(candidates),
        "configs": configs_json,
        "chosen": None if chosen is None else chosen.name,
    }
    _write_json(proxy_dir / SEARCH_FILE, result)
    result["plot"] = str(plot_tau(result["configs"], requirements.threshold, proxy_dir / "tau.png"))
    return result


def _keep_rule(job_dir: Path, rule: dict[str, Any]) -> None:
    """Record the stopping rule of a configuration's job beside it (NAME.rule.json); a job
    stopped under another rule (threshold, hold, metric, full results) would be judged on
    curves cut short by that rule, so it is refused with one line."""
    path = job_dir.with_name(job_dir.name + ".rule.json")
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = None
        if saved != json.loads(json.dumps(rule)):
            raise ConfigError(
                f"{job_dir} was stopped under another rule (threshold, hold, metric or full "
                f"results differ from {path}); remove that directory and {path.name}, or give "
                "the config another name"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, rule)


# --- variance ---------------------------------------------------------------------------------
def named_config(proxy_dir: Path, name: str | None) -> tuple[ProxyConfig, int | None]:
    """The proxy configuration ``name`` from the proxy search (default: the one it chose) with
    the step it stops at (None when it never reached the threshold), or ``baseline`` (the
    selection job's own training, to its end)."""
    if name == BASELINE:
        return ProxyConfig(BASELINE), None
    path = proxy_dir / SEARCH_FILE
    if not path.is_file():
        if name is None:
            return ProxyConfig(BASELINE), None
        raise ConfigError(f"'{proxy_dir}' has no {SEARCH_FILE}: run `corenas proxy search` first")
    search = json.loads(path.read_text())
    wanted = name or search.get("chosen")
    if wanted is None:
        raise ConfigError(
            f"the proxy search in {proxy_dir} chose no configuration; name one with --config"
        )
    for config in search["configs"]:
        if config["name"] == wanted:
            return ProxyConfig(config["name"], tuple(config["overrides"])), config["stop_step"]
    names = ", ".join(c["name"] for c in search["configs"])
    raise ConfigError(f"no proxy config '{wanted}' in {path} (known: {names}, {BASELINE})")


def measure_proxy_variance(
    proxy_dir: Path,
    plugins: Plugins,
    config: ProxyConfig,
    repeats: int = 5,
    trial_id: int | None = None,
    metric: str = "accuracy",
    stop_step: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one architecture ``repeats`` times (different seeds) under ``config``, each
    stopped at ``stop_step`` when given (the proxy as a search would run it): the coefficient
    of variation of the final ``metric`` and each curve's smoothness, judged against
    REFERENCE.md's thresholds. The architecture is selection trial ``trial_id``, by default
    the most accurate candidate. Writes variance-NAME.json and .png."""
    if repeats < 2:
        raise ConfigError(f"--repeats must be at least 2, got {repeats}")
    select_dir = proxy_dir / "select"
    trials, _ = read_trials(select_dir, plugins)
    by_id = {t.id: t for t in trials}
    if trial_id is None:
        trial_id = int(read_candidates(proxy_dir)["candidates"][0]["trial_id"])
    if trial_id not in by_id:
        raise ConfigError(f"{select_dir} has no trial {trial_id}")
    genome = by_id[trial_id].genome
    base = read_job_config(select_dir)
    stops = "" if stop_step is None else f"-s{stop_step}"
    job_dir = proxy_dir / "variance" / f"{config.name}{stops}-k{repeats}"
    width = min(repeats, int(base.search.max_parallel_trials))

    def new_config() -> DictConfig:
        cfg = derive_config(
            base,
            [
                *config.overrides,
                f"search.max_trials={repeats}",
                f"search.max_parallel_trials={width}",
                "search.max_failed_trials=0",
                *NO_EARLY_STOPPING,
                f"job_dir={job_dir}",
            ],
        )
        return _fixed(cfg, [genome] * repeats)

    limit = None if stop_step is None else StepLimit(stop_step)
    run_job(job_dir, new_config, plugins, progress, judge=limit)
    runs, curves = read_trials(job_dir, plugins)
    report = measure_variance(runs, curves, metric, stop_step)
    result = {
        "config": config.name,
        "overrides": list(config.overrides),
        "trial_id": trial_id,
        "genome": genome,
        "job_dir": str(job_dir),
        **report.to_json(),
    }
    stem = f"variance-{config.name}"
    _write_json(proxy_dir / f"{stem}.json", result)
    title = f"{repeats} runs of trial {trial_id} under '{config.name}'" + (
        "" if stop_step is None else f", stopped at step {stop_step}"
    )
    series: list[Sequence[tuple[int, Metrics]]] = [curves[t.id] for t in runs]
    result["plot"] = str(plot_variance(series, metric, title, proxy_dir / f"{stem}.png"))
    return result
