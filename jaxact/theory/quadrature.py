r"""Gaussian quadrature against the normal density, and the activation cache.

Expectations :math:`\mathbb{E}[f(\sqrt{q} z)]`, :math:`z \sim N(0, 1)`, are computed by
composite Gauss-Legendre quadrature on :math:`[-10, 10]`, split at the activation's
breakpoints (:meth:`jaxact.ActivationInfo.breakpoints`) so that no rule straddles a jump
of :math:`\phi'` (relu at :math:`\sigma_w^2 = 2` gives :math:`\chi_1 = 1` to float
precision, not the 0.91 of a Gauss-Hermite rule), and on panels of fixed width in both
:math:`z` and :math:`x = \sqrt{q} z`, which keeps smooth but sharp activations accurate at
large :math:`q` too (a 101-node Gauss-Hermite rule is 5% off for :math:`\mathbb{E}[\tanh^2]`
at :math:`q = 100`). The derivative :math:`\phi'` is ``jax.grad`` of the registry function
(its own custom rules, the surrogate gradient for ``step``), vmapped over the nodes.

An activation with hashable hyperparameters is prepared once (:func:`activation`) and its
kernels are compiled once, reused by every function of :mod:`jaxact.theory`.
"""

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxact import registry

_Z_MAX = 10.0  # |z| beyond this holds 1.5e-23 of the normal mass
_X_INNER = 8.0  # |x| <= 8, x = sqrt(q) z, is where activations bend: panels of width 1/2
_INNER_PANELS = 32
_OUTER_PANELS = 10
_LEGENDRE_T, _LEGENDRE_W = np.polynomial.legendre.leggauss(8)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
K = 64  # values per kernel call (and points per bracketing pass)


def default_dtype() -> jnp.dtype:
    """The default float dtype: float32, or float64 under ``jax_enable_x64``."""
    return jnp.dtype(jnp.result_type(float))


def _panels(lo: Array, hi: Array, count: int) -> tuple[Array, Array]:
    """Gauss-Legendre nodes and weights (against dz) on each [lo, hi] cut into ``count`` panels."""
    t, w = jnp.asarray(_LEGENDRE_T, lo.dtype), jnp.asarray(_LEGENDRE_W, lo.dtype)
    width = (hi - lo) / count
    mids = lo[:, None] + width[:, None] * (jnp.arange(count, dtype=lo.dtype) + 0.5)
    z = mids[:, :, None] + (width / 2)[:, None, None] * t
    weights = jnp.broadcast_to((width / 2)[:, None, None] * w, z.shape)
    return z.reshape(-1), weights.reshape(-1)


def _rule(scale: Array, cuts: Array) -> tuple[Array, Array]:
    """Nodes z and weights w with sum(w f(z)) ~ E[f(z)], z ~ N(0, 1).

    ``[-10, 10]`` is split at the sorted ``cuts`` (breakpoints, in z); each piece is cut again
    where ``|x| = |scale z|`` crosses 8, and into panels of width at most 1 in z and
    1/2 in x (where activations bend), with 8 Gauss-Legendre nodes each. Nothing is
    sorted: pieces are clipped to the bands, and an empty piece has weight 0.
    """
    dtype = scale.dtype
    zmax = jnp.asarray(_Z_MAX, dtype)
    r = jnp.minimum(_X_INNER / jnp.where(scale > 0, scale, 1.0), zmax)
    cuts = jnp.clip(cuts.astype(dtype), -zmax, zmax)
    starts = jnp.concatenate([-zmax[None], cuts])
    ends = jnp.concatenate([cuts, zmax[None]])
    zs, ws = [], []
    for band_lo, band_hi, count in (
        (-zmax, -r, _OUTER_PANELS),
        (-r, r, _INNER_PANELS),
        (r, zmax, _OUTER_PANELS),
    ):
        z, w = _panels(jnp.clip(starts, band_lo, band_hi), jnp.clip(ends, band_lo, band_hi), count)
        zs.append(z)
        ws.append(w)
    z, w = jnp.concatenate(zs), jnp.concatenate(ws)
    return z, w * (_INV_SQRT_2PI * jnp.exp(-jnp.square(z) / 2))


def _normal_rule(q: Array, breakpoints: tuple[float, ...]) -> tuple[Array, Array]:
    """The rule for E[f(sqrt(q) z)], split at the breakpoints of f (given in x, sorted)."""
    root = jnp.sqrt(jnp.where(q > 0, q, 1.0))
    k = jnp.asarray(breakpoints, q.dtype).reshape(-1)
    cuts_z = jnp.where(q > 0, k / root, jnp.sign(k) * _Z_MAX)
    return _rule(jnp.sqrt(q), cuts_z)


# --- the activation and its derivative -------------------------------------------


class Activation(NamedTuple):
    """An activation prepared for quadrature."""

    name: str
    fn: Callable[[Array], Array]  # phi, vectorised over a 1-d array
    grad: Callable[[Array], Array]  # phi' (jax.grad of the registry function), vectorised
    breakpoints: tuple[float, ...]  # in x, sorted
    cached: bool  # built from hashable params: its kernels are compiled once and reused


def check_sigma(label: str, value: Any) -> None:
    """A clear error for a negative or non-finite concrete standard deviation or variance."""
    if isinstance(value, jax.core.Tracer):
        return
    try:
        v = float(value)
    except TypeError:
        raise TypeError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{label} must be finite, got {value}")
    if v < 0:
        raise ValueError(f"{label} is a standard deviation (or variance) and must be >= 0, got {v}")


def _cache_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The params as a hashable key, or None where one is an array or traced."""
    items = []
    for key, value in sorted(params.items()):
        value = registry.hashable(value)
        if not isinstance(value, int | float | str | bool | None):
            return None
        items.append((key, value))
    return tuple(items)


def activation(name: str, params: dict[str, Any]) -> Activation:
    """The activation, its derivative and breakpoints; cached for hashable params."""
    entry = registry.info(name)
    if not entry.elementwise:
        raise ValueError(
            f"{entry.name} is not elementwise (it mixes the entries of its input), so the "
            "mean-field theory of jaxact.theory, which follows each unit's phi(h) alone, "
            "does not apply to it"
        )
    registry.check_params(entry.name, params)
    if entry.name == "rrelu" and params.get("key") is not None:
        raise ValueError(
            "rrelu with a key draws a random slope for every element; the mean-field theory "
            "follows one deterministic phi, its mean slope: leave key=None"
        )
    for key, value in params.items():
        if not isinstance(value, str) and np.ndim(value) > 0:
            raise ValueError(
                f"{entry.name}'s {key} has shape {np.shape(value)}, but the mean-field theory "
                "follows one phi shared by every unit: give a scalar"
            )
    cache_key = _cache_key(params)
    if cache_key is not None:
        return _cached_activation(entry.name, cache_key)
    return _build_activation(entry.name, params, cached=False)


@functools.lru_cache(maxsize=512)
def _cached_activation(name: str, cache_key: tuple[tuple[str, Any], ...]) -> Activation:
    return _build_activation(name, dict(cache_key), cached=True)


def _build_activation(name: str, params: dict[str, Any], cached: bool) -> Activation:
    entry = registry.info(name)
    full = {**entry.params, **params}
    try:
        found = list(entry.breakpoints(**params))
        if entry.name == "step" and full["surrogate"] == "straight_through":
            # The straight-through surrogate phi' jumps at threshold +- 1/sharpness too.
            th, k = float(full["threshold"]), float(full["sharpness"])
            found += [th - 1 / k, th + 1 / k]
    except jax.errors.ConcretizationTypeError as error:
        raise ValueError(
            f"{entry.name}'s breakpoints depend on its hyperparameters, which must then be "
            f"concrete numbers, not traced ({sorted(params)})"
        ) from error
    breakpoints = tuple(sorted({float(k) for k in found if math.isfinite(float(k))}))

    def scalar(x: Array) -> Array:
        y: Array = entry.fn(x, **params)
        return y

    return Activation(entry.name, jax.vmap(scalar), jax.vmap(jax.grad(scalar)), breakpoints, cached)


# --- the kernels: E[phi^2], E[phi'^2], d/dq E[phi^2], E[phi]; and over pairs -------


def _moments_raw(act: Activation, q: Array) -> tuple[Array, Array, Array, Array]:
    def one(qi: Array) -> tuple[Array, Array, Array, Array]:
        z, w = _normal_rule(qi, act.breakpoints)
        x = jnp.sqrt(qi) * z
        phi2 = jnp.square(act.fn(x))
        a = jnp.sum(w * phi2)
        b = jnp.sum(w * jnp.square(act.grad(x)))
        # d/dq E[f(sqrt(q) z)] = E[f(sqrt(q) z) (z^2 - 1)] / (2q): no phi' (exact for step).
        da = jnp.sum(w * phi2 * (jnp.square(z) - 1)) / (2 * jnp.where(qi > 0, qi, 1.0))
        return a, b, da, jnp.sum(w * act.fn(x))

    out: tuple[Array, Array, Array, Array] = jax.vmap(one)(q)
    return out


_moments_jit = jax.jit(_moments_raw, static_argnums=0)


def _in_chunks(
    kernel: Callable[..., tuple[Array, ...]], values: Array, pad: float, *args: Any
) -> tuple[Array, ...] | None:
    """``kernel(*args, chunk)`` over ``values`` (any shape) in chunks of K, padded with ``pad``.

    Every call sees K values, so a jitted kernel compiles once per activation.
    """
    flat = values.reshape(-1)
    n = flat.shape[0]
    padded = jnp.concatenate([flat, jnp.full(-n % K, pad, flat.dtype)]) if n % K else flat
    parts = [kernel(*args, padded[i : i + K]) for i in range(0, padded.shape[0], K)]
    if not parts:  # no values
        return None
    return tuple(
        jnp.concatenate([p[j] for p in parts])[:n].reshape(values.shape)
        for j in range(len(parts[0]))
    )


def moments(act: Activation, q: ArrayLike) -> tuple[Array, Array, Array, Array]:
    """(E[phi^2], E[phi'^2], d/dq E[phi^2], E[phi]) at variances q (any shape)."""
    q = jnp.asarray(q)
    if not jnp.issubdtype(q.dtype, jnp.floating):
        q = q.astype(default_dtype())
    out = _in_chunks(_moments_jit if act.cached else _moments_raw, q, 1.0, act)
    if out is None:
        return q, q, q, q
    a, b, da, mean = out
    return a, b, da, mean


def _pair_raw(act: Activation, q: Array, c: Array) -> tuple[Array, Array]:
    """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]), (u1, u2) ~ N(0, q [[1, c], [c, 1]]), c (K,)."""
    root = jnp.sqrt(q)
    z1, w1 = _normal_rule(q, act.breakpoints)
    u1 = root * z1
    f1, g1 = act.fn(u1), act.grad(u1)
    breakpoints = jnp.asarray(act.breakpoints, q.dtype).reshape(-1)

    def one(ci: Array) -> tuple[Array, Array]:
        ci = jnp.clip(ci, -1.0, 1.0)
        scale = root * jnp.sqrt(jnp.maximum(1 - jnp.square(ci), 0.0))  # u2 = c u1 + scale z2
        safe = jnp.where(scale > 0, scale, 1.0)

        def inner(u: Array) -> tuple[Array, Array]:
            shift = ci * u
            # Split the z2 rule where u2 crosses a breakpoint.
            z2, w2 = _rule(scale, jnp.where(scale > 0, (breakpoints - shift) / safe, 0.0))
            u2 = shift + scale * z2
            f2, g2 = act.fn(u2), act.grad(u2)
            at = jnp.reshape(shift, (1,))
            degenerate = act.fn(at)[0], act.grad(at)[0]
            return (
                jnp.where(scale > 0, jnp.sum(w2 * f2), degenerate[0]),
                jnp.where(scale > 0, jnp.sum(w2 * g2), degenerate[1]),
            )

        f2, g2 = jax.vmap(inner)(u1)
        return jnp.sum(w1 * f1 * f2), jnp.sum(w1 * g1 * g2)

    out: tuple[Array, Array] = jax.lax.map(one, c)
    return out


_pair_jit = jax.jit(_pair_raw, static_argnums=0)


def pair_moments(act: Activation, q: Array, c: ArrayLike) -> tuple[Array, Array]:
    """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) at variance q and correlations c (any shape)."""
    c = jnp.asarray(c, q.dtype)
    out = _in_chunks(_pair_jit if act.cached else _pair_raw, c, 0.0, act, q)
    if out is None:
        return c, c
    f, g = out
    return f, g


def is_traced(*values: Any) -> bool:
    """True where any leaf of ``values`` is known only when a transformed program runs."""
    leaves = jax.tree_util.tree_leaves(values)
    return any(isinstance(v, jax.core.Tracer) for v in leaves)


def as_output(x: Array, *inputs: Any) -> float | Array:
    """A Python float for concrete scalar results, else the array."""
    if is_traced(x, *inputs) or np.ndim(x) != 0:
        return x
    return float(x)
