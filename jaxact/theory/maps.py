r"""The maps of mean-field signal propagation: length, gradients, correlations, depth scales.

Each public function validates its arguments (:func:`_prepare`), prepares the activation
(:func:`jaxact.theory.quadrature.activation`) and evaluates one map. Maps of an array
argument (:func:`length_map`, :func:`chi`, :func:`correlation_map`) return an array of its
shape and floating dtype; the quantities at the fixed point (:func:`fixed_point`,
:func:`chi1`, :func:`correlation_fixed_point`, :func:`depth_scales`,
:func:`gradient_depth_scale`) return Python floats for concrete arguments and 0-d arrays
where traced. All are pure JAX: jittable, and differentiable in ``q``, ``c``, ``sigma_w``,
``sigma_b`` and numeric hyperparameters (fixed points by the implicit function theorem).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxact.theory.quadrature import (
    Activation,
    K,
    activation,
    as_output,
    check_sigma,
    default_dtype,
    is_traced,
    moments,
    pair_moments,
)

Q_MAX = 1e8  # a fixed point above this counts as infinite


def _prepare(name: str, params: dict[str, Any], **sigmas: Any) -> Activation:
    """The prepared activation, after checking the standard deviations and variances given."""
    for label, value in sigmas.items():
        check_sigma(label, value)
    return activation(name, params)


def _as_q(q: ArrayLike) -> Array:
    if not is_traced(q) and np.size(q) and float(np.min(np.asarray(q))) < 0:
        raise ValueError(f"q is a variance and must be >= 0, got {q}")
    q = jnp.asarray(q)
    return q if jnp.issubdtype(q.dtype, jnp.floating) else q.astype(default_dtype())


def _squares(sigma_w: ArrayLike, sigma_b: ArrayLike) -> tuple[Array, Array]:
    dtype = default_dtype()
    return jnp.square(jnp.asarray(sigma_w, dtype)), jnp.square(jnp.asarray(sigma_b, dtype))


# --- maps of q ----------------------------------------------------------------------


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
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b)
    q = _as_q(q)
    sw2, sb2 = _squares(sigma_w, sigma_b)
    return (sw2 * moments(act, q)[0] + sb2).astype(q.dtype)


def chi(name: str, q: ArrayLike, *, sigma_w: ArrayLike, **params: Any) -> Array:
    r"""The factor by which squared gradient norms grow per layer at pre-activation variance q.

    .. math::
        \chi(q) = \sigma_w^2\,\mathbb{E}\!\left[\phi'(\sqrt{q} z)^2\right]

    Args:
        name, q, sigma_w, **params: as in :func:`length_map`.

    Returns:
        An array of q's shape.

    Examples:
        >>> import jaxact
        >>> float(jaxact.theory.chi("relu", 1.0, sigma_w=1.0))  # E[relu'^2] = 1/2
        0.5
    """
    act = _prepare(name, params, sigma_w=sigma_w)
    q = _as_q(q)
    sw2, _ = _squares(sigma_w, 0.0)
    return (sw2 * moments(act, q)[1]).astype(q.dtype)


# --- fixed points -----------------------------------------------------------------


@jax.jit
def _first_flip(signs: Array, s0: Array) -> tuple[Array, Array]:
    """Index of the first entry whose sign differs from s0, and whether there is one."""
    flipped = signs != s0
    return jnp.argmax(flipped), jnp.any(flipped)


def bracket_root(
    signs: Callable[[Array], Array], lo: Array, hi: Array, s_lo: Array, passes: int
) -> Array:
    """A root of a function whose sign is ``s_lo`` at ``lo`` and changes before ``hi``.

    Each pass evaluates ``signs`` at K points across the bracket and keeps the first
    piece where the sign leaves ``s_lo``, narrowing the bracket (K + 1)-fold; a point
    where the sign is 0 is a root and ends the search. ``lo`` may lie above ``hi``.
    """
    fractions = jnp.arange(1, K + 1, dtype=lo.dtype) / (K + 1)
    for _ in range(passes):
        points = lo + (hi - lo) * fractions
        point_signs = signs(points)
        i, hit = _first_flip(point_signs, s_lo)
        before = jnp.where(i == 0, lo, points[jnp.maximum(i - 1, 0)])
        on_root = hit & (point_signs[i] == 0)
        lo = jnp.where(hit, jnp.where(on_root, points[i], before), points[-1])
        hi = jnp.where(hit, points[i], hi)
    return (lo + hi) / 2


def fixed_point_of(act: Activation, sigma_w: ArrayLike, sigma_b: ArrayLike, q0: ArrayLike) -> Array:
    """The fixed point the length map reaches from q0, walking the way it moves."""
    dtype = default_dtype()
    sw2, sb2 = _squares(sigma_w, sigma_b)
    q0 = jnp.asarray(q0, dtype)

    def signs(q: Array) -> Array:
        r = sw2 * moments(act, q)[0] + sb2 - q
        # Within rounding of L(q) = q (relu at sigma_w^2 = 2 maps every q to itself): a root.
        return jnp.where(jnp.abs(r) <= 2e-6 * (q + sb2), 0.0, jnp.sign(r))

    ratio = jnp.asarray(1.4, dtype)
    steps = jnp.arange(1, K, dtype=dtype)
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
    root = bracket_root(signs, near, far, s0, passes=5)
    result = jnp.where(s0 == 0, q0, jnp.where(found, root, jnp.where(s0 > 0, jnp.inf, 0.0)))
    result = jnp.where(result > Q_MAX, jnp.inf, result)
    # The bracket accepts a relative residual of 2e-6, which offsets everything computed
    # at q* (the correlation map near criticality most): two Newton steps take it to
    # rounding. The last keeps its gradient: dq*/dtheta = (dL/dtheta) / (1 - dL/dq), the
    # implicit function theorem, where traced.
    usable = jnp.isfinite(result) & (result > 0)
    q = jax.lax.stop_gradient(jnp.where(usable, result, 1.0))
    for keep_gradient in (False, True):
        a, _, da, _ = moments(act, q)
        slope = sw2 * da
        ok = usable & (jnp.abs(1 - slope) > 1e-6)
        step = (sw2 * a + sb2 - q) / jnp.where(ok, 1 - slope, 1.0)
        ok &= jnp.abs(step) <= 1e-2 * q  # a Newton step refines; it must not jump
        step = jnp.where(ok, step, 0.0)
        q = q + (step if keep_gradient else jax.lax.stop_gradient(step))
    return jnp.where(usable, q, result)


def _q_star(act: Activation, sigma_w: ArrayLike, sigma_b: ArrayLike, q0: ArrayLike) -> Array:
    """The fixed point reached from q0, capped at Q_MAX (where maps are evaluated for inf)."""
    return jnp.minimum(fixed_point_of(act, sigma_w, sigma_b, q0), Q_MAX)


def fixed_point(
    name: str, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, q0: ArrayLike = 1.0, **params: Any
) -> float | Array:
    r"""The fixed point :math:`q^* = \mathcal{L}(q^*)` that the length map reaches from ``q0``.

    Found by walking from ``q0`` the way the map moves (up if :math:`\mathcal{L}(q_0) > q_0`)
    to the first root on a geometric grid, then narrowing the bracket. ``inf`` where the
    variance grows past :math:`10^8`, 0 where it dies out; ``q0`` itself where the map
    leaves every :math:`q` in place (relu at :math:`\sigma_w^2 = 2`, :math:`\sigma_b = 0`).
    Differentiable (implicit function theorem) where traced.

    Args:
        name, sigma_w, sigma_b, **params: as in :func:`length_map`.
        q0: the input variance the iteration starts from.

    Returns:
        :math:`q^*`: a Python float, or a 0-d array when traced (under ``jax.jit``).

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.fixed_point("tanh", sigma_w=1.761**0.5, sigma_b=0.05**0.5), 3)
        0.57
    """
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    return as_output(fixed_point_of(act, sigma_w, sigma_b, q0), sigma_w, sigma_b, q0, params)


def chi1(
    name: str, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, q0: ArrayLike = 1.0, **params: Any
) -> float | Array:
    r""":math:`\chi_1 = \sigma_w^2\,\mathbb{E}[\phi'(\sqrt{q^*} z)^2]` at the fixed point.

    Gradient norms scale by :math:`\sqrt{\chi_1}` per layer. Where :math:`q^*` is infinite,
    :math:`\chi` is evaluated at :math:`q = 10^8`.

    Args:
        name, sigma_w, sigma_b, **params: as in :func:`length_map`.
        q0: the input variance (selects the fixed point where there are several).

    Returns:
        :math:`\chi_1`: a Python float, or a 0-d array when traced.

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.chi1("selu", sigma_w=1.0), 4)  # LeCun init
        1.0716
    """
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    q = _q_star(act, sigma_w, sigma_b, q0)
    sw2, _ = _squares(sigma_w, sigma_b)
    return as_output(sw2 * moments(act, q)[1], sigma_w, sigma_b, q0, params)


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
        name, sigma_w, sigma_b, **params: as in :func:`length_map`.
        c: correlation(s) in [-1, 1], any shape.
        q0: the input variance (selects :math:`q^*`).

    Returns:
        An array of c's shape, of the default float dtype.

    Examples:
        >>> import jaxact
        >>> round(float(jaxact.theory.correlation_map("tanh", 1.0, sigma_w=1.2, sigma_b=0.3)), 4)
        1.0
    """
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    if not is_traced(c) and np.size(c) and np.max(np.abs(np.asarray(c))) > 1:
        raise ValueError(f"c is a correlation and must lie in [-1, 1], got {c}")
    q = _q_star(act, sigma_w, sigma_b, q0)
    sw2, sb2 = _squares(sigma_w, sigma_b)
    return (sw2 * pair_moments(act, q, c)[0] + sb2) / q


def _correlation_fixed_point_of(
    act: Activation, q: Array, sigma_w: ArrayLike, sigma_b: ArrayLike
) -> Array:
    sw2, sb2 = _squares(sigma_w, sigma_b)
    chi_1 = sw2 * moments(act, q)[1]
    dtype = q.dtype

    def signs(c: Array) -> Array:
        return jnp.sign((sw2 * pair_moments(act, q, c)[0] + sb2) / q - c)

    # C(c) - c > 0 below the stable c* < 1, < 0 between it and 1 (chaotic phase).
    one = jnp.asarray(1.0, dtype)
    root = bracket_root(signs, -one, one, one, passes=4)
    # Ordered phase (chi_1 <= 1): c = 1 is the stable fixed point.
    return jnp.where(chi_1 <= 1, one, root)


def correlation_fixed_point(
    name: str, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, q0: ArrayLike = 1.0, **params: Any
) -> float | Array:
    r"""The stable fixed point :math:`c^*` of the correlation map.

    :math:`c = 1` is always a fixed point; it is stable where :math:`\chi_1 \le 1` (the
    ordered phase: inputs become alike with depth). Where :math:`\chi_1 > 1` (chaotic) the
    stable one is :math:`c^* < 1`, bracketed on :math:`[-1, 1]`.

    Args:
        name, sigma_w, sigma_b, **params: as in :func:`length_map`.
        q0: the input variance (selects :math:`q^*`).

    Returns:
        :math:`c^*`: a Python float, or a 0-d array when traced.

    Examples:
        >>> import jaxact
        >>> jaxact.theory.correlation_fixed_point("tanh", sigma_w=0.8, sigma_b=0.1)
        1.0
        >>> round(abs(jaxact.theory.correlation_fixed_point("tanh", sigma_w=2.0)), 3)  # odd
        0.0
    """
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    q = _q_star(act, sigma_w, sigma_b, q0)
    c = _correlation_fixed_point_of(act, q, sigma_w, sigma_b)
    return as_output(c, sigma_w, sigma_b, q0, params)


class DepthScales(NamedTuple):
    """Depth scales in layers; ``inf`` where the deviation from the fixed point does not decay."""

    xi_q: float | Array
    xi_c: float | Array


def depth_scales(
    name: str, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, q0: ArrayLike = 1.0, **params: Any
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
        name, sigma_w, sigma_b, **params: as in :func:`length_map`.
        q0: the input variance (selects :math:`q^*`).

    Returns:
        ``DepthScales(xi_q, xi_c)``, unpackable as ``xi_q, xi_c``.

    Examples:
        >>> import jaxact
        >>> xi_q, xi_c = jaxact.theory.depth_scales("tanh", sigma_w=1.0, sigma_b=0.3)
        >>> round(xi_q, 2), round(xi_c, 2)
        (1.34, 2.81)
    """
    act = _prepare(name, params, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0)
    q = _q_star(act, sigma_w, sigma_b, q0)
    sw2, _ = _squares(sigma_w, sigma_b)
    slope = jnp.abs(sw2 * moments(act, q)[2])
    c = _correlation_fixed_point_of(act, q, sigma_w, sigma_b)
    chi_c = sw2 * pair_moments(act, q, c)[1]
    xi_q = jnp.where(slope >= 1, jnp.inf, -1 / jnp.log(slope))
    xi_c = jnp.where(chi_c >= 1, jnp.inf, -1 / jnp.log(chi_c))
    inputs = (sigma_w, sigma_b, q0, params)
    return DepthScales(as_output(xi_q, *inputs), as_output(xi_c, *inputs))


def gradient_depth_scale(
    name: str, *, sigma_w: ArrayLike, sigma_b: ArrayLike = 0.0, q0: ArrayLike = 1.0, **params: Any
) -> float | Array:
    r"""The depth scale of backpropagation, :math:`\xi_\nabla = -1/\log\chi_1`.

    Squared gradient norms scale as :math:`e^{-l/\xi_\nabla}`: positive where they vanish,
    negative where they explode, infinite at criticality.

    Args:
        name, sigma_w, sigma_b, q0, **params: as in :func:`chi1`.

    Returns:
        :math:`\xi_\nabla`: a Python float, or a 0-d array when traced.

    Examples:
        >>> import jaxact
        >>> round(jaxact.theory.gradient_depth_scale("sigmoid", sigma_w=1.0), 3)
        0.346
    """
    value = jnp.asarray(chi1(name, sigma_w=sigma_w, sigma_b=sigma_b, q0=q0, **params))
    return as_output(
        jnp.where(value == 1, jnp.inf, -1 / jnp.log(value)), sigma_w, sigma_b, q0, params
    )
