"""Statistics for comparing runs: mean and spread over seeds, paired differences with confidence intervals.

A difference between two methods is *paired*: the same seed (or the same test photo) under both methods, so
the seed's and the photo's own difficulty cancel. ``paired_difference`` gives the mean difference, its sample
standard deviation, and a 95% confidence interval for the mean from Student's t distribution (n - 1 degrees
of freedom); a difference "exceeds its spread" when that interval excludes 0. With 3 seeds the interval is
wide (t = 4.30): only a consistent difference passes, which is the point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t, by degrees of freedom (1..30); beyond 30 the normal's 1.96 is used
# with a small correction (the t quantile at 40, 60, 120 is 2.021, 2.000, 1.980).
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_95(degrees_of_freedom: int) -> float:
    """The two-sided 95% quantile of Student's t with ``degrees_of_freedom`` (>= 1)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {degrees_of_freedom}")
    if degrees_of_freedom <= len(_T95):
        return _T95[degrees_of_freedom - 1]
    return 1.96 + 2.4 / degrees_of_freedom  # within 0.002 of the exact quantile for df > 30


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (n - 1) of values; ``std`` is 0 for a single value."""

    mean: float
    std: float
    count: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}" if self.count > 1 else f"{self.mean:.3f}"


def summarize(values: Sequence[float]) -> Summary:
    values = [float(value) for value in values]
    if not values:
        raise ValueError("summarize: no values")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return Summary(mean, 0.0, 1)
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    return Summary(mean, math.sqrt(variance), len(values))


@dataclass(frozen=True)
class Difference:
    """Paired difference ``a - b``: mean, sample std, count and the 95% confidence interval of the mean."""

    mean: float
    std: float
    count: int
    low: float
    high: float

    @property
    def exceeds_spread(self) -> bool:
        """True when the 95% interval excludes 0 (needs at least two pairs)."""
        return self.count > 1 and (self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        sign = "+" if self.mean >= 0 else ""
        if self.count < 2:
            return f"{sign}{self.mean:.3f}"
        mark = " *" if self.exceeds_spread else ""
        return f"{sign}{self.mean:.3f} [{self.low:+.3f}, {self.high:+.3f}]{mark}"


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """The paired difference ``a[i] - b[i]`` (same seeds or same photos, in the same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values against {len(b)}")
    summary = summarize([float(x) - float(y) for x, y in zip(a, b)])
    if summary.count < 2:
        return Difference(summary.mean, 0.0, summary.count, summary.mean, summary.mean)
    half_width = t_quantile_95(summary.count - 1) * summary.std / math.sqrt(summary.count)
    return Difference(summary.mean, summary.std, summary.count, summary.mean - half_width, summary.mean + half_width)
