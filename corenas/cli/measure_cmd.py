"""``corenas measure``: the hardware metrics of architectures of a space, without a search."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from corenas.cli.choices import BackendChoice, input_spec, load_backend, load_space
from corenas.cli.tables import render_table, short
from corenas.errors import ConfigError, InvalidGenomeError, TrialError
from corenas.hardware.base import HardwareBackend, InputSpec
from corenas.records import Genome, Metrics, architecture_id

TABLE_COLUMNS = (
    "params",
    "macs",
    "flops",
    "ops",
    "latency_ms",
    "latency_p90_ms",
    "latency_cv",
    "memory_mb",
    "model_size_mb",
)
"""Metric columns shown first, in this order, when a backend reports them; others follow."""


def read_genomes(path_text: str) -> list[Genome]:
    """The genomes of a JSON or YAML file: one mapping, or a list of mappings (what
    ``corenas space sample`` prints). Raises ``ConfigError`` naming the file."""
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"genome file '{path}' does not exist; give a JSON or YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(
            f"genome file '{path}' is not a text file; give a JSON or YAML file"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise ConfigError(
            f"genome file '{path}' is not valid JSON or YAML: {problem}{where}"
        ) from None
    genomes = data if isinstance(data, list) else [data]
    if not genomes or not all(isinstance(g, dict) for g in genomes):
        raise ConfigError(
            f"genome file '{path}' must hold a genome (a mapping decision -> value) or a "
            f"non-empty list of genomes, got {type(data).__name__}"
        )
    return genomes


@dataclass(frozen=True)
class Measured:
    """One measured architecture."""

    arch_id: str
    genome: Genome
    metrics: Metrics

    def to_json(self) -> dict[str, Any]:
        return {"arch_id": self.arch_id, "genome": self.genome, "metrics": self.metrics}


def measure(
    space: Any, genome: Genome, choice: BackendChoice, spec: InputSpec, seed: int
) -> Metrics:
    """Build ``genome`` (torch seeded with ``seed``) and measure it. A failed measurement
    becomes a one-line ``ConfigError`` naming the architecture and the input (usually the
    input shape does not fit the model); ``--debug`` shows the cause."""
    torch.manual_seed(seed)
    built = space.build(genome)
    try:
        return choice.backend.measure(built, spec).as_metrics()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        arch = architecture_id(genome)
        if isinstance(exc, TrialError):  # the backend's own one-line account
            hint = "; check --input-shape" if " input" in first else ""
            raise ConfigError(f"{first} (architecture {arch}){hint}") from exc
        dims = "x".join(str(n) for n in (spec.batch_size, *spec.shape))
        raise ConfigError(
            f"hardware '{choice.name}' could not measure architecture {arch} on a {dims} "
            f"{spec.dtype} input: {type(exc).__name__}: {first}; check --input-shape"
        ) from exc


def describe(backend: HardwareBackend) -> str:
    """The backend's own ``repr`` when its class defines one (it shows the parameters), else
    its class name."""
    if type(backend).__repr__ is object.__repr__:
        return type(backend).__name__
    return repr(backend)


def metrics_table(rows: list[Measured]) -> str:
    """One row per architecture: arch id, TABLE_COLUMNS that any row reports, the other
    metrics in the order reported, and the genome (shortened)."""
    reported: dict[str, None] = {}
    for row in rows:
        reported.update(dict.fromkeys(row.metrics))
    columns = [c for c in TABLE_COLUMNS if c in reported]
    columns += [c for c in reported if c not in columns]
    body = [
        [
            row.arch_id,
            *[row.metrics.get(c) for c in columns],
            short(json.dumps(row.genome, separators=(",", ":")), 60),
        ]
        for row in rows
    ]
    return render_table(["arch_id", *columns, "genome"], body)


def run(args: argparse.Namespace) -> int:
    from corenas.plugins import get_plugins

    plugins = get_plugins(config_dirs=args.config_dir)
    if args.sample is not None and args.sample < 1:
        raise ConfigError(f"--sample must be at least 1, got {args.sample}")
    choice = load_backend(plugins, args.backend, args.set)
    chosen = load_space(plugins, args.space, args.overrides, args.data)
    label, space = chosen.label, chosen.space
    if args.genome is not None:
        genomes = read_genomes(args.genome)
        canonical = []
        for number, genome in enumerate(genomes, start=1):
            try:
                canonical.append(space.validate(genome))
            except InvalidGenomeError as exc:
                which = f" (genome {number})" if len(genomes) > 1 else ""
                raise InvalidGenomeError(
                    f"genome file '{args.genome}'{which} is not in space '{label}': {exc}"
                ) from None
    else:
        rng = np.random.default_rng(args.seed)
        canonical = [space.sample(rng) for _ in range(args.sample)]
    spec = input_spec(choice, chosen, args.input_shape, args.batch_size)
    rows: list[Measured] = []
    for number, genome in enumerate(canonical, start=1):
        started = time.perf_counter()
        metrics = measure(space, genome, choice, spec, args.seed)
        rows.append(Measured(architecture_id(genome), genome, metrics))
        if len(canonical) > 1:
            print(
                f"corenas: measured {number}/{len(canonical)} {rows[-1].arch_id} "
                f"in {time.perf_counter() - started:.2f} s",
                file=sys.stderr,
            )
    if args.format == "json":
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    dims = "x".join(str(n) for n in (spec.batch_size, *spec.shape))
    print(f"space {label}, hardware '{choice.name}' ({describe(choice.backend)}), input {dims}")
    print(metrics_table(rows))
    return 0
