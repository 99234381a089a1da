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
``q``, ``sigma_w``, ``sigma_b`` and numeric hyperparameters. :func:`gain` searches for
a root and raises where there is none, so it needs concrete numbers.

>>> import jaxact
>>> round(jaxact.gain("relu") ** 2, 4)
2.0
>>> round(jaxact.theory.chi1("relu", sigma_w=2**0.5), 4)
1.0
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

# --- quadrature -----------------------------------------------------------------

_Z_MAX = 10.0  # |z| beyond this holds 1.5e-23 of the normal mass
_X_INNER = 8.0  # |x| <= 8 with x = sqrt(q) z is where activations bend: panels of width 1/2
_INNER_PANELS = 32
_OUTER_PANELS = 10
_LEGENDRE_T, _LEGENDRE_W = np.polynomial.legendre.leggauss(8)
_Q_MAX = 1e8  # a fixed point above this counts as infinite
_Q_MIN = 1e-5  # gain: critical points below this count as q* = 0
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _dtype() -> jnp.dtype:
    return jnp.dtype(jnp.result_type(float))


def _panels(lo: Array, hi: Array, count: int) -> tuple[Array, Array]:
    """Gauss-Legendre nodes and weights (against dz) on [lo, hi] cut into ``count`` panels."""
    t, w = jnp.asarray(_LEGENDRE_T, lo.dtype), jnp.asarray(_LEGENDRE_W, lo.dtype)
    width = (hi - lo) / count
    mids = lo[..., None] + width[..., None] * (jnp.arange(count, dtype=lo.dtype) + 0.5)
    z = mids[..., :, None] + (width / 2)[..., None, None] * t
    weights = jnp.broadcast_to((width / 2)[..., None, None] * w, z.shape)
    return z.reshape(-1), weights.reshape(-1)


def _rule(scale: Array, cuts: Array) -> tuple[Array, Array]:
    """Nodes z and weights w with sum(w f(z)) ~ E[f(z)], z ~ N(0, 1).

    ``[-10, 10]`` is split at the sorted ``cuts`` (kinks, in z); each piece is cut
    again where ``|x| = |scale z|`` crosses 8 and into panels of width at most 1 in z
    and 1/2 in x (where activations bend), with 8 Gauss-Legendre nodes each. No
    sorting: the pieces are clipped, and an empty piece has weight 0.
    """
    dtype = scale.dtype
    zmax = jnp.asarray(_Z_MAX, dtype)
    r = jnp.minimum(_X_INNER / jnp.where(scale > 0, scale, 1.0), zmax)
    r = jnp.where(scale > 0, r, zmax * 0)  # at scale 0, x = 0 everywhere: no inner band
    cuts = jnp.clip(cuts.astype(dtype), -zmax, zmax)
    starts = jnp.concatenate([-zmax[None], cuts])
    ends = jnp.concatenate([cuts, zmax[None]])
    zs, ws = [], []
    for lo_band, hi_band, count in (
        (-zmax, -r, _OUTER_PANELS),
        (-r, r, _INNER_PANELS),
        (r, zmax, _OUTER_PANELS),
    ):
        lo = jnp.clip(starts, lo_band, hi_band)
        hi = jnp.clip(ends, lo_band, hi_band)
        z, w = _panels(lo, hi, count)
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
    fn: Callable[[Array], Array]  # vectorised phi
    grad: Callable[[Array], Array]  # vectorised phi'
    kinks: tuple[float, ...]


def _check_sigma(label: str, value: Any) -> None:
    """A clear error for a negative or non-finite concrete standard deviation."""
    try:
        v = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return  # traced: cannot be checked here
    if not math.isfinite(v):
        raise ValueError(f"{label} must be finite, got {value}")
    if v < 0:
        raise ValueError(
            f"{label} is a standard deviation and must be >= 0, got {value} "
            f"(its square is the variance {label}^2)"
        )


def _activation(name: str, params: dict[str, Any]) -> _Activation:
    """The activation with its derivative and kinks; cached (so jit caches too) for plain params."""
    entry = registry.info(name)
    frozen = _freeze(params)
    if frozen is not None:
        return _cached_activation(entry.name, frozen)
    return _build_activation(entry.name, params)


def _freeze(params: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """The params as a hashable key, or None where one is an array or traced."""
    items = []
    for key, value in sorted(params.items()):
        if isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 0:
            try:
                value = value.item()
            except (TypeError, jax.errors.ConcretizationTypeError):
                return None
        if not isinstance(value, int | float | str | bool | None):
            return None
        items.append((key, value))
    return tuple(items)


@functools.lru_cache(maxsize=512)
def _cached_activation(name: str, frozen: tuple[tuple[str, Any], ...]) -> _Activation:
    return _build_activation(name, dict(frozen))


def _build_activation(name: str, params: dict[str, Any]) -> _Activation:
    entry = registry.info(name)
    if not entry.elementwise:
        raise ValueError(
            f"{entry.name} is not elementwise (it mixes the entries of its input), so the "
            "mean-field theory of jaxact.theory, which needs phi(h) for each unit alone, "
            "does not apply to it"
        )
    registry.check_params(entry.name, params)
    if entry.name == "rrelu" and params.get("key") is not None:
        raise ValueError("rrelu with a key is random; the theory uses the mean slope (key=None)")
    try:
        kinks = entry.breakpoints(**params)
    except (TypeError, jax.errors.ConcretizationTypeError) as error:
        raise ValueError(
            f"{entry.name}'s kinks depend on a traced hyperparameter ({sorted(params)}); "
            "pass those as concrete numbers"
        ) from error
    full = {**entry.params, **params}
    if entry.name == "step" and full["surrogate"] == "straight_through":
        # The straight-through surrogate jumps at threshold +- 1/sharpness too.
        try:
            th, k = float(full["threshold"]), float(full["sharpness"])
            kinks = tuple(sorted({*kinks, th - 1 / k, th + 1 / k}))
        except (TypeError, jax.errors.ConcretizationTypeError):
            pass
    kinks = tuple(k for k in kinks if math.isfinite(k))
    scalar = lambda x: entry.fn(x, **params)
    return _Activation(entry.name, jax.vmap(scalar), jax.vmap(jax.grad(scalar)), kinks)


def _as_q(q: ArrayLike) -> Array:
    try:
        if float(np.min(np.asarray(q))) < 0:
            raise ValueError(f"q is a variance and must be >= 0, got {q}")
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        pass
    q = jnp.asarray(q)
    if not jnp.issubdtype(q.dtype, jnp.floating):
        q = q.astype(_dtype())
    return q


_jit = functools.partial(jax.jit, static_argnums=0)


def _second_moments(act: _Activation, q: Array) -> tuple[Array, Array]:
    """(E[phi^2], E[phi'^2]) at variance q (any shape)."""

    def one(qi):
        z, w = _normal_rule(qi, act.kinks)
        x = jnp.sqrt(qi) * z
        return jnp.sum(w * jnp.square(act.fn(x))), jnp.sum(w * jnp.square(act.grad(x)))

    flat = q.reshape(-1)
    a, b = jax.vmap(one)(flat)
    return a.reshape(q.shape), b.reshape(q.shape)


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

    Examples:
        >>> import jaxact
        >>> float(jaxact.theory.length_map("relu", 3.0, sigma_w=2**0.5))  # He keeps q
        3.0...
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    act = _activation(name, params)
    q = _as_q(q)
    return _length_map(act, q, sigma_w, sigma_b)


@_jit
def _length_map(act, q, sigma_w, sigma_b):
    a, _ = _second_moments(act, q)
    return jnp.square(sigma_w) * a + jnp.square(sigma_b)


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
    return _chi(act, q, sigma_w)


@_jit
def _chi(act, q, sigma_w):
    _, b = _second_moments(act, q)
    return jnp.square(sigma_w) * b


@_jit
def _fixed_point(act: _Activation, sigma_w, sigma_b, q0) -> Array:
    """The fixed point the length map reaches from q0 (jittable)."""
    dtype = _dtype()
    sw2 = jnp.square(jnp.asarray(sigma_w, dtype))
    sb2 = jnp.square(jnp.asarray(sigma_b, dtype))
    q0 = jnp.asarray(q0, dtype)

    def residual(q):
        a, _ = _second_moments(act, q)
        return sw2 * a + sb2 - q

    def sign(q):
        r = residual(q)
        # Within rounding of L(q) = q (relu at sigma_w^2 = 2 maps every q to itself): a root.
        tol = 1e-5 * (q + sb2) + 1e-30
        return jnp.where(jnp.abs(r) <= tol, 0.0, jnp.sign(r))

    s0 = sign(q0)
    ratio = 1.25
    steps = int(math.ceil(math.log(_Q_MAX / _Q_MIN * 1e5) / math.log(ratio)))
    k = jnp.arange(1, steps + 1, dtype=dtype)
    up = q0 * ratio**k
    down = q0 * ratio**-k
    grid = jnp.where(s0 > 0, up, down)
    signs = sign(grid)
    # The first grid point (walking away from q0 the way the map moves) where the sign flips.
    flipped = signs != s0
    index = jnp.argmax(flipped)
    found = jnp.any(flipped) & jnp.isfinite(grid[index])
    near = jnp.where(index == 0, q0, grid[jnp.maximum(index - 1, 0)])
    far = grid[index]
    exact = signs[index] == 0

    def bisect(_, bounds):
        a, b = bounds
        m = (a + b) / 2
        same = sign(m) == s0
        return jnp.where(same, m, a), jnp.where(same, b, m)

    a, b = jax.lax.fori_loop(0, 60, bisect, (near, far))
    root = jnp.where(exact, far, (a + b) / 2)
    fallback = jnp.where(s0 > 0, jnp.inf, 0.0)
    result = jnp.where(s0 == 0, q0, jnp.where(found, root, fallback))
    return jnp.where(result > _Q_MAX, jnp.inf, result)


def _to_float_if_concrete(x: Array) -> float | Array:
    try:
        return float(x)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return x


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
    to the first root, then bisecting. ``inf`` where the variance grows without bound
    (above :math:`10^8`), 0 where it dies out; ``q0`` itself where the map leaves every
    :math:`q` in place (relu at :math:`\sigma_w^2 = 2`, :math:`\sigma_b = 0`).

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
        >>> round(jaxact.theory.fixed_point("tanh", sigma_w=1.761**0.5, sigma_b=0.05**0.5), 2)
        0.57
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    act = _activation(name, params)
    _as_q(q0)
    return _to_float_if_concrete(_fixed_point(act, sigma_w, sigma_b, q0))


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
    act = _activation(name, params)
    return _to_float_if_concrete(_chi1(act, sigma_w, sigma_b, q0))


@_jit
def _chi1(act, sigma_w, sigma_b, q0):
    q = _fixed_point(act, sigma_w, sigma_b, q0)
    _, b = _second_moments(act, jnp.minimum(q, _Q_MAX))
    return jnp.square(jnp.asarray(sigma_w, _dtype())) * b


def _pair_expect(act: _Activation, q: Array, c: Array, f, g) -> Array:
    """E[f(u1) g(u2)] for (u1, u2) centred normal, variances q, correlation c."""
    c = jnp.clip(c, -1.0, 1.0)
    s = jnp.sqrt(jnp.maximum(1 - jnp.square(c), 0.0))
    root = jnp.sqrt(q)
    z1, w1 = _normal_rule(q, act.kinks)
    scale = root * s  # u2 = root c z1 + scale z2
    kinks = jnp.asarray(act.kinks, q.dtype)
    safe = jnp.where(scale > 0, scale, 1.0)

    def inner(z):
        shift = root * c * z
        # Split the z2 rule where u2 crosses a kink of g.
        extra = jnp.clip((kinks - shift) / safe, -_Z_MAX, _Z_MAX)
        z2, w2 = _rule(scale, extra)
        value = jnp.sum(w2 * g(shift + scale * z2))
        return jnp.where(scale > 0, value, g(jnp.reshape(shift, (1,)))[0])

    return jnp.sum(w1 * f(root * z1) * jax.vmap(inner)(z1))


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
    act = _activation(name, params)
    return _correlation_map_at(act, c, sigma_w, sigma_b, q0)


@_jit
def _correlation_map_at(act, c, sigma_w, sigma_b, q0):
    q = jnp.minimum(_fixed_point(act, sigma_w, sigma_b, q0), _Q_MAX)
    return _correlation_map(act, q, jnp.asarray(c, q.dtype), sigma_w, sigma_b)


def _correlation_map(act, q, c, sigma_w, sigma_b):
    sw2 = jnp.square(jnp.asarray(sigma_w, q.dtype))
    sb2 = jnp.square(jnp.asarray(sigma_b, q.dtype))
    flat = c.reshape(-1)
    e = jax.vmap(lambda ci: _pair_expect(act, q, ci, act.fn, act.fn))(flat)
    return ((sw2 * e + sb2) / q).reshape(c.shape)


def _correlation_fixed_point(act, q, sigma_w, sigma_b):
    chi_1 = jnp.square(jnp.asarray(sigma_w, q.dtype)) * _second_moments(act, q)[1]

    def residual(c):
        return _correlation_map(act, q, c, sigma_w, sigma_b) - c

    def bisect(_, bounds):
        a, b = bounds
        m = (a + b) / 2
        up = residual(m) > 0
        return jnp.where(up, m, a), jnp.where(up, b, m)

    one = jnp.asarray(1.0, q.dtype)
    a, b = jax.lax.fori_loop(0, 40, bisect, (jnp.asarray(-1.0, q.dtype), one))
    # Ordered phase (chi_1 <= 1): c = 1 is the stable fixed point.
    return jnp.where(chi_1 <= 1, one, (a + b) / 2)


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
    ordered phase: inputs become alike with depth). Where :math:`\chi_1 > 1` (chaotic)
    the stable one is :math:`c^* < 1`, found by bisection on :math:`[-1, 1]`.

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
        >>> round(jaxact.theory.correlation_fixed_point("tanh", sigma_w=2.0), 3)  # odd, no bias
        0.0
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    act = _activation(name, params)
    return _to_float_if_concrete(_correlation_fixed_point_at(act, sigma_w, sigma_b, q0))


@_jit
def _correlation_fixed_point_at(act, sigma_w, sigma_b, q0):
    q = jnp.minimum(_fixed_point(act, sigma_w, sigma_b, q0), _Q_MAX)
    return _correlation_fixed_point(act, q, sigma_w, sigma_b)


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

    :math:`\xi_c` diverges at criticality (:math:`\chi_1 = 1`); backward, gradients scale as
    :math:`\chi_1^{l/2}`, so :math:`-1/\log\chi_1` (:func:`gradient_depth_scale`) is the
    depth scale of backpropagation, and equals :math:`\xi_c` in the ordered phase.
    :math:`\mathcal{L}'` is the exact derivative of :func:`length_map`.

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
        (1.43, 2.81)
    """
    _check_sigma("sigma_w", sigma_w)
    _check_sigma("sigma_b", sigma_b)
    act = _activation(name, params)
    xi_q, xi_c = _depth_scales(act, sigma_w, sigma_b, q0)
    return DepthScales(_to_float_if_concrete(xi_q), _to_float_if_concrete(xi_c))


@_jit
def _depth_scales(act, sigma_w, sigma_b, q0):
    q = jnp.minimum(_fixed_point(act, sigma_w, sigma_b, q0), _Q_MAX)
    sw2 = jnp.square(jnp.asarray(sigma_w, q.dtype))
    slope = jax.grad(lambda qq: sw2 * _second_moments(act, qq)[0])(q)
    c = _correlation_fixed_point(act, q, sigma_w, sigma_b)
    chi_c = sw2 * _pair_expect(act, q, c, act.grad, act.grad)
    xi_q = -1 / jnp.log(jnp.abs(slope))
    xi_c = -1 / jnp.log(chi_c)
    xi_q = jnp.where(jnp.abs(slope) >= 1, jnp.inf, xi_q)
    xi_c = jnp.where(chi_c >= 1, jnp.inf, xi_c)
    return xi_q, xi_c


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
        >>> round(jaxact.theory.gradient_depth_scale("sigmoid", sigma_w=1.0), 2)
        0.35
    """
    value = chi1(name, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0, **params)
    return _to_float_if_concrete(-1 / jnp.log(jnp.asarray(value)))


# --- initialisation -------------------------------------------------------------------


def variance_preserving_gain(name: str, **params: Any) -> float:
    r"""The :math:`\sigma_w` that maps unit pre-activation variance to unit variance (no bias).

    .. math::
        \sigma_w = \mathbb{E}\!\left[\phi(z)^2\right]^{-1/2}, \quad z \sim N(0, 1)

    (He init for relu, LeCun for selu). It keeps the forward signal's scale at the first
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
    a = float(_length_map(act, jnp.asarray(1.0, _dtype()), 1.0, 0.0))
    if not a > 0 or not math.isfinite(a):
        raise ValueError(f"{act.name} has E[phi(z)^2] = {a}: no variance-preserving gain exists")
    return 1 / math.sqrt(a)


@functools.lru_cache(maxsize=256)
def _critical_curve(act: _Activation):
    """On a grid of q: E[phi^2], E[phi'^2] and d/dq E[phi^2]."""
    grid = np.geomspace(_Q_MIN, 1e4, 321)

    @jax.jit
    def curve(q):
        def moments(qq):
            return _second_moments(act, qq)

        a, b = moments(q)
        da = jax.vmap(jax.grad(lambda qq: moments(qq)[0]))(q)
        return a, b, da

    a, b, da = (np.asarray(v, dtype=float) for v in curve(jnp.asarray(grid, _dtype())))
    return act, grid, a, b, da, jax.jit(functools.partial(_second_moments, act))


class _NoCriticalPoint(ValueError):
    pass


def gain(name: str, *, sigma_b: float = 0.0, q0: float = 1.0, **params: Any) -> float:
    r"""The critical weight scale: :math:`\sigma_w` with :math:`\chi_1 = 1` at an attracting fixed point.

    Solves, for :math:`q^* > 0`,

    .. math::
        \sigma_w^2\,\mathbb{E}\!\left[\phi'(\sqrt{q^*} z)^2\right] = 1, \qquad
        q^* = \sigma_w^2\,\mathbb{E}\!\left[\phi(\sqrt{q^*} z)^2\right] + \sigma_b^2,

    by following the critical line :math:`\sigma_b^2(q) = q - \mathbb{E}[\phi^2] /
    \mathbb{E}[\phi'^2]` over a grid of :math:`q` and bisecting where it crosses the
    requested :math:`\sigma_b^2`. A root is accepted only where :math:`q^*` is finite,
    non-zero and attracting (:math:`\mathcal{L}'(q^*) < 1`, or the map leaves every
    :math:`q` in place, as relu's at :math:`\sigma_w^2 = 2`) and is the fixed point that
    the length map reaches from ``q0``. Weights :math:`\sim N(0, \sigma_w^2/\mathrm{fan\_in})`
    and biases :math:`\sim N(0, \sigma_b^2)` then keep gradient norms constant with depth.

    Args:
        name: a registry activation (elementwise).
        sigma_b: bias standard deviation.
        q0: the input variance whose fixed point must be the critical one.
        **params: the activation's hyperparameters.

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
    entry = registry.info(name)
    act = _activation(entry.name, params)
    act, grid, a, b, da, moments = _critical_curve(act)
    sb2 = float(sigma_b) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        sw2_curve = 1 / b
        sb2_curve = grid - a / b
        slope_curve = da / b  # L'(q) on the critical line
    finite = np.isfinite(sw2_curve) & np.isfinite(sb2_curve) & (b > 0)

    def evaluate(q: float) -> tuple[float, float, float]:
        aa, bb = (float(v) for v in moments(jnp.asarray(q, _dtype())))
        return aa, bb, q - aa / bb

    def check(q: float, sw2: float, neutral: bool) -> float | None:
        """sigma_w^2 if q is an acceptable critical point, else None."""
        if not (math.isfinite(sw2) and sw2 > 0 and _Q_MIN <= q <= 1e4):
            return None
        reached = float(_fixed_point(act, math.sqrt(sw2), math.sqrt(sb2), q0))
        if neutral:
            return sw2 if math.isfinite(reached) and reached > 0 else None
        if math.isfinite(reached) and abs(reached - q) <= 1e-2 * q + 1e-6:
            return sw2
        return None

    # Positively homogeneous phi (relu family, identity) with no bias: L(q) = chi_1 q, and at
    # chi_1 = 1 every q is a fixed point, neutral.
    mid = (grid > 0.1) & (grid < 10)
    if sb2 == 0 and finite[mid].all():
        rel = np.abs(sb2_curve[mid]) / grid[mid]
        if rel.max() < 1e-4 and np.ptp(sw2_curve[mid]) < 1e-4 * sw2_curve[mid].mean():
            sw2 = float(np.mean(sw2_curve[mid]))
            if check(1.0, sw2, neutral=True) is not None:
                return math.sqrt(sw2)

    h = np.where(finite, sb2_curve - sb2, np.nan)
    candidates = []
    for i in range(len(grid) - 1):
        if not (np.isfinite(h[i]) and np.isfinite(h[i + 1])) or np.sign(h[i]) == np.sign(h[i + 1]):
            continue
        lo, hi = grid[i], grid[i + 1]
        hlo = h[i]
        for _ in range(50):
            m = math.sqrt(lo * hi)
            hm = evaluate(m)[2] - sb2
            if np.sign(hm) == np.sign(hlo):
                lo, hlo = m, hm
            else:
                hi = m
        q = math.sqrt(lo * hi)
        slope = np.interp(q, grid[i : i + 2], slope_curve[i : i + 2])
        candidates.append((q, 1 / evaluate(q)[1], slope))

    reasons = []
    for q, sw2, slope in candidates:
        if not slope < 1:
            reasons.append(f"q*={q:.3g} at sigma_w^2={sw2:.4g} is repelling (L'(q*)={slope:.3g})")
            continue
        if check(q, sw2, neutral=False) is not None:
            return math.sqrt(sw2)
        reached = float(_fixed_point(act, math.sqrt(sw2), math.sqrt(sb2), q0))
        reasons.append(
            f"q*={q:.3g} at sigma_w^2={sw2:.4g} is attracting but not reached from q0={q0:g} "
            f"(the length map goes to q={reached:.3g})"
        )

    # No critical point: say why, and suggest a sigma_b on the critical line that has one.
    if not candidates:
        if not finite.any():
            why = "E[phi'^2] = 0, so no sigma_w gives chi_1 = 1"
        elif sb2 == 0 and np.nanmax(np.abs(h[:5])) < 1e-3:
            why = (
                "at sigma_b=0 its critical point is q*=0 (sigma_w^2="
                f"{sw2_curve[0]:.4g}): signals shrink to 0 and gradients decay as a power law"
            )
        else:
            why = "no q* > 0 has chi_1 = 1 at this sigma_b"
    else:
        why = "; ".join(reasons)
    suggestion = _suggest(act, grid, sw2_curve, sb2_curve, slope_curve, finite, sb2, q0)
    raise _NoCriticalPoint(
        f"no critical initialisation for {act.name} at sigma_b={sigma_b:g}: {why}. {suggestion}"
    )


def _suggest(act, grid, sw2_curve, sb2_curve, slope_curve, finite, sb2, q0) -> str:
    ok = finite & (sb2_curve > 0) & (slope_curve < 1) & (grid >= 1e-3) & (grid <= 100)
    order = np.argsort(np.abs(np.sqrt(np.where(ok, sb2_curve, np.inf)) - math.sqrt(sb2)))
    for i in order[:40]:
        if not ok[i]:
            break
        sw, sbb = math.sqrt(sw2_curve[i]), math.sqrt(sb2_curve[i])
        reached = float(_fixed_point(act, sw, sbb, q0))
        if math.isfinite(reached) and abs(reached - grid[i]) <= 2e-2 * grid[i]:
            return (
                f"Try sigma_b={sbb:.3g} (critical at sigma_w={sw:.4g}, q*={grid[i]:.3g}), "
                "or a variance-preserving init (jaxact.variance_preserving_gain, He or LeCun)."
            )
    return (
        "No sigma_b gives one either; use a variance-preserving init "
        "(jaxact.variance_preserving_gain, He or LeCun) and normalisation or residual "
        "connections, or an activation that has one (tanh, relu, selu)."
    )


def critical_init(
    name: str, *, sigma_b: float = 0.0, **params: Any
) -> Callable[..., Array]:
    r"""A kernel initializer with the critical variance :math:`\sigma_w^2/\mathrm{fan\_in}`.

    ``jax.nn.initializers.variance_scaling(gain(name, sigma_b=sigma_b, **params) ** 2,
    "fan_in", "normal")``: pass it as ``kernel_init`` of a Flax ``Dense`` layer and
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
