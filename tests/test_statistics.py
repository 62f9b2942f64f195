"""Mean/spread over seeds and paired differences with t intervals, checked against independent computations."""

from __future__ import annotations

import math

import pytest

from dckd.eval.statistics import paired_difference, summarize, t_quantile_95


def t_cdf(x: float, df: int, steps: int = 20000) -> float:
    """P(T <= x) for Student's t by Simpson's rule on the density (an independent check of the table)."""
    constant = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))

    def density(t: float) -> float:
        return constant * (1 + t * t / df) ** (-(df + 1) / 2)

    width = x / steps
    total = density(0) + density(x) + sum((4 if i % 2 else 2) * density(i * width) for i in range(1, steps))
    return 0.5 + total * width / 3


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 29, 30, 31, 60, 200])
def test_t_quantiles_leave_two_and_a_half_percent_in_each_tail(df: int) -> None:
    assert t_cdf(t_quantile_95(df), df) == pytest.approx(0.975, abs=1e-3)


def test_summary_and_paired_difference_by_hand() -> None:
    summary = summarize([27.0, 28.0, 29.0])
    assert (summary.mean, summary.std, summary.count) == (28.0, 1.0, 3)
    assert summarize([5.0]).std == 0.0
    difference = paired_difference([29.0, 30.0, 31.5], [28.0, 28.0, 28.5])  # differences 1, 2, 3
    half_width = 4.303 * 1.0 / math.sqrt(3)
    assert difference.mean == pytest.approx(2.0) and difference.std == pytest.approx(1.0)
    assert (difference.low, difference.high) == pytest.approx((2.0 - half_width, 2.0 + half_width))
    assert not difference.exceeds_spread  # [-0.48, 4.48]: three seeds need a consistent difference
    noisy = paired_difference([1.0, -1.0, 1.2], [0.0, 0.0, 0.0])
    assert not noisy.exceeds_spread and "*" not in str(noisy)
    consistent = paired_difference([0.30, 0.32, 0.31], [0.0, 0.0, 0.0])
    assert consistent.exceeds_spread and str(consistent).endswith("*")
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])
