"""High-precision accuracy reference for the elementwise activations.

Every covered activation has an mpmath formula for its value and its first
derivative (analytic wherever possible), evaluated at 50 significant digits and
stored as a double-double ``hi + lo`` pair of float64 arrays, so the error of a
float32 or float64 result is measured exactly enough: ``(y - hi) - lo`` is exact
when ``y`` is close to the truth (Sterbenz).

Errors are relative and given in units of the evaluation dtype's epsilon
(``2**-23`` for float32, ``2**-52`` for float64); a result whose true magnitude
is below ``2**-100`` is judged by its absolute error instead, and an absolute
error of at most ``2**-100`` counts as zero. For float16 and bfloat16 the error
is measured in ulps of that type at the true value.

Run ``python -m experiments.accuracy`` for a markdown table of the worst errors
of ``jaxact`` and of ``jax.nn`` on the float32 grid.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import mpmath
import numpy as np

import jaxact
from experiments.atomic_files import atomic_write_text

DPS = 50
TINY = 2.0**-100  # below this true magnitude, absolute error is used

# Points around which the grid is dense: derivative zeros and switch-over points.
SPECIAL_POINTS = (
    -1.2784645427610738,  # silu'
    -1.1924312145154952,  # mish'
    -0.7517915246935645,  # gelu' (exact)
    -0.7524614220710163,  # gelu' (tanh approximation)
    -1.4142135623730951,  # gelu's switch to the Mills ratio
    -1.0,
    0.0,
    1.0,
    -8.0,
    -17.0,
    -88.0,
)

_SELU_ALPHA = mpmath.mpf("1.6732632423543772848170429916717")
_SELU_SCALE = mpmath.mpf("1.0507009873554804934193349852946")


# --- the mpmath formulas -------------------------------------------------------


def _sig(z):
    """Logistic sigmoid, accurate in both tails."""
    return 1 / (1 + mpmath.exp(-z))


def _sig_slope(z):
    """sigma(z) sigma(-z) without cancellation."""
    e = mpmath.exp(-abs(z))
    return e / (1 + e) ** 2


def _softplus(z):
    return mpmath.log1p(mpmath.exp(z)) if z < 0 else z + mpmath.log1p(mpmath.exp(-z))


def _phi(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _cdf(x):
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _gelu_tanh_arg(x):
    """2u for tanh-gelu, with 0.5 (1 + tanh u) = sigma(2u)."""
    return 2 * mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)


def _gelu_value(x, approximate=True):
    return x * (_sig(_gelu_tanh_arg(x)) if approximate else _cdf(x))


def _gelu_slope(x, approximate=True):
    if not approximate:
        return _cdf(x) + x * _phi(x)
    z = _gelu_tanh_arg(x)
    dz = 2 * mpmath.sqrt(2 / mpmath.pi) * (1 + 3 * mpmath.mpf("0.044715") * x * x)
    return _sig(z) + x * dz * _sig_slope(z)


def _mish_value(x):
    return x * mpmath.tanh(_softplus(x))


def _mish_slope(x):
    s = _softplus(x)
    return mpmath.tanh(s) + x * mpmath.sech(s) ** 2 * _sig(x)


def _tanh_shrink_value(x):
    if x == 0:
        return mpmath.mpf(0)
    # x - tanh(x) cancels for small x: add the digits it loses.
    extra = max(0, int(-3 * mpmath.log10(abs(x)))) + 10
    with mpmath.workdps(DPS + extra):
        return x - mpmath.tanh(x)


def _squareplus_value(x, b=4):
    r = mpmath.sqrt(x * x + b)
    return (x + r) / 2 if x >= 0 else b / (2 * (r - x))


def _squareplus_slope(x, b=4):
    r = mpmath.sqrt(x * x + b)
    return (1 + x / r) / 2 if x >= 0 else b / (2 * r * (r - x))


def _piecewise(x, pieces, default):
    """pieces: (upper bound, value) in increasing order; the first with x < bound wins.

    A bound given as ``("<=", bound)`` also takes x equal to it.
    """
    for bound, value in pieces:
        closed = isinstance(bound, tuple)
        if (x <= bound[1]) if closed else (x < bound):
            return value(x)
    return default(x)


def _constant(c):
    return lambda x, **_: mpmath.mpf(c)


_ZERO = _constant(0)
_ONE = _constant(1)
_IDENTITY = lambda x, **_: x


def _sigmoid_curvature(x, gain=1):
    """sigma''(a x) a^2 = -a^2 sigma'(a x) tanh(a x / 2)."""
    z = gain * x
    return -(gain**2) * _sig_slope(z) * mpmath.tanh(z / 2)


def _silu_curvature(x, beta=1):
    z = beta * x
    return beta * _sig_slope(z) * (2 - z * mpmath.tanh(z / 2))


def _mish_curvature(x):
    """4u / N^3 (2u^3 + 6u^2 + 8u + 4 + x (2 + 2u - 3u^2 - 2u^3)), u = e^x, N = u^2 + 2u + 2."""
    if x > 0:  # in e = e^-x, so that nothing overflows
        e = mpmath.exp(-x)
        d = 1 + 2 * e + 2 * e * e
        bracket = 2 + 6 * e + 8 * e**2 + 4 * e**3 - x * (2 + 3 * e - 2 * e**2 - 2 * e**3)
        return 4 * e * e / d**3 * bracket
    u = mpmath.exp(x)
    n = u * u + 2 * u + 2
    return 4 * u / n**3 * (2 * u**3 + 6 * u**2 + 8 * u + 4 + x * (2 + 2 * u - 3 * u**2 - 2 * u**3))


def _gelu_curvature(x, approximate=True):
    if not approximate:
        return _phi(x) * (2 - x * x)
    c = mpmath.mpf("0.044715")
    k1 = 2 * mpmath.sqrt(2 / mpmath.pi)
    z = _gelu_tanh_arg(x)
    dz, ddz = k1 * (1 + 3 * c * x * x), 6 * k1 * c * x
    return _sig_slope(z) * (2 * dz + x * (ddz - mpmath.tanh(z / 2) * dz**2))


def _squareplus_curvature(x, b=4):
    return b / (2 * mpmath.sqrt(x * x + b) ** 3)


class Reference(NamedTuple):
    """mpmath formulas of a function and its first two derivatives, with default parameters.

    At a kink each follows ``jax.nn``'s choice of branch (tested against ``jax.nn``).
    """

    value: Callable[..., Any]
    slope: Callable[..., Any]
    curvature: Callable[..., Any]
    params: dict[str, Any]


REFERENCES: dict[str, Reference] = {
    "sigmoid": Reference(
        lambda x, gain=1: _sig(gain * x),
        lambda x, gain=1: gain * _sig_slope(gain * x),
        _sigmoid_curvature,
        {"gain": 1.0},
    ),
    "tanh": Reference(
        mpmath.tanh,
        lambda x: mpmath.sech(x) ** 2,
        lambda x: -2 * mpmath.tanh(x) * mpmath.sech(x) ** 2,
        {},
    ),
    "softplus": Reference(
        lambda x, beta=1: _softplus(beta * x) / beta,
        lambda x, beta=1: _sig(beta * x),
        lambda x, beta=1: beta * _sig_slope(beta * x),
        {"beta": 1.0},
    ),
    "log_sigmoid": Reference(
        lambda x: -_softplus(-x), lambda x: _sig(-x), lambda x: -_sig_slope(x), {}
    ),
    "silu": Reference(
        lambda x, beta=1: x * _sig(beta * x),
        lambda x, beta=1: _sig(beta * x) + beta * x * _sig_slope(beta * x),
        _silu_curvature,
        {"beta": 1.0},
    ),
    "mish": Reference(_mish_value, _mish_slope, _mish_curvature, {}),
    "gelu": Reference(_gelu_value, _gelu_slope, _gelu_curvature, {"approximate": True}),
    "elu": Reference(
        lambda x, alpha=1: x if x > 0 else alpha * mpmath.expm1(x),
        lambda x, alpha=1: mpmath.mpf(1) if x > 0 else alpha * mpmath.exp(x),
        lambda x, alpha=1: mpmath.mpf(0) if x > 0 else alpha * mpmath.exp(x),
        {"alpha": 1.0},
    ),
    "selu": Reference(
        lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * mpmath.expm1(x)),
        lambda x: _SELU_SCALE * (1 if x > 0 else _SELU_ALPHA * mpmath.exp(x)),
        lambda x: _SELU_SCALE * (0 if x > 0 else _SELU_ALPHA * mpmath.exp(x)),
        {},
    ),
    "celu": Reference(
        lambda x, alpha=1: x if x > 0 else alpha * mpmath.expm1(x / alpha),
        lambda x, alpha=1: mpmath.mpf(1) if x > 0 else mpmath.exp(x / alpha),
        # At 0: the left branch, 1 / alpha (jax.nn's is 1 / (4 alpha), see KINK_EXCEPTIONS).
        lambda x, alpha=1: mpmath.mpf(0) if x > 0 else mpmath.exp(x / alpha) / alpha,
        {"alpha": 1.0},
    ),
    "soft_sign": Reference(
        lambda x: x / (1 + abs(x)),
        lambda x: 1 / (1 + abs(x)) ** 2,
        lambda x: (-2 if x >= 0 else 2) / (1 + abs(x)) ** 3,  # at 0: the right branch
        {},
    ),
    "squareplus": Reference(
        _squareplus_value, _squareplus_slope, _squareplus_curvature, {"b": 4.0}
    ),
    "sparse_plus": Reference(
        lambda x: _piecewise(
            x, [(("<=", -1), _ZERO), (1, lambda x: (x + 1) ** 2 / 4)], lambda x: x
        ),
        lambda x: _piecewise(x, [(("<=", -1), _ZERO), (1, lambda x: (x + 1) / 2)], _ONE),
        lambda x: _piecewise(x, [(("<=", -1), _ZERO), (1, _constant(0.5))], _ZERO),
        {},
    ),
    "sparse_sigmoid": Reference(
        lambda x: _piecewise(x, [(-1, _ZERO), (1, lambda x: (x + 1) / 2)], _ONE),
        # At -1 and 1 the mean of the one-sided derivatives, as jax.nn's clip gives.
        lambda x: (
            mpmath.mpf(0.25) if abs(x) == 1 else mpmath.mpf(0.5) if abs(x) < 1 else mpmath.mpf(0)
        ),
        _ZERO,
        {},
    ),
    "exponential": Reference(mpmath.exp, mpmath.exp, mpmath.exp, {}),
    "tanh_shrink": Reference(
        _tanh_shrink_value,
        lambda x: mpmath.tanh(x) ** 2,
        lambda x: 2 * mpmath.tanh(x) * mpmath.sech(x) ** 2,
        {},
    ),
    "leaky_relu": Reference(
        lambda x, negative_slope=0.01: x if x >= 0 else negative_slope * x,
        lambda x, negative_slope=0.01: mpmath.mpf(1) if x >= 0 else negative_slope,
        _ZERO,
        {"negative_slope": 0.01},
    ),
    "relu": Reference(lambda x: max(x, 0), lambda x: mpmath.mpf(x > 0), _ZERO, {}),
    "relu6": Reference(lambda x: min(max(x, 0), 6), lambda x: mpmath.mpf(0 < x < 6), _ZERO, {}),
    "hard_tanh": Reference(
        lambda x: min(max(x, -1), 1), lambda x: mpmath.mpf(-1 <= x <= 1), _ZERO, {}
    ),
    "hard_sigmoid": Reference(
        lambda x: min(max(x + 3, 0), 6) / 6,
        lambda x: mpmath.mpf(-3 < x < 3) / 6,
        _ZERO,
        {},
    ),
    "hard_silu": Reference(
        lambda x: x * min(max(x + 3, 0), 6) / 6,
        lambda x: _piecewise(x, [(("<=", -3), _ZERO), (3, lambda x: (2 * x + 3) / 6)], _ONE),
        lambda x: _piecewise(x, [(("<=", -3), _ZERO), (3, _constant(1 / mpmath.mpf(3)))], _ZERO),
        {},
    ),
    "identity": Reference(lambda x: x, _ONE, _ZERO, {}),
}

# The grid includes every point where a function or one of its first two derivatives is
# not smooth: the registry's breakpoints, and the kinks of the first derivative below.
# There the references follow jax.nn's branch (test_accuracy checks it).
#: Kinks of the first derivative only (the function itself is C^1 there).
CURVATURE_KINKS: dict[str, tuple[float, ...]] = {"soft_sign": (0.0,)}

#: (name, kink, derivative order) where jaxact's documented choice differs from jax.nn's,
#: which is still between the one-sided derivatives.
KINK_EXCEPTIONS = {("celu", 0.0, 2): "the left branch 1/alpha; jax.nn gives 1/(4 alpha)"}

# The non-zero zeros of the first and second derivatives: name -> (order, guess for
# findroot, a function of the parameters). The zeros at 0 (sigmoid'', tanh'',
# tanh_shrink' and '') are on every grid. The grid takes each zero's float neighbours.
DERIVATIVE_ZEROS: dict[str, tuple[tuple[int, Callable[..., float]], ...]] = {
    "silu": (
        (1, lambda beta=1, **_: -1.2785 / beta),
        (2, lambda beta=1, **_: -2.3994 / beta),
        (2, lambda beta=1, **_: 2.3994 / beta),
    ),
    "mish": ((1, lambda **_: -1.1924), (2, lambda **_: -2.2564), (2, lambda **_: 1.4906)),
    "gelu": (
        (1, lambda approximate=True, **_: -0.7525 if approximate else -0.7518),
        (2, lambda approximate=True, **_: -1.4185 if approximate else -math.sqrt(2)),
        (2, lambda approximate=True, **_: 1.4185 if approximate else math.sqrt(2)),
    ),
}


# (label, name, params): the default of every function, plus a few parameter settings.
CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    *((name, name, {}) for name in REFERENCES if name != "gelu"),
    ("gelu(approximate=True)", "gelu", {"approximate": True}),
    ("gelu(approximate=False)", "gelu", {"approximate": False}),
    ("sigmoid(gain=3)", "sigmoid", {"gain": 3.0}),
    ("softplus(beta=2)", "softplus", {"beta": 2.0}),
    ("silu(beta=1.7)", "silu", {"beta": 1.7}),
    ("elu(alpha=0.5)", "elu", {"alpha": 0.5}),
    ("celu(alpha=2)", "celu", {"alpha": 2.0}),
    ("squareplus(b=1)", "squareplus", {"b": 1.0}),
)


def jax_nn_function(name: str, params: Mapping[str, Any] | None = None) -> Callable | None:
    """The ``jax.nn`` function that ``name`` is compared with, or None where there is none.

    Args:
        name: a registry name or alias; its counterpart is the registry's ``jax_nn`` name.
        params: the hyperparameters of the case; ``jax.nn``'s function must accept each of them.

    Returns:
        The ``jax.nn`` function, or None where ``jax.nn`` has no such function or lacks one
        of ``params``.

    >>> jax_nn_function("swish") is jax.nn.silu
    True
    >>> jax_nn_function("silu", {"beta": 1.7}) is None  # jax.nn.silu has no beta
    True
    """
    counterpart = jaxact.info(name).jax_nn
    if counterpart is None:
        return None
    fn = getattr(jax.nn, counterpart)
    accepted = inspect.signature(fn).parameters
    return fn if all(p in accepted for p in params or {}) else None


# --- the grid ------------------------------------------------------------------


def grid(dtype=np.float32, dense: int = 1200) -> np.ndarray:
    """The test grid: the whole finite range, log-spaced in both signs, plus dense parts.

    Args:
        dtype: the dtype whose range is covered (float64 uses the float32 grid).
        dense: number of points spread uniformly on [-40, 40]; a tenth of it
            lies within 1e-2 of each special point (derivative zeros, switch-overs).

    Returns:
        A sorted 1-D array of distinct finite values of ``dtype``, 0 and -0 among them.
    """
    dtype = np.dtype(dtype)
    base = np.dtype(np.float32) if dtype == np.float64 else dtype
    info = jnp.finfo(base)
    lo, hi = math.log10(float(info.smallest_normal)), math.log10(float(info.max))
    logs = np.logspace(lo, hi, max(60, int(5 * (hi - lo))))
    near = np.concatenate([p + np.linspace(-1e-2, 1e-2, dense // 10) for p in SPECIAL_POINTS])
    points = np.concatenate(
        [
            logs,
            -logs,
            np.linspace(-40, 40, dense),
            near,
            [0.0, float(info.max), -float(info.max), float(info.smallest_subnormal)],
        ]
    )
    with np.errstate(over="ignore"):
        points = points.astype(base)
    points = np.unique(points[np.isfinite(points)])
    return np.concatenate([[-0.0], points]).astype(dtype)  # unique() merges -0 into 0


@functools.lru_cache(maxsize=64)
def derivative_zeros(name: str, params: tuple = ()) -> tuple[tuple[int, float], ...]:
    """The non-zero zeros ``(order, x)`` of the first and second derivatives, to float64."""
    reference, kwargs = REFERENCES[name], dict(params)
    out = []
    with mpmath.workdps(30):
        for order, guess in DERIVATIVE_ZEROS.get(name, ()):
            derivative = functools.partial(reference[order], **kwargs)
            root = mpmath.findroot(derivative, mpmath.mpf(guess(**kwargs)))
            out.append((order, float(root)))
    return tuple(out)


def _neighbours(points, dtype, count: int = 6) -> np.ndarray:
    """Each (non-zero) point rounded to dtype and the ``count`` values of dtype on either side."""
    dtype = np.dtype(dtype)
    ints = np.dtype(f"int{8 * dtype.itemsize}")
    bits = np.asarray(points, dtype=dtype).view(ints)
    steps = np.arange(-count, count + 1, dtype=ints)
    return (bits[:, None] + steps[None, :]).astype(ints).ravel().view(dtype)


def breakpoints(name: str, params: Mapping[str, Any] | None = None) -> tuple[float, ...]:
    """Where ``name`` or one of its first two derivatives is not smooth (the grid holds them)."""
    return tuple(jaxact.info(name).breakpoints(**(params or {}))) + CURVATURE_KINKS.get(name, ())


def case_grid(name: str, dtype=np.float32, params: Mapping[str, Any] | None = None, **grid_kwargs):
    """The grid for one case: :func:`grid`, its kinks, and each derivative zero with its neighbours.

    Subnormal inputs next to a kink at 0 are dropped (XLA on CPU flushes subnormals to
    zero, so they are evaluated at the kink); 0 and -0 themselves are kept.
    """
    x = grid(dtype, **grid_kwargs)
    dtype = x.dtype
    tiny = float(jnp.finfo(np.float32 if dtype == np.float64 else dtype).smallest_normal)
    kinks = breakpoints(name, params)
    kink_array = np.asarray(kinks, dtype=np.float64)
    near = np.abs(x.astype(np.float64)[:, None] - kink_array[None, :]) < tiny
    x = x[~near.any(axis=1) | np.isin(x, kink_array)]
    key = tuple(sorted((params or {}).items()))
    zeros = [root for _, root in derivative_zeros(name, key)]
    extra = np.concatenate([np.asarray(kinks, dtype=dtype), _neighbours(zeros, dtype)])
    extra = extra[~np.isin(extra, x)]
    return np.sort(np.concatenate([x, extra]), kind="stable")


# --- the reference values ------------------------------------------------------


def _split(value) -> tuple[float, float]:
    """An mpf as a float64 pair hi + lo (hi may be inf or 0 where float64 over/underflows)."""
    hi = float(value)
    if not math.isfinite(hi) or hi == 0:
        return hi, 0.0
    return hi, float(value - mpmath.mpf(hi))


def _round_param(value, dtype) -> Any:
    """A numeric parameter as the function sees it: rounded to the compute dtype."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    compute = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    return mpmath.mpf(float(np.asarray(value, dtype=compute)))


@functools.lru_cache(maxsize=256)
def _reference(name: str, params: tuple, x_bytes: bytes) -> tuple[np.ndarray, ...]:
    reference, kwargs = REFERENCES[name], dict(params)
    x = np.frombuffer(x_bytes, dtype=np.float64)
    out = np.empty((6, x.size))
    with mpmath.workdps(DPS):
        for i, xi in enumerate(x):
            m = mpmath.mpf(float(xi))
            for row, formula in enumerate(reference[:3]):
                out[2 * row, i], out[2 * row + 1, i] = _split(formula(m, **kwargs))
    return tuple(out)


def reference(name: str, x: np.ndarray, params: Mapping[str, Any] | None = None, dtype=None):
    """True value and first two derivatives at x as double-double float64 pairs.

    Args:
        name: a key of :data:`REFERENCES`.
        x: the points (any float dtype; converted to float64 exactly).
        params: the function's parameters (numbers are rounded to the compute
            dtype first, as the function receives them).
        dtype: the evaluation dtype (default: x's).

    Returns:
        ``(value_hi, value_lo, slope_hi, slope_lo, curvature_hi, curvature_lo)``,
        float64 arrays of x's size.
    """
    x = np.asarray(x)
    dtype = np.dtype(dtype or x.dtype).name
    key = tuple(sorted((k, _round_param(v, dtype)) for k, v in (params or {}).items()))
    return _reference(name, key, np.ascontiguousarray(x, np.float64).tobytes())


# --- error measurement ---------------------------------------------------------


def _ulp(t: np.ndarray, dtype) -> np.ndarray:
    """The spacing of dtype's values at |t| (subnormal spacing below the normal range)."""
    info = jnp.finfo(dtype)
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.abs(t)))
    exponent = np.maximum(np.nan_to_num(exponent, neginf=-1e4), math.log2(info.smallest_normal))
    return np.exp2(exponent - info.nmant)


def _as(values: np.ndarray, dtype) -> np.ndarray:
    """values rounded to dtype (overflowing to inf without a warning)."""
    with np.errstate(over="ignore"):
        return values.astype(dtype)


def tiny(dtype) -> float:
    """Below this true magnitude the absolute error is used: 2**-100, 2**-1000 for float64."""
    return 2.0**-1000 if np.dtype(dtype) == np.float64 else TINY


def _error(y: np.ndarray, hi: np.ndarray, lo: np.ndarray, dtype) -> np.ndarray:
    """Error of y against hi + lo: eps units (float32/64), ulps (half types); inf if non-finite."""
    dtype = np.dtype(dtype)
    y = np.asarray(y, dtype=np.float64)
    small = tiny(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        truth_in_dtype = hi.astype(dtype).astype(np.float64)
        diff = np.abs((y - hi) - lo)
        if dtype in (np.float32, np.float64):
            eps = float(jnp.finfo(dtype).eps)
            err = diff / np.maximum(np.abs(hi), small) / eps
            err = np.where((np.abs(hi) < small) & (diff <= small), 0.0, err)
        else:
            err = diff / _ulp(hi, dtype)
            if dtype.itemsize == 2 and jnp.finfo(dtype).maxexp > 100:  # bfloat16: float32's range
                err = np.where((np.abs(hi) < small) & (diff <= small), 0.0, err)
    overflow = np.isinf(truth_in_dtype)
    err = np.where(overflow, np.where(y == truth_in_dtype, 0.0, np.inf), err)
    return np.where(np.isfinite(y) | overflow, err, np.inf)


def derivative(fn: Callable, order: int) -> Callable:
    """The ``order``-th derivative of a scalar function, elementwise: vmap of nested jax.grad."""
    for _ in range(order):
        fn = jax.grad(fn)
    return jax.vmap(fn) if order else fn


@functools.lru_cache(maxsize=512)
def _compiled(fn: Callable, params: tuple, order: int) -> Callable:
    kwargs = dict(params)
    return jax.jit(derivative(lambda v: fn(v, **kwargs), order))


def evaluate(fn: Callable, x: np.ndarray, params: Mapping[str, Any] | None = None, order: int = 1):
    """fn and its derivatives up to ``order`` at x, each order in one jitted call.

    Each order is a program of its own, as a user would compile it: XLA contracts
    products into fused multiply-adds differently in a larger program, which can upset
    the double-word corrections (measured: tanh-gelu's value up to 33 eps near x = -8
    when compiled beside its gradient; see docs/accuracy.md).
    """
    key, xj = tuple(sorted((params or {}).items())), jnp.asarray(x)
    return tuple(np.asarray(_compiled(fn, key, k)(xj)) for k in range(order + 1))


def errors(
    fn: Callable,
    name: str,
    x: np.ndarray,
    *,
    params: Mapping[str, Any] | None = None,
    order: int = 1,
):
    """Errors of ``fn`` (value and nested jax.grad) at x against the reference for ``name``.

    Args:
        fn: the implementation, called as ``fn(x, **params)``.
        name: the activation in :data:`REFERENCES`.
        x: the points, of the dtype to evaluate in.
        params: keyword parameters for ``fn`` and the reference.
        order: 1: value and derivative; 2: also the second derivative; 3: also the
            third, of which only finiteness is checked (no reference).

    Returns:
        A dict with ``value`` and ``derivative`` (and ``second_derivative`` for
        ``order >= 2``): float64 arrays of errors in eps of x's dtype (float32,
        float64) or ulps (float16, bfloat16), ``inf`` where the result is NaN or inf
        and the truth is finite in x's dtype; ``value_nonfinite``,
        ``derivative_nonfinite`` (``second_derivative_nonfinite``,
        ``third_derivative_nonfinite``: NaN or inf where the value is finite), boolean
        arrays of those points; and ``x``, ``y``, ``dy`` (``d2y``, ``d3y``), the inputs
        and results.
    """
    x = np.asarray(x)
    params = dict(params or {})
    hi, lo, dhi, dlo, d2hi, d2lo = reference(name, x, params)
    results = evaluate(fn, x, params, order)
    y, dy = results[:2]
    finite = lambda truth: np.isfinite(_as(truth, x.dtype))
    out = {
        "value": _error(y, hi, lo, x.dtype),
        "derivative": _error(dy, dhi, dlo, x.dtype),
        "value_nonfinite": ~np.isfinite(y) & finite(hi),
        "derivative_nonfinite": ~np.isfinite(dy) & finite(dhi),
        "x": x,
        "y": y,
        "dy": dy,
    }
    if order >= 2:
        out["d2y"] = results[2]
        out["second_derivative"] = _error(results[2], d2hi, d2lo, x.dtype)
        out["second_derivative_nonfinite"] = ~np.isfinite(results[2]) & finite(d2hi)
    if order >= 3:
        out["d3y"] = results[3]
        # Every covered function's third derivative is finite wherever its value is.
        out["third_derivative_nonfinite"] = ~np.isfinite(results[3]) & finite(hi)
    return out


_KINDS = ("value", "derivative", "second_derivative")


def worst_errors(implementation: str = "jaxact", dtype=np.float32, order: int = 2) -> list[tuple]:
    """The worst errors of every covered case on its grid.

    Args:
        implementation: ``"jaxact"`` or ``"jax.nn"`` (cases jax.nn lacks are skipped).
        dtype: the evaluation dtype.
        order: 1 or 2, the highest derivative measured.

    Returns:
        Rows ``(label, worst value error, worst derivative error[, worst second
        derivative error], x at the worst)``; errors are in eps (ulps for half types),
        ``inf`` where results are non-finite; the x is where the largest occurs.
    """
    rows = []
    for label, name, params in CASES:
        if implementation == "jaxact":
            fn = getattr(jaxact, name)
        elif implementation == "jax.nn":
            fn = jax_nn_function(name, params)
            if fn is None:
                continue
        else:
            raise ValueError(f"unknown implementation {implementation!r}")
        result = errors(fn, name, case_grid(name, dtype, params), params=params, order=order)
        kinds = [result[k] for k in _KINDS[: order + 1]]
        worst = np.argmax(np.maximum.reduce(kinds))
        rows.append((label, *(float(k.max()) for k in kinds), float(result["x"][worst])))
    return rows


def _format(e: float) -> str:
    return "nan" if not math.isfinite(e) else f"{e:.3g}"


def markdown_table(dtype=np.float32) -> str:
    """The comparison table, jaxact vs jax.nn: worst errors of f, f' and f'' in eps."""
    ours = {row[0]: row for row in worst_errors("jaxact", dtype)}
    theirs = {row[0]: row for row in worst_errors("jax.nn", dtype)}
    lines = [
        "| function | jaxact f | jaxact f' | jaxact f'' | jax.nn f | jax.nn f' | jax.nn f'' |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, *ours_row in ours.values():
        cells = [_format(e) for e in ours_row[:3]]
        other = theirs.get(label)
        cells += [_format(e) for e in other[1:4]] if other else ["-"] * 3
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


TABLE_START, TABLE_END = "<!-- accuracy table: start -->", "<!-- accuracy table: end -->"


def write_table(path: str, table: str) -> None:
    """Replaces the text between the table markers of a markdown file with ``table``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    atomic_write_text(path, text[:start] + "\n" + table + "\n" + text[end:])


# --- jaxact beside jax.nn on a symlog grid (the gallery's accuracy page) ---------------


#: The keys of :func:`errors`' result that are compared.
ERROR_KINDS = ("value", "derivative")


def accuracy_grid(limit: float = 1e4, n: int = 1200) -> np.ndarray:
    """Float32 points on ``[-limit, limit]``, spread evenly on a symlog scale.

    Linear on ``[-1, 1]`` (a quarter of the points, 0 among them), logarithmic beyond.

    >>> g = accuracy_grid(1e4, n=40)
    >>> g.dtype, float(g.min()), float(g.max()), 0.0 in g
    (dtype('float32'), -10000.0, 10000.0, True)
    """
    quarter = max(n // 4, 2) | 1  # odd, so 0 is on the grid
    side = max((n - quarter) // 2, 2)
    outer = np.logspace(0.0, math.log10(limit), side)
    x = np.concatenate([-outer[::-1], np.linspace(-1.0, 1.0, quarter), outer])
    return np.unique(x.astype(np.float32))


def _worst(errors: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """The largest error (NaN counts as infinite) and where it is."""
    e = np.where(np.isnan(errors), np.inf, np.abs(np.asarray(errors, dtype=np.float64)))
    i = int(np.argmax(e))
    return {"max": float(e[i]), "at": float(x[i])}


def accuracy_data(names: Sequence[str], x: np.ndarray | None = None) -> dict:
    """Relative errors of jaxact and ``jax.nn``, from :func:`errors`.

    Args:
        names: activations to compare (registry names or aliases, each with a ``jax.nn``
            counterpart).
        x: float32 points; defaults to :func:`accuracy_grid`. The kinks of the chosen
            functions (the registry's, e.g. 0 for elu and selu) are left out.

    Returns:
        ``{"x": x, "functions": {name: {"jaxact": errs, "jax.nn": errs}}, "summary": ...}``
        keyed by canonical name, where ``errs`` maps each of :data:`ERROR_KINDS` to the
        relative errors in float32 eps and ``summary[name][impl][kind]`` is
        ``{"max": eps, "at": x}``.

    Raises:
        ValueError: for a name without a ``jax.nn`` counterpart.
    """
    impls = {}
    for name in names:
        canonical = jaxact.resolve(name)
        counterpart = jax_nn_function(canonical)
        if counterpart is None:
            raise ValueError(f"{canonical} has no jax.nn counterpart")
        impls[canonical] = {"jaxact": jaxact.info(canonical).fn, "jax.nn": counterpart}
    x = accuracy_grid() if x is None else np.asarray(x, dtype=np.float32)
    kinks = [k for canonical in impls for k in jaxact.info(canonical).breakpoints()]
    x = x[~np.isin(x, np.asarray(kinks, dtype=np.float32))]  # no derivative at a kink
    functions = {
        canonical: {
            impl: {k: np.asarray(errors(fn, canonical, x)[k]) for k in ERROR_KINDS}
            for impl, fn in pair.items()
        }
        for canonical, pair in impls.items()
    }
    summary = {
        canonical: {
            impl: {kind: _worst(errs[kind], x) for kind in ERROR_KINDS}
            for impl, errs in by_impl.items()
        }
        for canonical, by_impl in functions.items()
    }
    return {"x": x, "functions": functions, "summary": summary}


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="MARKDOWN", help="also put the table into this page")
    args = parser.parse_args(argv)
    table = markdown_table()
    print(table)
    if args.write:
        write_table(args.write, table)


if __name__ == "__main__":
    main()
