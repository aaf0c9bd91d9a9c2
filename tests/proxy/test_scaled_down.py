"""digits_cnn's width_multiplier: the same genomes build narrower models (a scaled-down
proxy task)."""

from __future__ import annotations

import numpy as np
import pytest

from corenas.errors import ConfigError
from corenas.plugins import get_plugins


def test_the_same_genomes_build_models_with_scaled_widths() -> None:
    registry = get_plugins().registry("space")
    full, half = registry.create("digits_cnn"), registry.create("digits_cnn", width_multiplier=0.5)
    rng = np.random.default_rng(1)
    for _ in range(5):
        genome = full.sample(rng)
        assert half.validate(genome) == genome  # the decisions are unchanged
        wide, narrow = full.build(genome), half.build(genome)
        convs = [m.out_channels for m in wide if hasattr(m, "out_channels")]
        assert [m.out_channels for m in narrow if hasattr(m, "out_channels")] == [
            max(1, round(c / 2)) for c in convs
        ]
        count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
        assert count(narrow) < count(wide)


def test_a_multiplier_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="width_multiplier must be above 0"):
        get_plugins().registry("space").create("digits_cnn", width_multiplier=0)
