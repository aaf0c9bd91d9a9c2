"""Acceptance: a YAML-declared and a Python space beyond 10^20, from the CLI as a user runs it."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import numpy as np
import pytest

from corenas.config import component, compose
from corenas.plugins import get_plugins
from corenas.records import canonical_json

BIG_YAML = """\
name: declared
label: big
decisions:
  blocks:
    repeat:
      op: {choice: [conv3, conv5, sep3, sep5, pool, skip]}
      width: {choice: [16, 32, 48, 64]}
      edges: {subset: [a, b, c, d, e], k: 2, distinct: true, sorted: true}
    counts: [8, 9, 10]
  head: {choice: [linear, mlp]}
"""
BLOCK = 6 * 4 * comb(5, 2)
BIG_SIZE = (BLOCK**8 + BLOCK**9 + BLOCK**10) * 2
DIGITS_20_SIZE = sum(16**c for c in range(1, 21)) * 3 * 4


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conf")
    (root / "space").mkdir()
    (root / "space" / "big.yaml").write_text(BIG_YAML)
    return root


def test_cli_prints_exact_sizes_beyond_1e20(cli, config_dir: Path) -> None:
    assert BIG_SIZE > 10**20 and DIGITS_20_SIZE > 10**20
    yaml_space = cli("space", "show", "big", "--config-dir", str(config_dir), "--format", "json")
    assert yaml_space.returncode == 0, yaml_space.stderr
    assert json.loads(yaml_space.stdout)["size"] == BIG_SIZE
    table = cli("space", "show", "big", "--config-dir", str(config_dir)).stdout
    assert f"{BIG_SIZE:,}" in table
    python_space = cli("space", "show", "digits_cnn", "max_layers=20", "--format", "json")
    assert json.loads(python_space.stdout)["size"] == DIGITS_20_SIZE


def spaces(config_dir: Path):
    plugins = get_plugins(config_dirs=[str(config_dir)])
    yaml_node = component(compose(plugins, ["space=big"]), "space")
    yaml_space = plugins.registry("space").create(
        "declared", **{k: v for k, v in yaml_node.items() if k != "name"}
    )
    python_space = plugins.registry("space").create("digits_cnn", max_layers=20)
    return {"yaml": yaml_space, "python": python_space}


@pytest.mark.parametrize("kind", ["yaml", "python"])
def test_ten_thousand_samples_validate_round_trip_and_mutate_inside(
    config_dir: Path, kind: str
) -> None:
    space = spaces(config_dir)[kind]
    assert space.size() > 10**20
    rng = np.random.default_rng(2026)
    for _ in range(10_000):
        genome = space.sample(rng)
        text = json.dumps(genome)
        again = space.validate(json.loads(text))
        assert again == genome and canonical_json(again) == canonical_json(genome)
        mutated = space.mutate(genome, rng, k=2)
        assert space.validate(mutated) == mutated and mutated != genome
