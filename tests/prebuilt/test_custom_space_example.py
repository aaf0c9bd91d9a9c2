"""The worked example of docs/custom-spaces.md: examples/custom_space/my_space.py, loaded as
the page shows, is under 50 lines, keeps the space promises and runs a real search."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from corenas.config import compose
from corenas.data.base import DataInfo
from corenas.engine import start_search
from corenas.errors import ConfigError
from corenas.plugins import load_plugins
from corenas.records import TrialStatus
from corenas.testing import check_search_space

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "custom_space"
PAGE = REPO / "docs" / "custom-spaces.md"


@pytest.fixture
def my_space(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example module, imported as the docs page does: its directory on ``sys.path``."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "my_space", raising=False)
    return importlib.import_module("my_space")


def test_the_example_is_under_fifty_lines_and_the_page_shows_it_whole() -> None:
    source = (EXAMPLE / "my_space.py").read_text()
    assert len(source.splitlines()) < 50
    page = PAGE.read_text()
    shown = re.search(r"```python\n# examples/custom_space/my_space.py\n(.*?)```", page, re.S)
    assert shown is not None, "docs/custom-spaces.md must show examples/custom_space/my_space.py"
    assert shown.group(1) == source
    assert f"{len(source.splitlines())} lines" in page


def test_the_space_keeps_the_promises_and_sizes_its_models_from_the_data(
    my_space: ModuleType,
) -> None:
    info = DataInfo("classification", (2, 24), 4)
    space = my_space.make_tcn_space(info)
    check_search_space(space, samples=40)
    assert space.size() == (6 + 6**2 + 6**3) * 2 * 2  # blocks (channels x kernel) x growth x pool
    model = space.build(space.sample(np.random.default_rng(0)))
    assert model(torch.randn(3, 2, 24)).shape == (3, 4)
    with pytest.raises(ConfigError, match="max_blocks"):
        my_space.make_tcn_space(info, max_blocks=0)


def test_a_two_trial_search_with_the_plugin(
    my_space: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CORENAS_DISABLE_PLUGIN_AUTOLOAD", "1")  # built-ins + the example only
    plugins = load_plugins(extra=[("tcn", my_space)], config_dirs=[str(EXAMPLE / "conf")])
    cfg = compose(
        plugins,
        [
            "space=tcn",
            "space.max_blocks=2",
            "data=sequence",
            "data.num_samples=64",
            "data.length=32",
            "trainer=lightning",
            "reward=accuracy",
            "hardware=analytic",
            "executor=inline",
            "search.max_trials=2",
            "budget.epochs=1",
        ],
    )
    summary = start_search(cfg, plugins, tmp_path / "job", progress=False)
    assert summary.counts["succeeded"] == 2
    assert summary.best is not None and summary.best.status == TrialStatus.SUCCEEDED
    assert 0.0 <= summary.best.metrics["accuracy"] <= 1.0
    assert summary.best.metrics["params"] > 0 and summary.best.metrics["macs"] > 0
