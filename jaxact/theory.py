r"""Mean-field theory of signal propagation, and the initialisation it prescribes.

A wide fully connected network with weights :math:`W_{ij} \sim N(0, \sigma_w^2/N)` and
biases :math:`b_i \sim N(0, \sigma_b^2)` propagates the variance :math:`q^l` of its
pre-activations :math:`h^l = W^l \phi(h^{l-1}) + b^l` through the *length map*

.. math::
    q^{l+1} = \mathcal{L}(q^l) = \sigma_w^2\,\mathbb{E}_{z}\!\left[\phi(\sqrt{q^l} z)^2\right]
    + \sigma_b^2, \qquad z \sim N(0, 1),

to a fixed point :math:`q^*`, and its squared gradient norms, layer to layer, by

.. math::
    \chi(q) = \sigma_w^2\,\mathbb{E}_{z}\!\left[\phi'(\sqrt{q} z)^2\right], \qquad
    \chi_1 = \chi(q^*)

(Poole et al., 2016; Schoenholz et al., 2017). :math:`\chi_1 < 1` makes gradients
vanish with depth, :math:`\chi_1 > 1` explode; :math:`\chi_1 = 1` is *critical*.
:func:`gain` finds the critical :math:`\sigma_w` for a given :math:`\sigma_b`, and
:func:`critical_init` is the matching initializer for a Flax ``Dense`` layer.

Expectations are computed by composite Gauss–Legendre quadrature against the normal
density, split at the activation's kinks (:meth:`jaxact.ActivationInfo.breakpoints`),
so that no rule straddles a jump of :math:`\phi'` (relu at :math:`\sigma_w^2 = 2` gives
:math:`\chi_1 = 1` to float precision, not the 0.91 of a Gauss–Hermite rule), and on
panels of fixed width in both :math:`z` and :math:`x = \sqrt{q} z`, which keeps smooth
but sharp activations accurate at large :math:`q` too (a 101-node Gauss–Hermite rule is
5% off for :math:`\mathbb{E}[\tanh^2]` at :math:`q = 100`). The derivative
:math:`\phi'` is ``jax.grad`` of the registry function (its own custom rules, the
surrogate gradient for ``step``), vmapped over the nodes.

Everything up to :func:`depth_scales` is pure JAX: jittable, and differentiable in
``q``, ``sigma_w``, ``sigma_b`` and numeric hyperparameters (fixed points by the
implicit function theorem). Called with concrete numbers they return Python floats and
compile one quadrature kernel per activation, reused by every function here.
:func:`gain` searches for a root and raises where there is none, so it needs concrete
numbers.

>>> import jaxact
>>> round(jaxact.gain("relu") ** 2, 4)
2.0
>>> round(jaxact.theory.chi1("relu", sigma_w=2**0.5), 4)
1.0
"""

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxact import registry

# --- quadrature -----------------------------------------------------------------

_Z_MAX = 10.0  # |z| beyond this holds 1.5e-23 of the normal mass
_X_INNER = 8.0  # |x| <= 8, x = sqrt(q) z, is where activations bend: panels of width 1/2
_INNER_PANELS = 32
_OUTER_PANELS = 10
_LEGENDRE_T, _LEGENDRE_W = np.polynomial.legendre.leggauss(8)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_K = 64  # q values per kernel call
_Q_MAX = 1e8  # a fixed point above this counts as infinite
_Q_MIN = 1e-5  # gain: critical points below this count as q* = 0


def _dtype() -> jnp.dtype:
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

    ``[-10, 10]`` is split at the sorted ``cuts`` (kinks, in z); each piece is cut again
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


def _normal_rule(q: Array, kinks: tuple[float, ...]) -> tuple[Array, Array]:
    """The rule for E[f(sqrt(q) z)], split at the kinks of f (given in x, sorted)."""
    root = jnp.sqrt(jnp.where(q > 0, q, 1.0))
    k = jnp.asarray(kinks, q.dtype).reshape(-1)
    kinks_z = jnp.where(q > 0, k / root, jnp.sign(k) * _Z_MAX)
    return _rule(jnp.sqrt(q), kinks_z)


# --- the activation and its derivative -------------------------------------------


class _Activation(NamedTuple):
    name: str
    fn: Callable[[Array], Array]  # phi, vectorised over a 1-d array
    grad: Callable[[Array], Array]  # phi' (jax.grad of the registry function), vectorised
    kinks: tuple[float, ...]  # in x, sorted
    cached: bool  # built from hashable params: its kernels are compiled once and reused


def _check_sigma(label: str, value: Any) -> None:
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


def _freeze(params: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The params as a hashable key, or None where one is an array or traced."""
    items = []
    for key, value in sorted(params.items()):
        if isinstance(value, jax.core.Tracer):
            return None
        if isinstance(value, np.ndarray | jax.Array | np.generic) and np.ndim(value) == 0:
            value = value.item()
        if not isinstance(value, int | float | str | bool | None):
            return None
        items.append((key, value))
    return tuple(items)


def _activation(name: str, params: dict[str, Any]) -> _Activation:
    """The activation, its derivative and kinks; cached for hashable params."""
    entry = registry.info(name)
    if not entry.elementwise:
        raise ValueError(
            f"{entry.name} is not elementwise (it mixes the entries of its input), so the "
            "mean-field theory of jaxact.theory, which follows each unit's phi(h) alone, "
            "does not apply to it"
        )
    registry.check_params(entry.name, params)
    frozen = _freeze(params)
    if frozen is not None:
        return _cached_activation(entry.name, frozen)
    return _build_activation(entry.name, params, cached=False)


@functools.lru_cache(maxsize=512)
def _cached_activation(name: str, frozen: tuple[tuple[str, Any], ...]) -> _Activation:
    return _build_activation(name, dict(frozen), cached=True)


def _build_activation(name: str, params: dict[str, Any], cached: bool) -> _Activation:
    entry = registry.info(name)
    if entry.name == "rrelu" and params.get("key") is not None:
        raise ValueError("rrelu with a key is random; the theory uses its mean slope (key=None)")
    full = {**entry.params, **params}
    try:
        kinks = list(entry.breakpoints(**params))
        if entry.name == "step" and full["surrogate"] == "straight_through":
            # The straight-through surrogate phi' jumps at threshold +- 1/sharpness too.
            th, k = float(full["threshold"]), float(full["sharpness"])
            kinks += [th - 1 / k, th + 1 / k]
    except jax.errors.ConcretizationTypeError as error:
        raise ValueError(
            f"{entry.name}'s kinks depend on its hyperparameters, which must then be "
            f"concrete numbers, not traced ({sorted(params)})"
        ) from error
    kinks = tuple(sorted({float(k) for k in kinks if math.isfinite(float(k))}))
    scalar = lambda x: entry.fn(x, **params)
    return _Activation(entry.name, jax.vmap(scalar), jax.vmap(jax.grad(scalar)), kinks, cached)


# --- the kernel: E[phi^2], E[phi'^2] and d/dq E[phi^2] on K values of q -------------


def _moments_raw(act: _Activation, q: Array) -> tuple[Array, Array, Array]:
    def one(qi):
        z, w = _normal_rule(qi, act.kinks)
        x = jnp.sqrt(qi) * z
        phi2 = jnp.square(act.fn(x))
        a = jnp.sum(w * phi2)
        b = jnp.sum(w * jnp.square(act.grad(x)))
        # d/dq E[f(sqrt(q) z)] = E[f(sqrt(q) z) (z^2 - 1)] / (2q): no phi' (exact for step).
        da = jnp.sum(w * phi2 * (jnp.square(z) - 1)) / (2 * jnp.where(qi > 0, qi, 1.0))
        return a, b, da, jnp.sum(w * act.fn(x))

    return jax.vmap(one)(q)


_moments_jit = jax.jit(_moments_raw, static_argnums=0)


def _moments(act: _Activation, q: ArrayLike) -> tuple[Array, Array, Array, Array]:
    """(E[phi^2], E[phi'^2], d/dq E[phi^2], E[phi]) at variances q (any shape), in chunks of K."""
    q = jnp.asarray(q)
    if not jnp.issubdtype(q.dtype, jnp.floating):
        q = q.astype(_dtype())
    flat = q.reshape(-1)
    n = flat.shape[0]
    padded = jnp.concatenate([flat, jnp.ones(-n % _K, flat.dtype)]) if n % _K else flat
    kernel = _moments_jit if act.cached else _moments_raw
    parts = [kernel(act, padded[i : i + _K]) for i in range(0, padded.shape[0], _K)]
    return tuple(
        jnp.concatenate([p[j] for p in parts])[:n].reshape(q.shape) if parts else q
        for j in range(4)
    )


def _traced(*values: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(values)
    return any(isinstance(v, jax.core.Tracer) for v in leaves)


def _out(x: Array, *inputs: Any) -> float | Array:
    """A Python float for concrete scalar results, else the array."""
    if _traced(x, *inputs) or np.ndim(x) != 0:
        return x
    return float(x)


def _as_q(q: ArrayLike) -> Array:
    if not _traced(q) and np.size(q) and float(np.min(np.asarray(q))) < 0:
        raise ValueError(f"q is a variance and must be >= 0, got {q}")
    q = jnp.asarray(q)
    return q if jnp.issubdtype(q.dtype, jnp.floating) else q.astype(_dtype())


def _squares(sigma_w, sigma_b) -> tuple[Array, Array]:
    dtype = _dtype()
    return jnp.square(jnp.asarray(sigma_w, dtype)), jnp.square(jnp.asarray(sigma_b, dtype))


# --- public maps --------------------------------------------------------------------


def length_map(
    name: str, q: ArrayLike, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, **params: Any
) -> Array:
    r"""The variance of the next layer's pre-activations, given this layer's.

    .. math::
        \mathcal{L}(q) = \sigma_w^2\,\mathbb{E}\!\left[\phi(\sqrt{q} z)^2\right] + \sigma_b^2

    Args:
        name: a registry activation (elementwise).
        q: pre-activation variance(s), any shape, >= 0.
        sigma_w: weight scale, weights :math:`\sim N(0, \sigma_w^2/\mathrm{fan\_in})`.
        sigma_b: bias standard deviation.
        **params: the activation's hyperparameters.

    Returns:
        An array of q's shape.

    Raises:
        ValueError: for an unknown activation or parameter, a non-elementwise activation,
            a negative ``q``, ``sigma_w`` or ``sigma_b``, or a non-finite one.

    Examples:
        >>> import jaxact
        >>> round(float(jaxact.theory.length_map("relu", 3.0, sigma_w=2**0.5)), 5)  # He keeps q
        3.0
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    act = _activation(name, params)
    q = _as_q(q)
    sw2, sb2 = _squares(sigma_w, sigma_b)
    return (sw2 * _moments(act, q)[0] + sb2).astype(q.dtype)


def chi(name: str, q: ArrayLike, *, sigma_w: ArrayLike, **params: Any) -> Array:
    r"""The factor by which squared gradient norms grow per layer at pre-activation variance q.

    .. math::
        \chi(q) = \sigma_w^2\,\mathbb{E}\!\left[\phi'(\sqrt{q} z)^2\right]

    Args:
        name: a registry activation (elementwise).
        q: pre-activation variance(s), any shape, >= 0.
        sigma_w: weight scale.
        **params: the activation's hyperparameters.

    Returns:
        An array of q's shape.

    Examples:
        >>> import jaxact
        >>> float(jaxact.theory.chi("relu", 1.0, sigma_w=1.0))  # E[relu'^2] = 1/2
        0.5
    """
    _check_sigma("sigma_w", sigma_w)
    act = _activation(name, params)
    q = _as_q(q)
    sw2, _ = _squares(sigma_w, 0.0)
    return (sw2 * _moments(act, q)[1]).astype(q.dtype)


# --- fixed points ---------------------------------------------------------------------


@jax.jit
def _first_flip(signs: Array, s0: Array) -> tuple[Array, Array]:
    """Index of the first entry whose sign differs from s0, and whether there is one."""
    flipped = signs != s0
    return jnp.argmax(flipped), jnp.any(flipped)


def _fixed_point_of(act: _Activation, sigma_w, sigma_b, q0) -> Array:
    """The fixed point the length map reaches from q0, walking the way it moves."""
    dtype = _dtype()
    sw2, sb2 = _squares(sigma_w, sigma_b)
    q0 = jnp.asarray(q0, dtype)

    def signs(q):
        r = sw2 * _moments(act, q)[0] + sb2 - q
        # Within rounding of L(q) = q (relu at sigma_w^2 = 2 maps every q to itself): a root.
        return jnp.where(jnp.abs(r) <= 2e-6 * (q + sb2), 0.0, jnp.sign(r))

    ratio = jnp.asarray(1.4, dtype)
    steps = jnp.arange(1, _K, dtype=dtype)
    first = signs(jnp.concatenate([q0[None], q0 * ratio**steps]))
    s0, up_signs = first[0], first[1:]
    down = q0 * ratio**-steps
    down_signs = signs(down)
    grid = jnp.where(s0 > 0, q0 * ratio**steps, down)
    grid_signs = jnp.where(s0 > 0, up_signs, down_signs)
    index, found = _first_flip(grid_signs, s0)
    near = jnp.where(index == 0, q0, grid[jnp.maximum(index - 1, 0)])
    far = grid[index]
    exact = grid_signs[index] == 0
    near = jnp.where(exact, far, near)
    fractions = jnp.arange(1, _K + 1, dtype=dtype) / (_K + 1)
    for _ in range(5):  # each pass narrows the bracket 65-fold
        points = near + (far - near) * fractions
        point_signs = signs(points)
        i, hit = _first_flip(point_signs, s0)
        new_far = jnp.where(hit, points[i], far)
        new_near = jnp.where(
            hit, jnp.where(i == 0, near, points[jnp.maximum(i - 1, 0)]), points[-1]
        )
        on_root = hit & (point_signs[i] == 0)
        near, far = jnp.where(on_root, new_far, new_near), new_far
    root = (near + far) / 2
    result = jnp.where(s0 == 0, q0, jnp.where(found, root, jnp.where(s0 > 0, jnp.inf, 0.0)))
    result = jnp.where(result > _Q_MAX, jnp.inf, result)
    if _traced(sigma_w, sigma_b, q0) or not act.cached:
        # One Newton step with the bracketed root held fixed: the same value, and the
        # derivative dq*/dtheta = (dL/dtheta) / (1 - dL/dq) of the implicit function theorem.
        fixed = jax.lax.stop_gradient(jnp.where(jnp.isfinite(result), result, 1.0))
        a, _, da, _ = _moments(act, fixed)
        slope = sw2 * da
        step = (sw2 * a + sb2 - fixed) / jnp.where(jnp.abs(1 - slope) > 1e-6, 1 - slope, 1.0)
        usable = jnp.isfinite(result) & (result > 0) & (jnp.abs(1 - slope) > 1e-6)
        result = jnp.where(usable, fixed + step - jax.lax.stop_gradient(step), result)
    return result


def fixed_point(
    name: str,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> float | Array:
    r"""The fixed point :math:`q^* = \mathcal{L}(q^*)` that the length map reaches from ``q0``.

    Found by walking from ``q0`` the way the map moves (up if :math:`\mathcal{L}(q_0) > q_0`)
    to the first root on a geometric grid, then narrowing the bracket. ``inf`` where the
    variance grows past :math:`10^8`, 0 where it dies out; ``q0`` itself where the map
    leaves every :math:`q` in place (relu at :math:`\sigma_w^2 = 2`, :math:`\sigma_b = 0`).
    Differentiable (implicit function theorem) where traced.

    Args:
        name: a registry activation (elementwise).
        sigma_w: weight scale.
        sigma_b: bias standard deviation.
        q0: the input variance the iteration starts from.
        **params: the activation's hyperparameters.

    Returns:
        :math:`q^*`: a Python float, or a 0-d array when traced (under ``jax.jit``).

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.fixed_point("tanh", sigma_w=1.761**0.5, sigma_b=0.05**0.5), 3)
        0.57
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    act = _activation(name, params)
    return _out(_fixed_point_of(act, sigma_w, sigma_b, q0), sigma_w, sigma_b, q0, params)


def chi1(
    name: str,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> float | Array:
    r""":math:`\chi_1 = \sigma_w^2\,\mathbb{E}[\phi'(\sqrt{q^*} z)^2]` at the fixed point.

    Gradient norms scale by :math:`\sqrt{\chi_1}` per layer. Where :math:`q^*` is infinite,
    :math:`\chi` is evaluated at :math:`q = 10^8`.

    Args:
        name: a registry activation (elementwise).
        sigma_w: weight scale.
        sigma_b: bias standard deviation.
        q0: the input variance (selects the fixed point where there are several).
        **params: the activation's hyperparameters.

    Returns:
        :math:`\chi_1`: a Python float, or a 0-d array when traced.

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.chi1("selu", sigma_w=1.0), 4)  # LeCun init
        1.0716
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    act = _activation(name, params)
    q = jnp.minimum(_fixed_point_of(act, sigma_w, sigma_b, q0), _Q_MAX)
    sw2, _ = _squares(sigma_w, sigma_b)
    return _out(sw2 * _moments(act, q)[1], sigma_w, sigma_b, q0, params)


def _pair_raw(act: _Activation, q: Array, c: Array) -> tuple[Array, Array]:
    """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]), (u1, u2) ~ N(0, q [[1, c], [c, 1]]), c (K,)."""
    root = jnp.sqrt(q)
    z1, w1 = _normal_rule(q, act.kinks)
    u1 = root * z1
    f1, g1 = act.fn(u1), act.grad(u1)
    kinks = jnp.asarray(act.kinks, q.dtype).reshape(-1)

    def one(ci):
        ci = jnp.clip(ci, -1.0, 1.0)
        scale = root * jnp.sqrt(jnp.maximum(1 - jnp.square(ci), 0.0))  # u2 = c u1 + scale z2
        safe = jnp.where(scale > 0, scale, 1.0)

        def inner(u):
            shift = ci * u
            # Split the z2 rule where u2 crosses a kink.
            z2, w2 = _rule(scale, jnp.where(scale > 0, (kinks - shift) / safe, 0.0))
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

    return jax.lax.map(one, c)


_pair_jit = jax.jit(_pair_raw, static_argnums=0)


def _pair(act: _Activation, q: Array, c: Array) -> tuple[Array, Array]:
    c = jnp.asarray(c, q.dtype)
    flat = c.reshape(-1)
    n = flat.shape[0]
    padded = jnp.concatenate([flat, jnp.zeros(-n % _K, flat.dtype)]) if n % _K else flat
    kernel = _pair_jit if act.cached else _pair_raw
    parts = [kernel(act, q, padded[i : i + _K]) for i in range(0, padded.shape[0], _K)]
    return tuple(jnp.concatenate([p[j] for p in parts])[:n].reshape(c.shape) for j in range(2))


def correlation_map(
    name: str,
    c: ArrayLike,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> Array:
    r"""The correlation of two inputs' pre-activations one layer on, at the fixed point :math:`q^*`.

    .. math::
        \mathcal{C}(c) = \frac{\sigma_w^2\,\mathbb{E}[\phi(u_1)\phi(u_2)] + \sigma_b^2}{q^*},
        \quad (u_1, u_2) \sim N\!\left(0, q^* \begin{pmatrix}1 & c\\ c & 1\end{pmatrix}\right)

    The inner integral is split where :math:`u_2` crosses a kink, so kinks never straddle.

    Args:
        name: a registry activation (elementwise).
        c: correlation(s) in [-1, 1], any shape.
        sigma_w: weight scale.
        sigma_b: bias standard deviation.
        q0: the input variance (selects :math:`q^*`).
        **params: the activation's hyperparameters.

    Returns:
        An array of c's shape.

    Examples:
        >>> import jaxact
        >>> round(float(jaxact.theory.correlation_map("tanh", 1.0, sigma_w=1.2, sigma_b=0.3)), 4)
        1.0
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    act = _activation(name, params)
    q = jnp.minimum(_fixed_point_of(act, sigma_w, sigma_b, q0), _Q_MAX)
    sw2, sb2 = _squares(sigma_w, sigma_b)
    return (sw2 * _pair(act, q, c)[0] + sb2) / q


def _correlation_fixed_point_of(act, q, sigma_w, sigma_b) -> Array:
    sw2, sb2 = _squares(sigma_w, sigma_b)
    chi_1 = sw2 * _moments(act, q)[1]
    dtype = q.dtype

    def signs(c):
        return jnp.sign((sw2 * _pair(act, q, c)[0] + sb2) / q - c)

    # C(c) - c > 0 below the stable c* < 1, < 0 between it and 1 (chaotic phase).
    lo, hi = jnp.asarray(-1.0, dtype), jnp.asarray(1.0, dtype)
    fractions = jnp.arange(1, _K + 1, dtype=dtype) / (_K + 1)
    for _ in range(4):
        points = lo + (hi - lo) * fractions
        point_signs = signs(points)
        i, hit = _first_flip(point_signs, jnp.asarray(1.0, dtype))
        lo, hi = (
            jnp.where(hit, jnp.where(i == 0, lo, points[jnp.maximum(i - 1, 0)]), points[-1]),
            jnp.where(hit, points[i], hi),
        )
    # Ordered phase (chi_1 <= 1): c = 1 is the stable fixed point.
    return jnp.where(chi_1 <= 1, jnp.asarray(1.0, dtype), (lo + hi) / 2)


def correlation_fixed_point(
    name: str,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> float | Array:
    r"""The stable fixed point :math:`c^*` of the correlation map.

    :math:`c = 1` is always a fixed point; it is stable where :math:`\chi_1 \le 1` (the
    ordered phase: inputs become alike with depth). Where :math:`\chi_1 > 1` (chaotic) the
    stable one is :math:`c^* < 1`, bracketed on :math:`[-1, 1]`.

    Args:
        name: a registry activation (elementwise).
        sigma_w: weight scale.
        sigma_b: bias standard deviation.
        q0: the input variance (selects :math:`q^*`).
        **params: the activation's hyperparameters.

    Returns:
        :math:`c^*`: a Python float, or a 0-d array when traced.

    Examples:
        >>> import jaxact
        >>> jaxact.theory.correlation_fixed_point("tanh", sigma_w=0.8, sigma_b=0.1)
        1.0
        >>> round(abs(jaxact.theory.correlation_fixed_point("tanh", sigma_w=2.0)), 3)  # odd
        0.0
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    act = _activation(name, params)
    q = jnp.minimum(_fixed_point_of(act, sigma_w, sigma_b, q0), _Q_MAX)
    return _out(_correlation_fixed_point_of(act, q, sigma_w, sigma_b), sigma_w, sigma_b, q0)


class DepthScales(NamedTuple):
    """Depth scales in layers; ``inf`` where the deviation from the fixed point does not decay."""

    xi_q: float | Array
    xi_c: float | Array


def depth_scales(
    name: str,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> DepthScales:
    r"""How many layers the length and the correlation of signals take to settle.

    Deviations from the fixed points decay as :math:`e^{-l/\xi}` (Schoenholz et al., 2017):

    .. math::
        \xi_q^{-1} = -\log \mathcal{L}'(q^*)
        = -\log\!\left(\chi_1 + \sigma_w^2\,\mathbb{E}[\phi''\phi]\right), \qquad
        \xi_c^{-1} = -\log\!\left(\sigma_w^2\,\mathbb{E}[\phi'(u_1)\phi'(u_2)]\right)_{c^*}

    :math:`\xi_c` diverges at criticality (:math:`\chi_1 = 1`). Backward, squared
    gradient norms scale as :math:`\chi_1^l`: :func:`gradient_depth_scale`,
    :math:`-1/\log\chi_1`, is the depth scale of backpropagation, equal to :math:`\xi_c`
    in the ordered phase. :math:`\mathcal{L}'(q)` is computed as
    :math:`\sigma_w^2\,\mathbb{E}[\phi(\sqrt q z)^2 (z^2 - 1)] / (2q)`, which needs no
    :math:`\phi''` and holds for the step too.

    Args:
        name: a registry activation (elementwise).
        sigma_w: weight scale.
        sigma_b: bias standard deviation.
        q0: the input variance (selects :math:`q^*`).
        **params: the activation's hyperparameters.

    Returns:
        ``DepthScales(xi_q, xi_c)``, unpackable as ``xi_q, xi_c``.

    Examples:
        >>> import jaxact
        >>> xi_q, xi_c = jaxact.theory.depth_scales("tanh", sigma_w=1.0, sigma_b=0.3)
        >>> round(xi_q, 2), round(xi_c, 2)
        (1.34, 2.81)
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    act = _activation(name, params)
    q = jnp.minimum(_fixed_point_of(act, sigma_w, sigma_b, q0), _Q_MAX)
    sw2, _ = _squares(sigma_w, sigma_b)
    slope = jnp.abs(sw2 * _moments(act, q)[2])
    c = _correlation_fixed_point_of(act, q, sigma_w, sigma_b)
    chi_c = sw2 * _pair(act, q, c)[1]
    xi_q = jnp.where(slope >= 1, jnp.inf, -1 / jnp.log(slope))
    xi_c = jnp.where(chi_c >= 1, jnp.inf, -1 / jnp.log(chi_c))
    inputs = (sigma_w, sigma_b, q0, params)
    return DepthScales(_out(xi_q, *inputs), _out(xi_c, *inputs))


def gradient_depth_scale(
    name: str,
    *,
    sigma_w: ArrayLike,
    sigma_b: ArrayLike = 0.0,
    q0: ArrayLike = 1.0,
    **params: Any,
) -> float | Array:
    r"""The depth scale of backpropagation, :math:`\xi_\nabla = -1/\log\chi_1`.

    Squared gradient norms scale as :math:`e^{-l/\xi_\nabla}`: positive where they vanish,
    negative where they explode, infinite at criticality.

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.gradient_depth_scale("sigmoid", sigma_w=1.0), 3)
        0.346
    """
    value = jnp.asarray(chi1(name, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0, **params))
    return _out(jnp.where(value == 1, jnp.inf, -1 / jnp.log(value)), sigma_w, sigma_b, q0, params)


# --- initialisation -------------------------------------------------------------------


def variance_preserving_gain(name: str, **params: Any) -> float:
    r"""The :math:`\sigma_w` that maps unit pre-activation variance to unit variance (no bias).

    .. math::
        \sigma_w = \mathbb{E}\!\left[\phi(z)^2\right]^{-1/2}, \quad z \sim N(0, 1)

    He init for relu, LeCun for selu. It keeps the forward signal's scale at the first
    layer; it need not keep gradients alive (:func:`gain` does).

    Args:
        name: a registry activation (elementwise).
        **params: the activation's hyperparameters.

    Returns:
        :math:`\sigma_w` as a float.

    Raises:
        ValueError: for an unknown activation or parameter, or an activation that is 0
            almost everywhere.

    Examples:
        >>> import jaxact
        >>> round(jaxact.variance_preserving_gain("relu") ** 2, 4)
        2.0
        >>> round(jaxact.variance_preserving_gain("selu"), 3)
        1.0
    """
    act = _activation(name, params)
    with jax.ensure_compile_time_eval():
        a = float(_moments(act, jnp.ones((), _dtype()))[0])
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"{act.name} has E[phi(z)^2] = {a}: no variance-preserving gain exists")
    return 1 / math.sqrt(a)


_CURVE_GRID = np.geomspace(_Q_MIN, 1e4, 5 * _K)


@functools.lru_cache(maxsize=512)
def _critical_curve(act: _Activation) -> tuple[np.ndarray, ...]:
    """On a grid of q: E[phi^2], E[phi'^2], d/dq E[phi^2], E[phi], as float64 numpy arrays."""
    moments = _moments(act, jnp.asarray(_CURVE_GRID, _dtype()))
    return tuple(np.asarray(v, dtype=float) for v in moments)


def _reached(act: _Activation, sw2: float, sb2: float, q0: float) -> float:
    return float(_fixed_point_of(act, math.sqrt(sw2), math.sqrt(sb2), q0))


def gain(name: str, *, sigma_b: float = 0.0, q0: float = 1.0, **params: Any) -> float:
    r"""The critical weight scale: the :math:`\sigma_w` making :math:`\chi_1 = 1` at a stable q*.

    Solves, for :math:`q^* > 0`,

    .. math::
        \sigma_w^2\,\mathbb{E}\!\left[\phi'(\sqrt{q^*} z)^2\right] = 1, \qquad
        q^* = \sigma_w^2\,\mathbb{E}\!\left[\phi(\sqrt{q^*} z)^2\right] + \sigma_b^2,

    by following the critical line :math:`\sigma_b^2(q) = q - \mathbb{E}[\phi^2] /
    \mathbb{E}[\phi'^2]` over a grid of :math:`q` in :math:`[10^{-5}, 10^4]` and narrowing
    in where it crosses the requested :math:`\sigma_b^2`. A root is accepted only where
    :math:`q^*` is finite, non-zero and attracting (:math:`\mathcal{L}'(q^*) < 1`, or the
    map leaves every :math:`q` in place, as relu's does at :math:`\sigma_w^2 = 2`), is
    the fixed point the length map reaches from ``q0``, and is not saturated: less than
    half of :math:`q^*` may be common to all inputs,
    :math:`\sigma_w^2\mathbb{E}[\phi]^2 + \sigma_b^2 < q^*/2` (sigmoid, hard_sigmoid and
    step reach :math:`\chi_1 = 1` only at :math:`\sigma_w^2 > 100`, where more than half is,
    and few units carry a gradient that fluctuates by 2-4x over 50 layers of width 256). Weights
    :math:`\sim N(0, \sigma_w^2/\mathrm{fan\_in})` and biases :math:`\sim N(0, \sigma_b^2)`
    then keep gradient norms constant with depth.

    Args:
        name: a registry activation (elementwise).
        sigma_b: bias standard deviation.
        q0: the input variance whose fixed point must be the critical one.
        **params: the activation's hyperparameters (concrete numbers).

    Returns:
        :math:`\sigma_w` as a float (square it for the variance scale).

    Raises:
        ValueError: for an unknown activation or parameter, a negative or non-finite
            ``sigma_b``, or where no critical point exists; the message says why and
            suggests a ``sigma_b`` that has one, or another init.

    Examples:
        >>> import jaxact
        >>> round(jaxact.gain("relu") ** 2, 4)  # He
        2.0
        >>> round(jaxact.gain("leaky_relu", negative_slope=0.5) ** 2, 4)  # 2 / (1 + a^2)
        1.6
        >>> round(jaxact.gain("tanh", sigma_b=0.05**0.5) ** 2, 3)
        1.761
    """
    _check_sigma("sigma_b", sigma_b)
    _check_sigma("q0", q0)
    if _traced(sigma_b, q0, params):
        raise ValueError("gain searches for a root and needs concrete numbers, not traced ones")
    act = _activation(name, params)
    # Concrete even when called while a jit is tracing (a Flax module building its init).
    with jax.ensure_compile_time_eval():
        return _gain(act, float(sigma_b), float(q0))


@functools.lru_cache(maxsize=1024)
def _gain(act: _Activation, sigma_b: float, q0: float) -> float:
    sb2 = sigma_b**2
    grid = _CURVE_GRID
    a, b, da, mean = _critical_curve(act)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sw2_curve = 1 / b
        sb2_curve = grid - a / b
        slope_curve = da / b  # L'(q) on the critical line
        common_curve = (sw2_curve * mean**2 + sb2_curve) / grid  # C(0) on the critical line
    finite = np.isfinite(sw2_curve) & np.isfinite(sb2_curve) & np.isfinite(slope_curve) & (b > 0)

    def verdict(q: float) -> tuple[float | None, str]:
        """(sigma_w^2, "") if q is a good critical point at this sigma_b, else (None, why)."""
        _, bq, daq, mq = (float(v) for v in _moments(act, jnp.asarray(q, _dtype())))
        sw2, slope = 1 / bq if bq > 0 else math.inf, daq / bq if bq > 0 else math.inf
        where = f"q*={q:.3g} at sigma_w^2={sw2:.4g}"
        if not (math.isfinite(sw2) and sw2 > 0):
            return None, f"E[phi'^2] = 0 at q={q:.3g}"
        if slope > 1 + 1e-3:
            return None, f"{where} repels (L'(q*)={slope:.3g} > 1)"
        common = (sw2 * mq**2 + sb2) / q
        if common >= 0.5 - 1e-3:
            return None, (
                f"{where} is saturated: {common:.0%} of the pre-activation variance is the same "
                "for every input (sigma_w^2 E[phi]^2 + sigma_b^2 >= q*/2), so few units carry "
                "the gradient and it fluctuates strongly from layer to layer at finite width"
            )
        reached = _reached(act, sw2, sb2, q0)
        # 5%: near L'(q*) = 1 the map is flat and the reached point is ill-conditioned.
        if not (math.isfinite(reached) and abs(reached - q) <= 5e-2 * q):
            return (
                None,
                f"{where} attracts, but from q0={q0:g} the length map goes to {reached:.3g}",
            )
        return sw2, ""

    def tolerant_sign(h: np.ndarray, q: np.ndarray) -> np.ndarray:
        # Within float rounding of 0 counts as 0 (relu at sigma_b=0: the whole line is critical).
        return np.where(np.abs(h) <= 1e-5 * (q + sb2), 0.0, np.sign(h))

    # A neutral critical point at q0 itself: L(q0) = q0 with chi = 1 (relu family, identity).
    a0, b0, _, _ = (float(v) for v in _moments(act, jnp.asarray(q0, _dtype())))
    if b0 > 0 and tolerant_sign(np.array([q0 - a0 / b0 - sb2]), np.array([q0]))[0] == 0:
        sw2, _ = verdict(q0)
        if sw2 is not None:
            return math.sqrt(sw2)

    h = np.where(finite, sb2_curve - sb2, np.nan)
    signs = tolerant_sign(h, grid)
    reasons = []
    nonzero = np.flatnonzero(np.isfinite(h) & (signs != 0))
    for i, j in itertools.pairwise(nonzero):
        if signs[i] == signs[j] or not np.all(np.isfinite(h[i : j + 1])):
            continue
        q = _critical_root(act, grid[i], grid[j], sb2)
        if q < _Q_MIN:
            continue
        sw2, why = verdict(q)
        if sw2 is not None:
            return math.sqrt(sw2)
        reasons.append(why)

    if reasons:
        why = "; ".join(reasons)
    elif not finite.any():
        why = "E[phi'^2] = 0, so no sigma_w gives chi_1 = 1"
    elif sb2 == 0 and finite[0] and abs(sb2_curve[0]) <= 1e-2 * grid[0]:
        why = (
            f"at sigma_b=0 its critical point is q*=0 (sigma_w^2 -> {sw2_curve[0]:.4g}), where "
            "signals shrink to 0 and gradients fade as a power of depth"
        )
    elif np.nanmax(np.where(finite, sb2_curve, -np.inf)) < 0:
        why = "chi_1 = 1 would need a negative bias variance (E[phi^2] > q E[phi'^2] for every q)"
    else:
        why = "no q* in [1e-5, 1e4] has chi_1 = 1 at this sigma_b"
    raise ValueError(
        f"no critical initialisation for {act.name} at sigma_b={sigma_b:g}: {why}. "
        + _suggest(act, sw2_curve, sb2_curve, slope_curve, common_curve, finite, q0)
    )


def _critical_root(act: _Activation, lo: float, hi: float, sb2: float) -> float:
    """The q in [lo, hi] where q - E[phi^2]/E[phi'^2] = sb2 (a sign change), to float precision."""
    fractions = np.arange(1, _K + 1) / (_K + 1)

    def h(q):
        a, b, _, _ = _moments(act, jnp.asarray(q, _dtype()))
        return np.asarray(q - np.asarray(a, float) / np.asarray(b, float) - sb2)

    s_lo = np.sign(h(np.array([lo]))[0])
    for _ in range(4):
        points = lo + (hi - lo) * fractions
        flips = np.flatnonzero(np.sign(h(points)) != s_lo)
        if flips.size == 0:
            lo = points[-1]
            continue
        i = flips[0]
        lo, hi = (points[i - 1] if i > 0 else lo), points[i]
    return float((lo + hi) / 2)


def _suggest(act, sw2_curve, sb2_curve, slope_curve, common_curve, finite, q0) -> str:
    """A sigma_b on the critical line whose critical point is good, q* nearest q0."""
    grid = _CURVE_GRID
    ok = finite & (sb2_curve > 1e-4) & (slope_curve < 1) & (common_curve < 0.45)
    ok &= (grid >= 1e-2) & (grid <= 100)
    distance = np.where(ok, np.abs(np.log(grid / q0)), np.inf)
    for i in np.argsort(distance)[:8]:
        if not ok[i]:
            break
        reached = _reached(act, sw2_curve[i], sb2_curve[i], q0)
        if math.isfinite(reached) and abs(reached - grid[i]) <= 5e-2 * grid[i]:
            return (
                f"Try sigma_b={math.sqrt(sb2_curve[i]):.3g} (critical at "
                f"sigma_w={math.sqrt(sw2_curve[i]):.4g}, q*={grid[i]:.3g}), or a "
                "variance-preserving init (jaxact.variance_preserving_gain, He or LeCun)."
            )
    return (
        "No sigma_b has a usable one either: use a variance-preserving init "
        "(jaxact.variance_preserving_gain, He or LeCun) with normalisation or residual "
        "connections, or an activation that has one (tanh, relu, selu)."
    )


def critical_init(name: str, *, sigma_b: float = 0.0, **params: Any) -> Callable[..., Array]:
    r"""A kernel initializer with the critical variance :math:`\sigma_w^2/\mathrm{fan\_in}`.

    ``jax.nn.initializers.variance_scaling(gain(name, sigma_b=sigma_b, **params) ** 2,
    "fan_in", "normal")``: pass it as ``kernel_init`` of a Flax ``Dense`` layer, and
    :func:`critical_bias_init` with the same ``sigma_b`` as its ``bias_init``.

    Args:
        name: a registry activation (elementwise).
        sigma_b: bias standard deviation the gain is computed for.
        **params: the activation's hyperparameters.

    Returns:
        An initializer ``(key, shape, dtype=float32) -> Array``.

    Raises:
        ValueError: as :func:`gain`, where no critical point exists.

    Examples:
        >>> import jax, jaxact
        >>> w = jaxact.critical_init("relu")(jax.random.key(0), (1000, 300))
        >>> round(float(w.var() * 1000), 1)
        2.0
    """
    sigma_w = gain(name, sigma_b=sigma_b, **params)
    return jax.nn.initializers.variance_scaling(sigma_w**2, "fan_in", "normal")


def critical_bias_init(sigma_b: float = 0.0) -> Callable[..., Array]:
    r"""The bias initializer matching :func:`critical_init`: :math:`N(0, \sigma_b^2)`, zeros at 0.

    Args:
        sigma_b: standard deviation of the biases, >= 0.

    Returns:
        An initializer ``(key, shape, dtype=float32) -> Array``.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.critical_bias_init(0.0)(jax.random.key(0), (3,))
        Array([0., 0., 0.], dtype=float32)
    """
    _check_sigma("sigma_b", sigma_b)
    if float(sigma_b) == 0:
        return jax.nn.initializers.zeros
    return jax.nn.initializers.normal(float(sigma_b))
