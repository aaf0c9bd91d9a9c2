"""Generic tabular benchmarks: a CSV of measured results plus a small YAML file describing it.

The YAML file (see docs/benchmarking.md)::

    name: my_bench                  # optional; default: the file's name without .yaml
    space: space/my_bench.yaml      # the space: a config node, inline or in a YAML file
    path: my_bench.csv              # the CSV, relative to this file
    metrics: [accuracy, latency_ms] # metric columns

``space`` is a space config node as in ``conf/space/*.yaml`` (``name`` of a registered space,
``declared`` when omitted, plus its parameters), written inline or as the path of a YAML file
holding one (relative to the table file) - the same file a search selects with
``--config-dir DIR space=NAME``. The CSV has a header row, one column per decision of the
space's genomes (a conditional decision's cell is empty where it is inactive), one column per
metric (finite numbers) and any other columns, which are ignored; it must hold every
architecture of the (finite) space exactly once. Cells match decision values by their text:
``3``, ``3.0`` and ``"3"`` are the same, ``true``/``false`` are booleans, lists and mappings
are JSON.

The trainer ``table`` looks architectures up in such a table; ``corenas benchmark --table
PATH.yaml`` runs controllers on one.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from corenas.benchmarks.base import add_noise, best_row, check_noise
from corenas.errors import ConfigError, InvalidGenomeError, TrialError
from corenas.records import Genome, Metrics, canonical_json
from corenas.space.base import SearchSpace
from corenas.trainer.base import Trainer, TrialContext

TABLE_KEYS = ("name", "space", "path", "metrics")
MAX_ROWS = 5_000_000
"""Largest space a table may describe (every architecture is a CSV row held in memory)."""


class CsvTable:
    """A tabular benchmark read from a table YAML file and its CSV.

    Rows follow the space's grid order; ``lookup(genome, metric)`` is the CSV's value for the
    architecture. Construction raises ``ConfigError`` (one line, naming the file and the line)
    for a bad description, a missing column, a cell that is no architecture's value or no
    number, a duplicate row, or an architecture without a row.
    """

    def __init__(self, path: str) -> None:
        self.source = os.path.abspath(path)
        description = _read_description(self.source)
        here = os.path.dirname(self.source)
        self.name = str(description.get("name") or _stem(self.source))
        self.space_node, self.space_origin = _space_node(description["space"], here, self.source)
        self.space = _build_space(self.space_node, self.source)
        self.metrics = _metric_names(description["metrics"], self.source)
        self.csv_path = os.path.join(here, str(description["path"]))
        genomes = _enumerate(self.space, self.source)
        self.decisions = _decision_columns(genomes)
        clash = [m for m in self.metrics if m in self.decisions]
        if clash:
            raise ConfigError(f"table {self.source}: metric '{clash[0]}' is also a decision")
        self.genomes = genomes
        self._rows = {canonical_json(genome): row for row, genome in enumerate(genomes)}
        self._values = self._read_csv()

    def _read_csv(self) -> dict[str, np.ndarray]:
        where = f"table {self.source}: {self.csv_path}"
        if not os.path.isfile(self.csv_path):
            raise ConfigError(f"table {self.source}: CSV file {self.csv_path} does not exist")
        by_text: dict[tuple[Any, ...], int] = {}
        for row, genome in enumerate(self.genomes):
            key = tuple(_cell_key(_value_text(genome.get(name))) for name in self.decisions)
            if key in by_text:
                first = self.genomes[by_text[key]]
                raise ConfigError(
                    f"table {self.source}: architectures {canonical_json(first)} and "
                    f"{canonical_json(genome)} read the same in a CSV"
                )
            by_text[key] = row
        try:
            with open(self.csv_path, newline="", encoding="utf-8") as handle:
                return self._parse(csv.DictReader(handle), by_text, where)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"{where} is not a readable CSV file: {exc}") from None

    def _parse(
        self, reader: csv.DictReader[str], by_text: dict[tuple[Any, ...], int], where: str
    ) -> dict[str, np.ndarray]:
        """Every metric column by row, from the CSV rows of ``reader``."""
        values = {metric: np.full(len(self.genomes), np.nan) for metric in self.metrics}
        seen = np.zeros(len(self.genomes), dtype=bool)
        header = list(reader.fieldnames or [])
        missing = [c for c in (*self.decisions, *self.metrics) if c not in header]
        if missing:
            raise ConfigError(
                f"{where}: no column {', '.join(repr(c) for c in missing)}; its header: "
                f"{', '.join(header) or '(empty)'}"
            )
        for record in reader:
            line = reader.line_num
            key = tuple(_cell_key(record[name] or "") for name in self.decisions)
            found = by_text.get(key)
            if found is None:
                cells = ", ".join(f"{name}={record[name]!r}" for name in self.decisions)
                raise ConfigError(
                    f"{where} line {line}: ({cells}) is not an architecture of the space"
                )
            if seen[found]:
                raise ConfigError(
                    f"{where} line {line}: architecture "
                    f"{canonical_json(self.genomes[found])} has a row already"
                )
            seen[found] = True
            for metric in self.metrics:
                values[metric][found] = _number(record[metric], f"{where} line {line}", metric)
        if not seen.all():
            absent = int((~seen).sum())
            example = canonical_json(self.genomes[int(np.argmin(seen))])
            raise ConfigError(
                f"{where}: no row for {absent} of the space's {len(self.genomes)} "
                f"architectures, e.g. {example}; a table lists every architecture"
            )
        for column in values.values():
            column.setflags(write=False)
        return values

    def check_metric(self, metric: str) -> str:
        if metric not in self.metrics:
            raise ConfigError(
                f"table '{self.name}' has no metric {metric!r}; its metrics: "
                f"{', '.join(self.metrics)}"
            )
        return metric

    def row(self, genome: Mapping[str, Any]) -> int:
        """The architecture's row; ``InvalidGenomeError`` for a genome outside the space."""
        row = self._rows.get(canonical_json(genome))
        if row is None:
            row = self._rows[canonical_json(self.space.validate(dict(genome)))]
        return row

    def column(self, metric: str) -> np.ndarray:
        """The read-only values of ``metric`` by row."""
        return self._values[self.check_metric(metric)]

    def lookup(self, genome: Mapping[str, Any], metric: str) -> float:
        """The table's value of ``metric`` for ``genome``."""
        return float(self.column(metric)[self.row(genome)])

    def best(self, metric: str, mode: str = "max") -> tuple[Genome, float]:
        """The architecture with the best value of ``metric`` and that value."""
        values = self.column(metric)
        row = best_row(values, mode)
        return self.genomes[row], float(values[row])

    def search_nodes(self, metric: str, mode: str, noise: float) -> dict[str, dict[str, Any]]:
        """Config nodes of a search optimising ``metric``: the table's space, the trainer
        ``table`` (``metric`` observed with ``noise``) and the reward ``accuracy`` on it."""
        return {
            "space": json.loads(json.dumps(self.space_node)),
            "trainer": {
                "name": "table",
                "table": self.source,
                "metric": self.check_metric(metric),
                "noise": noise,
            },
            "reward": {"name": "accuracy", "metric": metric, "mode": mode},
        }


@lru_cache(maxsize=8)
def load_table(path: str) -> CsvTable:
    """The table described by the YAML file ``path``, read once per process."""
    return CsvTable(path)


def open_table(path: str) -> CsvTable:
    """``load_table`` of the absolute path, so relative and absolute names share the cache."""
    return load_table(os.path.abspath(path))


def _stem(path: str) -> str:
    base = os.path.basename(path)
    return base.rsplit(".", 1)[0] if "." in base else base


def _read_yaml(path: str, what: str) -> Any:
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"{what} {path} does not exist")
    try:
        with open(path) as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{what} {path} is not valid YAML: {first}") from None


def _read_description(path: str) -> dict[str, Any]:
    data = _read_yaml(path, "table file")
    if not isinstance(data, dict):
        raise ConfigError(
            f"table file {path} must be a mapping with keys {', '.join(TABLE_KEYS)}, "
            f"got {type(data).__name__}"
        )
    unknown = [key for key in data if key not in TABLE_KEYS]
    if unknown:
        raise ConfigError(
            f"table file {path}: unknown key {unknown[0]!r}; keys: {', '.join(TABLE_KEYS)}"
        )
    missing = [key for key in ("space", "path", "metrics") if data.get(key) in (None, "")]
    if missing:
        raise ConfigError(f"table file {path}: '{missing[0]}' is required")
    if not isinstance(data["path"], str):
        raise ConfigError(f"table file {path}: 'path' must be the CSV's file name")
    return data


def _space_node(raw: Any, here: str, source: str) -> tuple[dict[str, Any], str]:
    """The space config node (inline, or read from the YAML file ``raw`` names) and where it
    was declared."""
    where = f"table file {source}"
    if isinstance(raw, str):
        space_file = os.path.abspath(os.path.join(here, raw))
        raw = _read_yaml(space_file, f"{where}: space file")
        where = f"space file {space_file}"
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: the space must be a config node (e.g. name: declared, decisions: ...) "
            f"or the path of a YAML file holding one, got {raw!r}"
        )
    node = {"name": "declared", **raw}
    if not isinstance(node["name"], str):
        raise ConfigError(f"{where}: the space's name must be a string, got {node['name']!r}")
    try:
        plain = dict(json.loads(json.dumps(node)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: the space is not plain data: {exc}") from None
    origin = f"declared in {where}" if node["name"] == "declared" else f"space={node['name']}"
    return plain, origin


def _build_space(node: dict[str, Any], source: str) -> SearchSpace:
    from corenas.errors import CorenasError
    from corenas.plugins import get_plugins

    params = {key: value for key, value in node.items() if key != "name"}
    try:
        return get_plugins().registry("space").create(node["name"], **params)
    except CorenasError as exc:
        raise ConfigError(f"table file {source}: {exc}") from None


def _metric_names(raw: Any, source: str) -> tuple[str, ...]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"table file {source}: 'metrics' must be a list of column names")
    if len(set(names)) != len(names):
        raise ConfigError(f"table file {source}: 'metrics' names a column twice")
    return tuple(names)


def _enumerate(space: SearchSpace, source: str) -> list[Genome]:
    size = space.size()
    if size == math.inf or size > MAX_ROWS:
        shown = "infinitely many" if size == math.inf else f"{int(size):,}"
        raise ConfigError(
            f"table file {source}: space '{space.name}' has {shown} architectures; a table "
            f"lists each one, at most {MAX_ROWS:,}"
        )
    return list(space.grid())


def _decision_columns(genomes: list[Genome]) -> tuple[str, ...]:
    """Every decision name of the genomes, in order of first appearance."""
    names: dict[str, None] = {}
    for genome in genomes:
        for name in genome:
            names.setdefault(name, None)
    return tuple(names)


def _value_text(value: Any) -> str:
    """How a decision value is written in a CSV cell ("" for an inactive decision)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return canonical_json(value)


def _cell_key(text: str) -> Any:
    """What a cell's text means: None (empty), a bool, a number (9 significant digits, so
    ``3`` == ``3.0``), canonical JSON of a list or mapping, or the stripped text."""
    text = text.strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(f"{float(text):.9g}")
    except ValueError:
        pass
    if text[0] in "[{":
        try:
            return canonical_json(json.loads(text))
        except ValueError:
            return text
    return text


def _number(text: str | None, where: str, metric: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{where}: metric '{metric}' is {text!r}, not a finite number")
    return value


class CsvTableTrainer(Trainer):
    """Trainer ``table``: looks the architecture up in a table (``table``: the YAML file).

    Returns every metric of the table, exact, except ``metric`` (default: the first metric),
    which gets Gaussian noise of standard deviation ``noise`` seeded by the trial's seed; its
    exact value is also returned as ``true_<metric>``."""

    def __init__(self, table: str | None = None, metric: str | None = None, noise: float = 0.0):
        if not table:
            raise ConfigError(
                "trainer 'table' needs table=PATH.yaml, the table's description "
                "(docs/benchmarking.md)"
            )
        self.table = open_table(table)
        self.metric = metric or self.table.metrics[0]
        if self.metric not in self.table.metrics:
            raise ConfigError(
                f"trainer 'table': metric {self.metric!r} (default: the reward's metric) is not "
                f"in table '{self.table.name}'; its metrics: {', '.join(self.table.metrics)}"
            )
        self.true_metric = f"true_{self.metric}"
        if self.true_metric in self.table.metrics:
            raise ConfigError(
                f"trainer 'table': the table has a column '{self.true_metric}', the name of "
                f"the exact value of '{self.metric}'; rename that column"
            )
        self.noise = check_noise(noise, "trainer 'table'")

    def fit(self, model: Any, context: TrialContext) -> Metrics:
        try:
            row = self.table.row(context.genome)
        except InvalidGenomeError as exc:
            raise TrialError(
                f"the architecture is not in table '{self.table.name}' ({exc}); search the "
                f"table's space ({self.table.space_origin})"
            ) from None
        metrics = {name: float(self.table.column(name)[row]) for name in self.table.metrics}
        exact = metrics[self.metric]
        metrics[self.metric] = add_noise(exact, self.noise, context.seed)
        metrics[self.true_metric] = exact
        return metrics
