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
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import mpmath
import numpy as np

import jaxact

DPS = 50
TINY = 2.0**-100  # below this true magnitude, absolute error is used

# Points where a function or its derivative is not smooth: the grid skips them.
KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,),
    "leaky_relu": (0.0,),
    "relu6": (0.0, 6.0),
    "hard_tanh": (-1.0, 1.0),
    "hard_sigmoid": (-3.0, 3.0),
    "hard_silu": (-3.0, 3.0),
    "sparse_plus": (-1.0, 1.0),
    "sparse_sigmoid": (-1.0, 1.0),
    "elu": (0.0,),
    "selu": (0.0,),
    "celu": (0.0,),
}

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
    """pieces: (upper bound, value) in increasing order; the first with x < bound wins."""
    for bound, value in pieces:
        if x < bound:
            return value(x)
    return default(x)


_ZERO = lambda x, **_: mpmath.mpf(0)
_ONE = lambda x, **_: mpmath.mpf(1)

# name -> (value(x, **params), derivative(x, **params), default params)
REFERENCES: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]] = {
    "sigmoid": (
        lambda x, gain=1: _sig(gain * x),
        lambda x, gain=1: gain * _sig_slope(gain * x),
        {"gain": 1.0},
    ),
    "tanh": (mpmath.tanh, lambda x: mpmath.sech(x) ** 2, {}),
    "softplus": (
        lambda x, beta=1: _softplus(beta * x) / beta,
        lambda x, beta=1: _sig(beta * x),
        {"beta": 1.0},
    ),
    "log_sigmoid": (lambda x: -_softplus(-x), lambda x: _sig(-x), {}),
    "silu": (
        lambda x, beta=1: x * _sig(beta * x),
        lambda x, beta=1: _sig(beta * x) + beta * x * _sig_slope(beta * x),
        {"beta": 1.0},
    ),
    "mish": (_mish_value, _mish_slope, {}),
    "gelu": (_gelu_value, _gelu_slope, {"approximate": True}),
    "elu": (
        lambda x, alpha=1: x if x > 0 else alpha * mpmath.expm1(x),
        lambda x, alpha=1: mpmath.mpf(1) if x > 0 else alpha * mpmath.exp(x),
        {"alpha": 1.0},
    ),
    "selu": (
        lambda x: _SELU_SCALE * (x if x > 0 else _SELU_ALPHA * mpmath.expm1(x)),
        lambda x: _SELU_SCALE * (1 if x > 0 else _SELU_ALPHA * mpmath.exp(x)),
        {},
    ),
    "celu": (
        lambda x, alpha=1: x if x > 0 else alpha * mpmath.expm1(x / alpha),
        lambda x, alpha=1: mpmath.mpf(1) if x > 0 else mpmath.exp(x / alpha),
        {"alpha": 1.0},
    ),
    "soft_sign": (lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2, {}),
    "squareplus": (_squareplus_value, _squareplus_slope, {"b": 4.0}),
    "sparse_plus": (
        lambda x: _piecewise(x, [(-1, _ZERO), (1, lambda x: (x + 1) ** 2 / 4)], lambda x: x),
        lambda x: _piecewise(x, [(-1, _ZERO), (1, lambda x: (x + 1) / 2)], _ONE),
        {},
    ),
    "sparse_sigmoid": (
        lambda x: _piecewise(x, [(-1, _ZERO), (1, lambda x: (x + 1) / 2)], _ONE),
        lambda x: _piecewise(x, [(-1, _ZERO), (1, lambda x: mpmath.mpf(0.5))], _ZERO),
        {},
    ),
    "exponential": (mpmath.exp, mpmath.exp, {}),
    "tanh_shrink": (_tanh_shrink_value, lambda x: mpmath.tanh(x) ** 2, {}),
    "leaky_relu": (
        lambda x, negative_slope=0.01: x if x >= 0 else negative_slope * x,
        lambda x, negative_slope=0.01: mpmath.mpf(1) if x >= 0 else negative_slope,
        {"negative_slope": 0.01},
    ),
    "relu": (lambda x: max(x, 0), lambda x: mpmath.mpf(x > 0), {}),
    "relu6": (
        lambda x: min(max(x, 0), 6),
        lambda x: mpmath.mpf(0 < x < 6),
        {},
    ),
    "hard_tanh": (lambda x: min(max(x, -1), 1), lambda x: mpmath.mpf(-1 < x < 1), {}),
    "hard_sigmoid": (
        lambda x: min(max(x + 3, 0), 6) / 6,
        lambda x: mpmath.mpf(-3 < x < 3) / 6,
        {},
    ),
    "hard_silu": (
        lambda x: x * min(max(x + 3, 0), 6) / 6,
        lambda x: _piecewise(x, [(-3, _ZERO), (3, lambda x: (2 * x + 3) / 6)], _ONE),
        {},
    ),
    "identity": (lambda x: x, _ONE, {}),
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

# jax.nn's spelling of the parameters it shares with jaxact (None: jax.nn lacks it).
_JAX_NN_PARAMS = {"alpha": "alpha", "b": "b", "approximate": "approximate"}


def jax_nn_function(name: str, params: Mapping[str, Any]) -> Callable | None:
    """jax.nn's function for a case, or None if jax.nn has no such function or parameter."""
    fn = getattr(jax.nn, name, None)
    if fn is None or any(p not in _JAX_NN_PARAMS for p in params):
        return None
    return fn


# --- the grid ------------------------------------------------------------------


def grid(dtype=np.float32, dense: int = 1200) -> np.ndarray:
    """The test grid: the whole finite range, log-spaced in both signs, plus dense parts.

    Args:
        dtype: the dtype whose range is covered (float64 uses the float32 grid).
        dense: number of points spread uniformly on [-40, 40]; a tenth of it
            lies within 1e-2 of each special point (derivative zeros, switch-overs).

    Returns:
        A sorted 1-D array of distinct finite values of ``dtype``.
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
    return points.astype(dtype)


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
    value, slope, _ = REFERENCES[name]
    kwargs = dict(params)
    x = np.frombuffer(x_bytes, dtype=np.float64)
    out = np.empty((4, x.size))
    with mpmath.workdps(DPS):
        for i, xi in enumerate(x):
            m = mpmath.mpf(float(xi))
            out[0, i], out[1, i] = _split(value(m, **kwargs))
            out[2, i], out[3, i] = _split(slope(m, **kwargs))
    return tuple(out)


def reference(name: str, x: np.ndarray, params: Mapping[str, Any] | None = None, dtype=None):
    """True value and derivative at x as double-double float64 pairs.

    Args:
        name: a key of :data:`REFERENCES`.
        x: the points (any float dtype; converted to float64 exactly).
        params: the function's parameters (numbers are rounded to the compute
            dtype first, as the function receives them).
        dtype: the evaluation dtype (default: x's).

    Returns:
        ``(value_hi, value_lo, slope_hi, slope_lo)``, float64 arrays of x's size.
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


def _error(y: np.ndarray, hi: np.ndarray, lo: np.ndarray, dtype) -> np.ndarray:
    """Error of y against hi + lo: eps units (float32/64), ulps (half types); inf if non-finite."""
    dtype = np.dtype(dtype)
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        truth_in_dtype = hi.astype(dtype).astype(np.float64)
        diff = np.abs((y - hi) - lo)
        if dtype in (np.float32, np.float64):
            eps = float(jnp.finfo(dtype).eps)
            err = diff / np.maximum(np.abs(hi), TINY) / eps
            err = np.where((np.abs(hi) < TINY) & (diff <= TINY), 0.0, err)
        else:
            err = diff / _ulp(hi, dtype)
            if dtype.itemsize == 2 and jnp.finfo(dtype).maxexp > 100:  # bfloat16: float32's range
                err = np.where((np.abs(hi) < TINY) & (diff <= TINY), 0.0, err)
    overflow = np.isinf(truth_in_dtype)
    err = np.where(overflow, np.where(y == truth_in_dtype, 0.0, np.inf), err)
    return np.where(np.isfinite(y) | overflow, err, np.inf)


@functools.lru_cache(maxsize=128)
def _compiled(fn: Callable, params: tuple) -> tuple[Callable, Callable]:
    kwargs = dict(params)
    f = lambda v: fn(v, **kwargs)
    return jax.jit(f), jax.jit(jax.vmap(jax.grad(f)))


def evaluate(fn: Callable, x: np.ndarray, params: Mapping[str, Any] | None = None):
    """fn and its derivative at x, each in one jitted call (jax.vmap(jax.grad(fn)))."""
    value, slope = _compiled(fn, tuple(sorted((params or {}).items())))
    xj = jnp.asarray(x)
    return np.asarray(value(xj)), np.asarray(slope(xj))


def errors(fn: Callable, name: str, x: np.ndarray, *, params: Mapping[str, Any] | None = None):
    """Errors of ``fn`` (value and jax.grad) at x against the reference for ``name``.

    Args:
        fn: the implementation, called as ``fn(x, **params)``.
        name: the activation in :data:`REFERENCES`.
        x: the points, of the dtype to evaluate in.
        params: keyword parameters for ``fn`` and the reference.

    Returns:
        A dict with ``value`` and ``derivative``: float64 arrays of errors in eps
        of x's dtype (float32, float64) or ulps (float16, bfloat16), ``inf`` where
        the result is NaN or inf and the truth is finite in x's dtype;
        ``value_nonfinite`` and ``derivative_nonfinite``, boolean arrays of those
        points; and ``x``, ``y``, ``dy``, the inputs and results.
    """
    x = np.asarray(x)
    params = dict(params or {})
    hi, lo, dhi, dlo = reference(name, x, params)
    y, dy = evaluate(fn, x, params)
    value_err = _error(y, hi, lo, x.dtype)
    slope_err = _error(dy, dhi, dlo, x.dtype)
    return {
        "value": value_err,
        "derivative": slope_err,
        "value_nonfinite": ~np.isfinite(y) & np.isfinite(_as(hi, x.dtype)),
        "derivative_nonfinite": ~np.isfinite(dy) & np.isfinite(_as(dhi, x.dtype)),
        "x": x,
        "y": y,
        "dy": dy,
    }


def case_grid(name: str, dtype=np.float32, **grid_kwargs) -> np.ndarray:
    """The grid without the kinks of ``name`` (where its derivative is undefined).

    Subnormal inputs next to a kink at 0 are dropped too: XLA on CPU flushes
    subnormals to zero, so they are evaluated at the kink.
    """
    x = grid(dtype, **grid_kwargs)
    tiny = float(jnp.finfo(np.float32 if x.dtype == np.float64 else x.dtype).smallest_normal)
    kinks = np.asarray(KINKS.get(name, ()), dtype=np.float64)
    near = np.abs(x.astype(np.float64)[:, None] - kinks[None, :]) < tiny
    return x[~near.any(axis=1)]


def worst_errors(implementation: str = "jaxact", dtype=np.float32) -> list[tuple]:
    """The worst errors of every covered case on the grid.

    Args:
        implementation: ``"jaxact"`` or ``"jax.nn"`` (cases jax.nn lacks are skipped).
        dtype: the evaluation dtype.

    Returns:
        Rows ``(label, worst value error, worst derivative error, x at the worst)``;
        errors are in eps (ulps for half types), ``inf`` where results are non-finite;
        the x is where the larger of the two occurs.
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
        result = errors(fn, name, case_grid(name, dtype), params=params)
        value, slope = result["value"], result["derivative"]
        worst = np.argmax(np.maximum(value, slope))
        rows.append((label, float(value.max()), float(slope.max()), float(result["x"][worst])))
    return rows


def _format(e: float) -> str:
    return "nan" if not math.isfinite(e) else f"{e:.3g}"


def markdown_table(dtype=np.float32) -> str:
    """The comparison table, jaxact vs jax.nn, worst errors in eps."""
    ours = {row[0]: row for row in worst_errors("jaxact", dtype)}
    theirs = {row[0]: row for row in worst_errors("jax.nn", dtype)}
    lines = [
        "| function | jaxact value | jaxact derivative | jax.nn value | jax.nn derivative |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, value, slope, _ in ours.values():
        other = theirs.get(label)
        nn = (_format(other[1]), _format(other[2])) if other else ("-", "-")
        lines.append(f"| {label} | {_format(value)} | {_format(slope)} | {nn[0]} | {nn[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
