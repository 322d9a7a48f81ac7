"""Numbers behind the plots: smoothing, robust y ranges, ticks, x axes.

Pure functions on numpy arrays, so they are tested without a screen and the
widgets only decide what to draw.
"""

from __future__ import annotations

import math

import numpy as np

X_AXES = ("step", "epoch", "time")

# The plots work in [-PLOT_LIMIT, PLOT_LIMIT]: a file may hold values up to
# ±1.8e308 (and times too), whose spans and paddings overflow to inf. Values
# beyond are drawn at the edge, marked off-scale like any clipped point.
PLOT_LIMIT = 1e300


def bounded(values: np.ndarray) -> np.ndarray:
    """`values` clipped to ±PLOT_LIMIT (NaN stays NaN)."""
    return np.clip(values, -PLOT_LIMIT, PLOT_LIMIT)


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average, as TensorBoard smooths scalars.

    The running average starts at zero and is divided by (1 - weight**n), so
    the first points are not dragged towards zero. Non-finite values are
    passed through and do not poison the average. Computed in closed form
    over chunks (a redraw smooths thousands of points per curve).
    """
    out = np.array(values, dtype=np.float64, copy=True)
    if weight <= 0 or not len(out):
        return out
    finite = np.flatnonzero(np.isfinite(out))
    points = out[finite]
    if not len(points):
        return out
    if weight >= 1 or np.abs(points).max() > 1e150:  # closed form would overflow: step by step
        out[finite] = _ema_loop(points, weight)
        return out
    # last_k = w^(j+1) carry + (1-w) w^j sum_i<=j f_i w^-i within a chunk;
    # chunks short enough that w^-j stays far from overflow.
    chunk = int(min(1024, max(1, 150 / -math.log10(weight))))
    powers = weight ** np.arange(chunk, dtype=np.float64)
    smoothed = np.empty_like(points)
    carry = 0.0
    for start in range(0, len(points), chunk):
        part = points[start : start + chunk]
        w = powers[: len(part)]
        running = weight * w * carry + (1.0 - weight) * w * np.cumsum(part / w)
        smoothed[start : start + len(part)] = running
        carry = float(running[-1])
    count = np.arange(1, len(points) + 1, dtype=np.float64)
    out[finite] = smoothed / (1.0 - weight**count)
    return out


def _ema_loop(points: np.ndarray, weight: float) -> np.ndarray:
    out = np.empty_like(points)
    last = 0.0
    for i, value in enumerate(points.tolist()):
        last = last * weight + (1.0 - weight) * value
        out[i] = last / (1.0 - weight ** (i + 1)) if weight < 1 else math.nan
    return out


def robust_range(values: np.ndarray, lower_pct: float = 5.0, upper_pct: float = 95.0) -> tuple[float, float] | None:
    """A y range from percentiles of the finite values, widened by a margin.

    One spike or a NaN leaves the bulk of the curve readable; points beyond
    the range are drawn at the edge and marked by the caller.
    """
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    lo, hi = np.percentile(finite, [lower_pct, upper_pct])
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 0.1 or 1.0
    # Stretch to every point that is not far out, so only real outliers clip.
    lo = float(finite[finite >= lo - 0.5 * span].min())
    hi = float(finite[finite <= hi + 0.5 * span].max())
    if hi <= lo:
        return _around(lo)
    return float(lo), float(hi)


def full_range(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return _around(lo)
    return lo, hi


def _around(value: float) -> tuple[float, float]:
    """A range with a constant curve in the middle."""
    pad = abs(value) * 0.05 or 0.5
    return value - pad, value + pad


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """About `count` round tick positions inside [lo, hi] (1, 2, 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count, 1)
    if not math.isfinite(raw) or raw < 1e-300:  # a span that overflows, or one too small to divide
        return [lo, hi]
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(value / step) * step)
        value += step
    return ticks


def format_tick(value: float) -> str:
    """Short tick label; never "-0" or "-0.0"."""
    if value == 0 or abs(value) < 1e-12:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-4:
        mantissa, exponent = f"{value:.1e}".split("e")
        mantissa = mantissa.removesuffix(".0")
        text = f"{mantissa}e{int(exponent)}"
    elif float(value).is_integer():
        text = f"{int(value)}"
    else:
        text = f"{value:.4g}"
    return "0" if text in ("-0", "-0.0") else text


def format_value(value: float) -> str:
    """A metric's latest value for a legend: 4 significant digits, NaN and
    inf spelled as the run file spells them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks for a log10-transformed axis: decades, labelled in data units."""
    first, last = math.floor(lo), math.ceil(hi)
    every = max(1, (last - first) // 5)
    ticks = [float(k) for k in range(first, last + 1, every) if lo - 1e-9 <= k <= hi + 1e-9]
    if len(ticks) < 2:
        ticks = nice_ticks(lo, hi, 3)
    return ticks, [_decade_label(t) for t in ticks]


def _decade_label(t: float) -> str:
    """10**t in data units; the exponent alone where 10**t would overflow."""
    if abs(t) > 300:
        return f"1e{t:.0f}" if float(t).is_integer() else f"1e{t:.3g}"
    return format_tick(10**t) if float(t).is_integer() else f"{10**t:.3g}"


def step_to_epoch(steps: np.ndarray, epoch_steps: list[int], steps_per_epoch: int | None) -> np.ndarray:
    """Fractional epochs: epoch e ends at epoch_steps[e]; before any epoch
    record, the header's steps_per_epoch is used."""
    steps = np.asarray(steps, dtype=np.float64)
    if epoch_steps:
        knots_x = [0.0] + [float(s) for s in epoch_steps]
        knots_y = [float(i) for i in range(len(knots_x))]
        out = np.interp(steps, knots_x, knots_y)
        beyond = steps > knots_x[-1]
        if beyond.any():
            per = steps_per_epoch or max(1.0, knots_x[-1] - (knots_x[-2] if len(knots_x) > 1 else 0.0))
            out[beyond] = knots_y[-1] + (steps[beyond] - knots_x[-1]) / per
        return out
    if steps_per_epoch:
        return steps / steps_per_epoch
    return steps


def step_to_time(steps: np.ndarray, clock_steps: np.ndarray, clock_times: np.ndarray, start: float | None) -> np.ndarray | None:
    """Seconds since the run started, interpolated from recorded (step, time)."""
    if len(clock_steps) == 0:
        return None
    origin = start if start is not None else float(clock_times[0])
    return np.interp(np.asarray(steps, dtype=np.float64), clock_steps, clock_times) - origin


def crop(xs: np.ndarray, ys: np.ndarray, window: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    if window is None or not len(xs):
        return xs, ys
    keep = (xs >= window[0]) & (xs <= window[1])
    return xs[keep], ys[keep]
