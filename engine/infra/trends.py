"""Metric trends from recent samples: which way each metric is moving, and how soon it crosses its limit.

Rules test these as fields of `metric` facts (`trend`, `slope_per_min`, `time_to_limit_s`), so a curator can
write "memory rising and at its limit within 30 minutes" without any arithmetic in the rule file.

Samples come checked (engine/infra/samples.py); a sample that is not a finite number is still left out here,
and a fit that does not come out finite is no fit, so a broken reading can never become a slope or a deadline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WINDOW_S = 600.0  # ten minutes of history, one sample a minute
STEP_S = 60.0
# A metric is rising or falling when its fitted change over the window is at least this share of its limit;
# below that it is noise (the simulated noise is +-3% of a baseline that sits under the limit).
TREND_SHARE = 0.05


@dataclass(frozen=True)
class Trend:
    direction: str  # rising | falling | steady
    slope_per_min: float
    time_to_limit_s: float | None  # None when the metric is not heading for its limit


def finite(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The samples whose time and value are both finite numbers."""
    return [(t, v) for t, v in samples if math.isfinite(t) and math.isfinite(v)]


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time s, value) samples, in units per second; 0 with fewer than two."""
    samples = finite(samples)
    fit = least_squares(samples, samples[-1][0]) if samples else None
    return fit.slope if fit else 0.0


def trend(samples: Sequence[tuple[float, float]], limit: float, worse: str, unhealthy: bool) -> Trend:
    """Direction and time to limit of one metric; `worse` is "above" or "below" (which side is unhealthy)."""
    samples = finite(samples)
    if not samples:
        return Trend("steady", 0.0, 0.0 if unhealthy else None)
    per_s = slope(samples)
    window = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
    change = per_s * window
    threshold = TREND_SHARE * abs(limit)
    direction = "rising" if change >= threshold and change > 0 else "falling" if -change >= threshold else "steady"
    value = samples[-1][1]
    heading = (direction == "rising" and worse == "above") or (direction == "falling" and worse == "below")
    if unhealthy:
        to_limit: float | None = 0.0
    elif heading and per_s != 0:
        to_limit = max(0.0, (limit - value) / per_s)
    else:
        to_limit = None
    return Trend(direction, round(per_s * 60, 4), None if to_limit is None else round(to_limit, 1))


@dataclass(frozen=True)
class Fit:
    """A least-squares line with times relative to now: `intercept` is the fitted value now."""

    slope: float
    intercept: float
    stderr: float  # of the slope
    samples: int

    def eta(self, limit: float, worse_below: bool) -> float | None:
        """Seconds until the line reaches `limit` going the worse way; None if it is not heading there."""
        slope = -self.slope if worse_below else self.slope
        gap = (self.intercept - limit) if worse_below else (limit - self.intercept)
        if not slope > 0 or not gap > 0:  # also false for NaN
            return None
        eta = gap / slope
        return eta if math.isfinite(eta) else None


def least_squares(samples: Sequence[tuple[float, float]], now: float) -> Fit | None:
    """Fit value = intercept + slope * (t - now), as predict_linear does; None with fewer than 2 finite samples,
    or when the fit does not come out finite (values so large that their squares overflow)."""
    samples = finite(samples)
    n = len(samples)
    if n < 2:
        return None
    xs = [t - now for t, _ in samples]
    ys = [v for _, v in samples]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) * (x - mean_x) for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    # Products, not powers: a square too large for a float is then infinite (and refused below), not an error.
    residual = sum((y - intercept - slope * x) * (y - intercept - slope * x) for x, y in zip(xs, ys, strict=True))
    stderr = math.sqrt(residual / (n - 2) / sxx) if n > 2 else math.inf
    if not (math.isfinite(slope) and math.isfinite(intercept)) or math.isnan(stderr):
        return None
    return Fit(slope, intercept, stderr, n)
