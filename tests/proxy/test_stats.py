"""Kendall tau with p-values, coefficient of variation and curve smoothness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from corenas.proxy.stats import coefficient_of_variation, kendall_tau, smoothness


def test_perfect_rankings_have_exact_permutation_p_values() -> None:
    same = kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert same.tau == 1.0
    assert same.p_value == pytest.approx(2 / math.factorial(5))  # 1 of 120 orders, two-sided
    reverse = kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert reverse.tau == -1.0
    assert reverse.p_value == pytest.approx(2 / 120)


def test_one_swap_by_hand() -> None:
    # 10 pairs, one discordant: tau = (9 - 1) / 10; P(at most 1 inversion) = (1 + 4) / 120
    result = kendall_tau([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    assert result.tau == pytest.approx(0.8)
    assert result.p_value == pytest.approx(2 * 5 / 120)


def test_ties_use_tau_b() -> None:
    # x has one tied pair: tau_b = (C - D) / sqrt((n0 - 1) * n0) with C = 9, D = 0, n0 = 10
    result = kendall_tau([1, 1, 2, 3, 4], [1, 2, 3, 4, 5])
    assert result.tau == pytest.approx(9 / math.sqrt(9 * 10))


def test_degenerate_input_gives_nan_not_an_error() -> None:
    assert math.isnan(kendall_tau([1.0, 1.0, 1.0], [1, 2, 3]).tau)
    assert math.isnan(kendall_tau([1.0], [2.0]).tau)
    with pytest.raises(ValueError, match="paired"):
        kendall_tau([1, 2], [1])


def test_agrees_with_scipy_with_and_without_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (4, 7, 10, 20, 33, 40, 80):
        for rounded in (False, True):
            x = rng.normal(size=n)
            y = x + rng.normal(size=n) * 1.5
            if rounded:
                x, y = np.round(x), np.round(y)
            ours, theirs = kendall_tau(x, y), stats.kendalltau(x, y)
            assert ours.tau == pytest.approx(theirs.statistic, abs=1e-12)
            assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-15)


def test_coefficient_of_variation_in_percent() -> None:
    assert coefficient_of_variation([0.9, 0.9, 0.9]) == 0.0
    values = [0.97, 0.98, 0.99]
    assert coefficient_of_variation(values) == pytest.approx(0.01 / 0.98 * 100)
    assert math.isnan(coefficient_of_variation([0.5]))


def test_smoothness_is_zero_for_a_monotone_curve_and_counts_back_and_forth() -> None:
    steps = np.arange(1, 41)
    curve = 100 * (1 - np.exp(-steps / 8))
    assert smoothness(steps, curve) == pytest.approx(0.0, abs=1e-9)
    plateau = np.full(40, 90.0)
    plateau[20] -= 4.0  # one dip of 4 points inside the first section, then back: adds 8
    assert smoothness(steps, plateau) == pytest.approx(8.0)
    jitter = np.where(steps % 2 == 0, 3.0, -3.0)
    assert smoothness(steps, curve + jitter) > 100  # 6 points up and down at every step
    assert math.isnan(smoothness([1, 2], [3, 4]))
