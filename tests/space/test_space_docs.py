"""The examples of docs/search-space-language.md run as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from corenas.space import space_from_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "search-space-language.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_examples_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("corenas_docs_example")  # dataclasses look their module up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, Any] = module.__dict__
    blocks = _blocks("python")
    assert len(blocks) >= 6
    for block in blocks:
        code = compile(block, str(DOC), "exec")
        if "from corenas import hookimpl" in block:
            continue  # the plugin machinery is not part of corenas.space
        exec(code, namespace)
    assert namespace["config"].vocab_size % 8000 == 0


def test_yaml_examples_declare_working_spaces() -> None:
    declared = [yaml.safe_load(block) for block in _blocks("yaml")]
    assert declared
    for config in declared:
        space = space_from_config("doc", config["decisions"], config.get("builder"))
        rng = np.random.default_rng(0)
        for _ in range(50):
            genome = space.sample(rng)
            assert space.validate(genome) == genome
            space.build(genome)
