"""Summary statistics of measured samples (ratios, norms, accuracies, timings).

The studies repeat each measurement over seeds and report a centre with a 95% interval over
them: :func:`interval` computes it, :func:`format_interval` writes it as
``0.42 [0.31, 0.57] (n=8)``.

>>> print(interval([0.3, 0.4, 0.5, 0.6]))
0.45 [0.245, 0.655] (n=4)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable

import numpy as np

METHODS = ("t", "bootstrap")


def geometric_mean(values: Iterable[float]) -> float:
    r"""The geometric mean of the positive finite values; NaN where there are none.

    .. math:: \exp\Big(\frac{1}{n} \sum_{i=1}^{n} \log v_i\Big)

    over the ``n`` values ``v_i`` that are finite and positive: a norm that underflowed to 0 or
    a ratio that is NaN is left out rather than turning the whole mean into 0 or NaN.

    Args:
        values: numbers (a list, a generator, a 1-D NumPy array).

    Returns:
        The mean as a float.

    >>> geometric_mean([1.0, 100.0])
    10.0
    >>> geometric_mean([4.0, 0.0, float("nan"), 1.0])  # 0 and NaN left out
    2.0
    >>> geometric_mean([])
    nan
    """
    logs = [math.log(v) for v in map(float, values) if math.isfinite(v) and v > 0]
    return math.exp(math.fsum(logs) / len(logs)) if logs else math.nan


def t_critical(level: float, df: int) -> float:
    r"""The two-sided critical value of Student's t: the ``t`` with ``P(|T| <= t) = level``.

    For ``df`` degrees of freedom, ``A(t) = P(|T| <= t)`` is a finite sum in
    :math:`\theta = \arctan(t / \sqrt{\nu})` (Abramowitz & Stegun 26.7.3-4): for odd
    :math:`\nu`

    .. math:: A = \frac{2}{\pi}\Big(\theta + \sin\theta \sum_{k=0}^{(\nu-3)/2}
        \frac{(2k)!!}{(2k+1)!!} \cos^{2k+1}\theta\Big),

    for even :math:`\nu`

    .. math:: A = \sin\theta \sum_{k=0}^{\nu/2-1} \frac{(2k-1)!!}{(2k)!!} \cos^{2k}\theta,

    solved for ``t`` by bisection to double precision; no SciPy needed.

    Args:
        level: the two-sided probability, in (0, 1) (0.95 for a 95% interval).
        df: degrees of freedom, a positive integer (``n - 1`` for a mean of ``n`` values).

    Returns:
        The critical value (12.706 for ``df = 1``, 1.96 in the limit of large ``df``).

    Raises:
        ValueError: for ``level`` outside (0, 1) or ``df`` not a positive integer.

    >>> round(t_critical(0.95, 1), 3), round(t_critical(0.95, 7), 3)
    (12.706, 2.365)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    df = int(df)

    def covered(t: float) -> float:
        theta = math.atan(t / math.sqrt(df))
        c2 = math.cos(theta) ** 2
        if df % 2:
            term, total = math.cos(theta), 0.0
            for k in range((df - 1) // 2):
                total += term
                term *= c2 * (2 * k + 2) / (2 * k + 3)
            return 2.0 / math.pi * (theta + math.sin(theta) * total)
        term, total = 1.0, 0.0
        for k in range(df // 2):
            total += term
            term *= c2 * (2 * k + 1) / (2 * k + 2)
        return math.sin(theta) * total

    lo, hi = 0.0, 1.0
    while covered(hi) < level:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if covered(mid) < level else (lo, mid)
    return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A centre and an interval over a sample.

    Attributes:
        n: the values used (finite, and positive on the log scale).
        centre: their mean (on the log scale: the geometric mean).
        low: the interval's lower end (NaN with fewer than 2 values).
        high: the interval's upper end (NaN with fewer than 2 values).
        left_out: the values given but not used (NaN, infinite, or not positive on the log
            scale: a diverged seed, a norm that underflowed to 0).
    """

    n: int
    centre: float
    low: float
    high: float
    left_out: int = 0

    def __str__(self) -> str:
        return format_interval(self)


def interval(
    values: Iterable[float],
    *,
    log: bool = False,
    level: float = 0.95,
    method: str = "t",
    resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    r"""The mean of a sample over seeds and an interval for it, by default a 95% t interval.

    With ``method="t"`` (the default) the interval is

    .. math:: \bar y \pm t_{n-1} \, s / \sqrt{n}, \qquad
        s^2 = \frac{1}{n-1} \sum_i (y_i - \bar y)^2,

    over ``y_i = v_i``, or ``y_i = log v_i`` with ``log=True``, where centre and ends are
    mapped back by ``exp`` (an interval for the geometric mean). Gradient ratios span decades
    over seeds (0.002 to 2 for one configuration at width 64) and their logarithms are
    roughly normal, so ``log=True`` is the choice for them; accuracies and losses take the
    plain scale. Why t and not the bootstrap by default: with the few seeds a study can afford
    (n = 4 to 16), the percentile bootstrap's interval is too narrow, about
    :math:`z \sqrt{(n-1)/n} / t_{n-1}` of the t interval (0.77 at n = 8: a nominal 95%
    interval that covers about 89%), while t is exact for normal values at every n.
    ``method="bootstrap"`` (percentile interval of the mean over ``resamples`` resamplings of
    the seeds, drawn by ``numpy.random.default_rng(seed)``, so the same sample always gives
    the same interval) makes no normality assumption, for a sample large enough (n >= 20 or so)
    that is skewed even on the chosen scale.

    Values that are not finite (and, with ``log=True``, not positive) are left out and
    counted in ``left_out``; with fewer than 2 values left the ends are NaN.

    Args:
        values: the sample, one value per seed.
        log: work on the log scale (positive quantities spanning decades: ratios, norms).
        level: the interval's coverage, in (0, 1).
        method: ``"t"`` or ``"bootstrap"``.
        resamples: bootstrap resamplings.
        seed: the bootstrap's random seed.

    Returns:
        The :class:`Interval`.

    Raises:
        ValueError: for an unknown method (naming the closest), a level outside (0, 1), or
            fewer than 1 resample.

    >>> iv = interval([0.01, 0.1, 1.0], log=True)
    >>> round(iv.centre, 6), iv.n
    (0.1, 3)
    >>> print(interval([0.01, 0.1, 1.0, 0.0], log=True, method="bootstrap"))
    0.1 [0.01, 1] (n=3, 1 left out)
    """
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown interval method {method!r}: choose one of {METHODS}{hint}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    given = np.asarray(list(map(float, values)), dtype=np.float64)
    usable = np.isfinite(given) & (given > 0 if log else True)
    y = np.log(given[usable]) if log else given[usable]
    n, left_out = int(y.size), int(given.size - y.size)
    back = math.exp if log else float
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan, left_out)
    centre = float(np.mean(y))
    if n == 1:
        return Interval(1, back(centre), math.nan, math.nan, left_out)
    if method == "t":
        half = t_critical(level, n - 1) * float(np.std(y, ddof=1)) / math.sqrt(n)
        low, high = centre - half, centre + half
    else:
        rng = np.random.default_rng(seed)
        means = y[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
        tail = 100.0 * (1.0 - level) / 2.0
        low, high = (float(v) for v in np.percentile(means, [tail, 100.0 - tail]))
    return Interval(n, back(centre), back(low), back(high), left_out)


def format_interval(iv: Interval, spec: str = ".3g") -> str:
    """``centre [low, high] (n=N)``, the numbers formatted with ``spec``.

    Without an interval (fewer than 2 values) only the centre and n; a missing centre is
    ``—``; values left out are counted after n.

    Args:
        iv: the interval.
        spec: a format specification for the three numbers.

    Returns:
        The text.

    >>> format_interval(Interval(8, 0.42, 0.31, 0.57))
    '0.42 [0.31, 0.57] (n=8)'
    >>> format_interval(Interval(1, 0.9, float("nan"), float("nan"), left_out=2), ".2f")
    '0.90 (n=1, 2 left out)'
    """
    count = f"n={iv.n}" + (f", {iv.left_out} left out" if iv.left_out else "")
    if not math.isfinite(iv.centre):
        return f"— ({count})"
    centre = format(iv.centre, spec)
    if not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return f"{centre} ({count})"
    return f"{centre} [{format(iv.low, spec)}, {format(iv.high, spec)}] ({count})"
