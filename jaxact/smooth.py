"""Smooth activations: sigmoid, tanh, softplus, the self-gated family, the ELU family.

Every function here is accurate to a few ulps in value and first derivative over
the whole float range. Where JAX's automatic derivative cancels or overflows, a
``jax.custom_jvp`` rule right under the function computes the derivative from a
formula that does not; the rules are written in ``jax.numpy`` so they can be
differentiated again (hessians, ``jacfwd``).
"""

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike, DTypeLike

from jaxact import _numerics
from jaxact._dtypes import as_array, like, rounds_once

# A JVP rule's term: the slope (computed only if needed) and the tangent it multiplies.
_Term = tuple[Callable[[], Array], Array | SymbolicZero]


def _tangent(primal_out: Array, *terms: _Term) -> Array:
    """Sum of ``slope() * tangent`` over the tangents that are not symbolic zeros."""
    parts = [slope() * t for slope, t in terms if not isinstance(t, SymbolicZero)]
    if not parts:
        return jnp.zeros_like(primal_out)
    total: Array = functools.reduce(jnp.add, parts)
    return total * jnp.ones_like(primal_out)


# The partial derivatives of f(x, p) in x and in p, each computed only if its tangent is needed.
_Partials = tuple[Callable[[], Array], Callable[[], Array]]


def _jvp_from_partials(
    f: jax.custom_jvp[Array],
) -> Callable[[Callable[..., _Partials]], Callable[..., _Partials]]:
    """Decorator: defines f's JVP (symbolic zeros on) from the function giving its partials.

    The decorated function takes f's arguments (any non-differentiable ones last, as f
    declares them) and returns the two partials as functions of no argument.
    """

    def define(partials: Callable[..., _Partials]) -> Callable[..., _Partials]:
        def jvp(*args: Any) -> tuple[Array, Array]:
            *static, primals, tangents = args
            y = f(*primals, *static)
            return y, _tangent(y, *zip(partials(*primals, *static), tangents, strict=True))

        f.defjvp(jvp, symbolic_zeros=True)
        return partials

    return define


def _zero_at_infinity(x: Array, y: Array) -> Array:
    """x * g(x) where g vanishes faster than x grows: the limit 0 instead of inf * 0 = nan."""
    return jnp.where(jnp.isinf(x) & (y == 0), 0.0, x * y)


def _is_one(value: object) -> bool:
    """True for the literal default 1, where ``value * x`` is exact and needs no correction."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 1


def _scaled(beta: Array, x: Array, corrected: bool = True) -> tuple[Array, Array | None]:
    """beta * x, and its rounding error if ``corrected`` (else None: beta is exactly 1)."""
    return _numerics.two_product(beta, x) if corrected else (beta * x, None)


# --- sigmoid -----------------------------------------------------------------


@jax.custom_jvp
def _sigmoid_slope(x: Array) -> Array:
    return _numerics.sigmoid_and_slope(x)[1]


# Differentiated by jax, sigma' = e r^2 would give sigma'' as a difference (100% off near 0).
_sigmoid_slope.defjvps(lambda t, y, x: _numerics.sigmoid_curvature(x) * t)


@jax.custom_jvp
def _sigmoid(x: Array) -> Array:
    return _numerics.sigmoid_and_slope(x)[0]


_sigmoid.defjvps(lambda t, y, x: _sigmoid_slope(x) * t)


# With a gain, a * x is rounded, and the tails' relative error is |a x| times that
# rounding: the rounding error (Dekker's exact product) corrects them to first order.
@jax.custom_jvp
def _sigmoid_gain(x: Array, gain: Array) -> Array:
    return _numerics.sigmoid_and_slope(*_numerics.two_product(gain, x))[0]


@_jvp_from_partials(_sigmoid_gain)
def _sigmoid_gain_partials(x: Array, gain: Array) -> _Partials:
    slope = lambda: _sigmoid_gain_slope(x, gain)  # a sigma'(a x)
    slope_gain = lambda: _zero_at_infinity(x, _numerics.sigmoid_and_slope(*_scaled(gain, x))[1])
    return slope, slope_gain


@jax.custom_jvp
def _sigmoid_gain_slope(x: Array, gain: Array) -> Array:
    return gain * _numerics.sigmoid_and_slope(*_numerics.two_product(gain, x))[1]


@_jvp_from_partials(_sigmoid_gain_slope)
def _sigmoid_gain_slope_partials(x: Array, gain: Array) -> _Partials:
    z, z_lo = _scaled(gain, x)
    curvature = _numerics.sigmoid_curvature(z, z_lo)
    slope_x = lambda: gain * gain * curvature
    # d/da [a sigma'(a x)] = sigma'(a x) + a x sigma''(a x)
    slope_gain = lambda: (
        _numerics.sigmoid_and_slope(z, z_lo)[1] + gain * _zero_at_infinity(x, curvature)
    )
    return slope_x, slope_gain


@rounds_once
def sigmoid(x: ArrayLike, *, gain: ArrayLike = 1.0) -> Array:
    r"""Logistic sigmoid, optionally with a gain.

    .. math::
        \mathrm{sigmoid}(x) = \frac{1}{1 + e^{-a x}}, \qquad
        \mathrm{sigmoid}'(x) = a\,\sigma(a x)\,\sigma(-a x)

    The derivative is formed as :math:`\sigma(ax)\sigma(-ax)`, never as
    :math:`\sigma(1 - \sigma)`, so it keeps full relative accuracy in both tails
    (``jax.nn.sigmoid``'s derivative is 0 from ``x = 17`` on in float32).

    Args:
        x: input array.
        gain: the slope :math:`a` at the origin is :math:`a/4`; may be traced.

    Returns:
        An array of x's shape and floating dtype, in :math:`(0, 1)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sigmoid(jax.numpy.array([-2.0, 0.0, 2.0]))
        Array([0.1192029, 0.5      , 0.880797 ], dtype=float32)
        >>> float(jax.grad(jaxact.sigmoid)(20.0))
        2.06115e-09
    """
    x = as_array(x)
    if _is_one(gain):
        return _sigmoid(x)
    return _sigmoid_gain(x, like(gain, x))


# --- tanh --------------------------------------------------------------------


@jax.custom_jvp
def _tanh(x: Array) -> Array:
    return jnp.tanh(x)


@jax.custom_jvp
def _tanh_slope(x: Array) -> Array:
    # sech(x)**2 from exp(-2|x|): unlike 1 - tanh(x)**2 it does not vanish for |x| > 9.
    e = jnp.exp(-2 * jnp.abs(x))
    return 4 * e / jnp.square(1 + e)


# Each one's rule calls the other, so both are defined first.
_tanh.defjvps(lambda t, y, x: _tanh_slope(x) * t)
# tanh'' = -2 tanh sech^2: a product, exact to a few ulps near 0 and in the tails.
_tanh_slope.defjvps(lambda t, y, x: -2 * _tanh(x) * y * t)


@rounds_once
def tanh(x: ArrayLike) -> Array:
    r"""Hyperbolic tangent.

    .. math::
        \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}, \qquad
        \tanh'(x) = 1 - \tanh(x)^2 = \frac{4 e^{-2|x|}}{(1 + e^{-2|x|})^2}

    The derivative uses the second form, accurate for every ``x`` (the first is 0
    in float32 for :math:`|x| > 9`).

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-1, 1)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.tanh(jax.numpy.array([-1.0, 0.0, 1.0]))
        Array([-0.7615942,  0.       ,  0.7615942], dtype=float32)
        >>> float(jax.grad(jaxact.tanh)(10.0))
        8.2446e-09
    """
    return _tanh(x)


# --- softplus and log_sigmoid -------------------------------------------------


@jax.custom_jvp
def _softplus(x: Array) -> Array:
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@_softplus.defjvp
def _softplus_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (t,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    y = jnp.maximum(x, 0) + jnp.log1p(e)
    return y, jnp.where(x >= 0, 1, e) / (1 + e) * t


@jax.custom_jvp
def _softplus_beta(x: Array, beta: Array) -> Array:
    return _softplus_beta_parts(x, beta)[0]


def _softplus_beta_parts(x: Array, beta: Array) -> tuple[Array, Array, Array]:
    """softplus(beta x) / beta, its x-slope and its beta-slope, with beta x's rounding corrected.

    ``max(x, 0)`` stands for ``max(beta x, 0) / beta`` (exact, never overflows); the
    rounding error ``z_lo`` of ``z = beta x`` enters the log1p term to first order.
    """
    z, z_lo = _numerics.two_product(beta, x)
    e = jnp.exp(-jnp.abs(z))
    q = e / (1 + e)  # sigmoid(-|z|)
    log_term = jnp.log1p(e)
    y = jnp.maximum(x, 0.0) + (log_term - jnp.where(z >= 0, z_lo, -z_lo) * q) / beta
    slope_x = _numerics.sigmoid_and_slope(z, z_lo)[0]
    # d/dbeta = (x sigmoid(z) - y) / beta = -(|x| q + log1p(e) / beta) / beta: no cancellation.
    slope_beta = -(_zero_at_infinity(jnp.abs(x), q) + log_term / beta) / beta
    return y, slope_x, slope_beta


@functools.partial(_softplus_beta.defjvp, symbolic_zeros=True)
def _softplus_beta_jvp(
    primals: tuple[Array, Array], tangents: tuple[Array | SymbolicZero, Array | SymbolicZero]
) -> tuple[Array, Array]:
    (x, beta), (tx, tbeta) = primals, tangents
    y, slope_x, slope_beta = _softplus_beta_parts(x, beta)
    return y, _tangent(y, (lambda: slope_x, tx), (lambda: slope_beta, tbeta))


@rounds_once
def softplus(x: ArrayLike, *, beta: ArrayLike = 1.0, threshold: ArrayLike | None = None) -> Array:
    r"""Softplus, optionally sharpened by ``beta`` and linear above ``threshold`` (as torch).

    .. math::
        \mathrm{softplus}(x) = \frac{1}{\beta}\log\left(1 + e^{\beta x}\right)
        \qquad \mathrm{softplus}'(x) = \sigma(\beta x)

    Evaluated as :math:`\max(z, 0) + \log(1 + e^{-|z|})` with :math:`z = \beta x`,
    which never overflows; the derivative is a one-exponential sigmoid, cheaper
    than differentiating ``logaddexp``.

    Args:
        x: input array.
        beta: sharpness :math:`\beta > 0`; may be traced.
        threshold: where :math:`\beta x` exceeds it the result is ``x``
            (``torch.nn.functional.softplus`` uses 20); ``None``, the default,
            never switches. The switch is a kink: at :math:`\beta x` equal to the
            threshold the derivative is the softplus side's
            :math:`\sigma(\text{threshold})`, between the one-sided ones (that and 1).

    Returns:
        An array of x's shape and floating dtype, in :math:`(0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softplus(jax.numpy.array([-1000.0, 0.0, 1000.0]))
        Array([0.000000e+00, 6.931472e-01, 1.000000e+03], dtype=float32)
    """
    x = as_array(x)
    y = _softplus(x) if _is_one(beta) else _softplus_beta(x, like(beta, x))
    beta = like(beta, x)
    if threshold is not None:
        y = jnp.where(beta * x > like(threshold, x), x, y)
    return y


@rounds_once
def log_sigmoid(x: ArrayLike) -> Array:
    r"""Logarithm of the sigmoid.

    .. math::
        \log\sigma(x) = -\mathrm{softplus}(-x), \qquad
        \frac{d}{dx}\log\sigma(x) = \sigma(-x)

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-\infty, 0)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.log_sigmoid(jax.numpy.array([-100.0, 0.0, 50.0]))
        Array([-1.0000000e+02, -6.9314718e-01, -1.92875e-22], dtype=float32)
    """
    return -_softplus(-as_array(x))


# --- silu / swish --------------------------------------------------------------

# silu'(z) = sigma'(z) (1 + z + e^z) vanishes at z0 = -1 - W(1/e). The bracket
# N = 1 + z + e^z cancels near z0: there, with d = z - z0, it is d + e^{z0} expm1(d),
# a series of terms of one sign. Elsewhere N itself is accurate (1 + z is exact where it
# matters), losing at most 0.3 eps / |d| to the rounding of e^z: 3 eps at the window's edge.
_SILU_ROOT = "-1.278464542761073795109358739022980155439477488619745765453"
_SILU_EXP_ROOT = 0.2784645427610737951093587390229801554394774886197
_SILU_WINDOW = 0.1
# N / d = sum_k c_k d^k, lowest degree first: c_0 = 1 + e^z0, c_k = e^z0 / (k + 1)! for k >= 1
# (float64 keeps 12 terms, which fall by 30x or more each in the window). float32 takes 4
# terms of a polynomial interpolating N / d at the window's Chebyshev nodes (within 0.2 eps
# of it; tests/test_accuracy.py refits it) where the Taylor series needs 5.
_SILU_BRACKET_SERIES = (
    (1.2784645137474433, 0.13923226654521964, 0.046433967340438496, 0.011606557449169603),
    tuple(_SILU_EXP_ROOT / math.factorial(k + 1) if k else 1 + _SILU_EXP_ROOT for k in range(12)),
)


def _silu_slope(z: Array, z_lo: Array | None = None) -> Array:
    """d/dz [z sigmoid(z)] at z (+ z_lo), accurate to a few ulps including near its zero."""
    e = jnp.exp(-jnp.abs(z))
    r = 1 / (1 + e)
    sigmoid_slope = e * r * r
    zc = jnp.clip(z, -1e4, 1e4)  # the branch not taken stays finite (no inf * 0)
    one_plus_z, exp_z = 1 + zc, e  # e^z where z <= 0
    if z_lo is not None:
        sigmoid_slope = _numerics.sigmoid_and_slope(z, z_lo)[1]
        z_lo = jnp.where(z == zc, z_lo, 0.0)  # where z is clamped, so is its error
        one_plus_z, exp_z = one_plus_z + z_lo, e * (1 + z_lo)
    d = _numerics.offset_from(zc, _SILU_ROOT, z_lo)
    coefficients = _SILU_BRACKET_SERIES[1 if z.dtype == jnp.float64 else 0]
    series = d * _numerics.horner(coefficients[::-1], d)
    bracket = jnp.where(jnp.abs(d) < _SILU_WINDOW, series, one_plus_z + exp_z)
    return jnp.where(z <= 0, sigmoid_slope * bracket, r + zc * sigmoid_slope)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _silu(x: Array, beta: Array, corrected: bool = False) -> Array:
    if not corrected:  # beta is 1: as jax.nn's x sigma(x), but 0 (not nan) at -inf
        return jnp.maximum(x, -1e4) / (1 + jnp.exp(-x))
    return _zero_at_infinity(x, _numerics.sigmoid_and_slope(*_scaled(beta, x, corrected))[0])


@_jvp_from_partials(_silu)
def _silu_partials(x: Array, beta: Array, corrected: bool) -> _Partials:
    slope_x = lambda: _silu_x_slope(x, beta, corrected)
    slope_beta = lambda: _zero_at_infinity(
        x, x * _numerics.sigmoid_and_slope(*_scaled(beta, x, corrected))[1]
    )
    return slope_x, slope_beta


# silu''(z) = sigma'(z) h(z) with h = 2 - z tanh(z/2), even, zero at |z| = z2 ~ 2.3994.
# With a = |z|, d = a - z2 and q = sigmoid(-a), and since z2 sigma(z2) = 1 + z2 / 2,
# h = -(d (1 - 2q) + (2 + z2) q expm1(d)): two terms of the sign of -d, no cancellation.
_SILU_CURVATURE_ROOT = "2.39935728051546766783273969728228388852291757683721441783096"
_SILU_EXP_NEG_CURVATURE_ROOT = 0.0907762782268675917589  # e^-z2


def _silu_curvature(z: Array, z_lo: Array | None = None) -> Array:
    """d^2/dz^2 [z sigmoid(z)] at z (+ z_lo), accurate to a few ulps including near its zeros."""
    a = jnp.minimum(jnp.abs(z), 1e4)  # beyond, sigma' underflows in every dtype
    a_lo = None if z_lo is None else jnp.where(z >= 0, z_lo, -z_lo)
    e = jnp.exp(-a)
    d = _numerics.offset_from(a, _SILU_CURVATURE_ROOT, a_lo)
    # q expm1(d) = (e^-z2 - e) / (1 + e): that difference cancels near the root, expm1 not.
    q_expm1 = jnp.where(
        d < 1,
        e / (1 + e) * jnp.expm1(jnp.minimum(d, 1.0)),
        (_SILU_EXP_NEG_CURVATURE_ROOT - e) / (1 + e),
    )
    one_minus_2q = -jnp.expm1(-a) / (1 + e)
    root_plus_2 = float(Fraction(_SILU_CURVATURE_ROOT) + 2)
    h = -(d * one_minus_2q + root_plus_2 * q_expm1)
    return _numerics.sigmoid_and_slope(z, z_lo)[1] * h


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _silu_x_slope(x: Array, beta: Array, corrected: bool = False) -> Array:
    return _silu_slope(*_scaled(beta, x, corrected))


@_jvp_from_partials(_silu_x_slope)
def _silu_x_slope_partials(x: Array, beta: Array, corrected: bool) -> _Partials:
    curvature = _silu_curvature(*_scaled(beta, x, corrected))
    slope_x = lambda: beta * curvature
    slope_beta = lambda: _zero_at_infinity(x, curvature)
    return slope_x, slope_beta


@rounds_once
def silu(x: ArrayLike, *, beta: ArrayLike = 1.0) -> Array:
    r"""SiLU, also called swish: the input gated by its own sigmoid.

    .. math::
        \mathrm{silu}(x) = x\,\sigma(\beta x), \qquad
        \mathrm{silu}'(x) = \sigma'(z)\,(1 + z + e^{z}) \text{ at } z = \beta x

    ``beta = 1`` is SiLU (``jax.nn.silu``); other values are the swish of
    Ramachandran et al. (2017). Near the zero of the derivative at
    :math:`z_0 = -1 - W(1/e) \approx -1.2785` the bracket is evaluated as
    :math:`(z - z_0) + e^{z_0}\,\mathrm{expm1}(z - z_0)`, which does not cancel.

    Args:
        x: input array.
        beta: gate sharpness :math:`\beta`; may be traced and learned.

    Returns:
        An array of x's shape and floating dtype, in :math:`[-0.2785, \infty)` for ``beta = 1``.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.silu(jax.numpy.array([-1.0, 0.0, 1.0]))
        Array([-0.26894143,  0.        ,  0.7310586 ], dtype=float32)
    """
    x = as_array(x)
    return _silu(x, like(beta, x), not _is_one(beta))


swish = silu


_NEAR_ROOT = 0.35  # half-width of the window where a series replaces the formula


def _near_root(
    x: Array,
    root: str,
    series: tuple[tuple[float, ...], tuple[float, ...]],
    formula: Array,
    bounded: bool = False,
) -> Array:
    """formula, except within _NEAR_ROOT of root: there d p(d), d = x - root (no cancellation).

    ``series`` holds the coefficients of p, lowest degree first, for float32 and for
    float64. ``bounded`` promises that p stays finite at every x (|x| is clamped to a few
    tens), so that d need not be clamped for the branch not taken.
    """
    d = _numerics.offset_from(x, root)
    d_safe = d if bounded else jnp.clip(d, -_NEAR_ROOT, _NEAR_ROOT)
    coefficients = series[1] if x.dtype == jnp.float64 else series[0]
    near = d_safe * _numerics.estrin(coefficients[::-1], d_safe)
    return jnp.where(jnp.abs(d) < _NEAR_ROOT, near, formula)


# --- mish --------------------------------------------------------------------

# With u = e^x, mish'(x) = u P(x) / (u^2 + 2u + 2)^2 where
# P(x) = u^3 + 4u^2 + 6u + 4 + 4x(1 + u) vanishes at x1 (mish's minimum). Around x1,
# P = u1^3 E3 + 4 u1^2 E2 + u1 (6 + 4 x1) E1 + 4d + 4d u1 e^d with d = x - x1 and
# Ek = expm1(k d): every term has the sign of d, so nothing cancels.
_MISH_ROOT = "-1.192431214515495212137588340420739405600686409322529314552"
_MISH_U1 = 0.3034825352815289288214367435396430583645
_MISH_U1_SQUARED = 0.09210164922090445106838690830645709302703
_MISH_U1_CUBED = 0.02795124200917013645086646140401783191113
_MISH_E1_COEFFICIENT = 0.3733670191691929078259392670531114183835  # u1 (6 + 4 x1)


def _mish_parts(x: Array) -> tuple[Array, Array]:
    """tanh(softplus(x)) and mish'(x), both from one exponential and one expm1."""
    e = jnp.exp(-jnp.abs(x))
    # x <= 0, with u = e = e^x:
    n = e * (e + 2)
    gate_negative = n / (n + 2)
    d = _numerics.offset_from(jnp.clip(x, -1e4, 0.0), _MISH_ROOT)
    e1 = jnp.expm1(d)
    e2 = e1 * (2 + e1)
    e3 = e1 * (3 + e1 * (3 + e1))
    p = (
        _MISH_U1_CUBED * e3
        + 4 * _MISH_U1_SQUARED * e2
        + _MISH_E1_COEFFICIENT * e1
        + 4 * d * (1 + _MISH_U1 * (1 + e1))
    )
    slope_negative = e * p / jnp.square(n + 2)
    # x > 0, with e = e^-x:
    denominator = 1 + 2 * e + 2 * e * e
    gate_positive = (1 + 2 * e) / denominator
    curvature = jnp.where(e > 0, 4 * x * e * e * (1 + e), 0.0) / jnp.square(denominator)
    slope_positive = gate_positive + curvature
    negative = x <= 0
    return (
        jnp.where(negative, gate_negative, gate_positive),
        jnp.where(negative, slope_negative, slope_positive),
    )


@jax.custom_jvp
def _mish_slope(x: Array) -> Array:  # its rule follows mish'' below
    return _mish_parts(x)[1]


@jax.custom_jvp
def _mish(x: Array) -> Array:
    return _zero_at_infinity(x, _mish_parts(x)[0])


_mish.defjvps(lambda t, y, x: _mish_slope(x) * t)


# mish'' = 4u Q / N^3 with u = e^x, N = u^2 + 2u + 2 and
# Q = 2u^3 + 6u^2 + 8u + 4 + x (2 + 2u - 3u^2 - 2u^3); for x > 0 the same in e = e^-x.
# Q cancels near its zeros (x ~ -2.256 and 1.491): there Taylor series about them
# (coefficients of degree 1..22 from mpmath at 60 digits; tests/test_accuracy.py recomputes them).
_MISH_CURVATURE_LEFT_ROOT = "-2.2563763963607931200057485439501639062640349352343765919969"
_MISH_CURVATURE_LEFT_TAYLOR = (
    0.10875441073164269412, 0.098981938052558442793, 0.037361895610237292726,
    0.0033540526593358655036, -0.003860493935188505869, -0.0024800681093348929031,
    -0.00079278867241508665557, -0.00010538381919454746372, 0.000039783330530662919115,
    0.000032238496830115365617, 0.000011646398837640038285, 2.197227437007130377e-6,
    -1.9166311947636233247e-7, -3.2886827478945231872e-7, -1.3816841246787867919e-7,
    -3.1791948154634229937e-8, -9.0418367919707163275e-10, 2.7897687645450416641e-9,
    1.394724128786464638e-9, 3.7278297023353566071e-10, 3.5985149601048556359e-11,
    -1.9587615834869196211e-11,
)  # fmt: skip
# float32 keeps 13 terms: the window's terms fall by 3x or more each.
_MISH_CURVATURE_LEFT_SERIES = (_MISH_CURVATURE_LEFT_TAYLOR[:13], _MISH_CURVATURE_LEFT_TAYLOR)
_MISH_CURVATURE_RIGHT_ROOT = "1.49057117948542845929441890819790982112783350126472582128565"
_MISH_CURVATURE_RIGHT_TAYLOR = (
    -0.23069451159746053559, 0.28127277803034307478, -0.079707355165425306376,
    -0.066651739918527823501, 0.059988881162764971399, -0.00893224429208287213,
    -0.011535248884490046985, 0.0070027488703032731158, -0.00026852183677313477282,
    -0.0014013096671622837256, 0.00060827010593704836319, 0.000045850287012401908484,
    -0.00013717566879765471803, 0.000043428925985047436178, 9.5038763079439770144e-6,
    -0.000011636938135269530947, 2.594217668872636551e-6, 1.1453549858100460586e-6,
    -8.8650334226201149148e-7, 1.2221513820381239291e-7, 1.1103700734940430724e-7,
    -6.1681062458573401185e-8,
)  # fmt: skip
_MISH_CURVATURE_RIGHT_SERIES = (_MISH_CURVATURE_RIGHT_TAYLOR[:13], _MISH_CURVATURE_RIGHT_TAYLOR)


def _mish_curvature(x: Array) -> Array:
    """mish''(x), accurate to a few ulps including near its zeros; 0 at +-inf."""
    x = jnp.clip(x, -1e4, 1e4)  # beyond, e^-|x| underflows in every dtype
    # x <= 0, with u = e^x (an exponential per side, not e^-|x|, so that the third
    # derivative is right at 0 too):
    u = jnp.exp(jnp.where(x <= 0, x, 0.0))
    n = u * (u + 2) + 2
    q = (4 + u * (8 + u * (6 + 2 * u))) + x * (2 + u * (2 - u * (3 + 2 * u)))
    negative = 4 * u * q / (n * n * n)
    # x > 0, with e = e^-x:
    e = jnp.exp(-jnp.where(x > 0, x, 0.0))
    d = 1 + e * (2 + 2 * e)
    b = (2 + e * (6 + e * (8 + 4 * e))) - x * (2 + e * (3 - e * (2 + 2 * e)))
    positive = 4 * (e * e) * b / (d * d * d)
    formula = jnp.where(x <= 0, negative, positive)
    formula = _near_root(x, _MISH_CURVATURE_LEFT_ROOT, _MISH_CURVATURE_LEFT_SERIES, formula)
    return _near_root(x, _MISH_CURVATURE_RIGHT_ROOT, _MISH_CURVATURE_RIGHT_SERIES, formula)


_mish_slope.defjvps(lambda t, y, x: _mish_curvature(x) * t)


@rounds_once
def mish(x: ArrayLike) -> Array:
    r"""Mish: the input gated by the tanh of its softplus (Misra, 2019).

    .. math::
        \mathrm{mish}(x) = x \tanh(\mathrm{softplus}(x))
        = x\,\frac{u^2 + 2u}{u^2 + 2u + 2}, \quad u = e^x

    Both the gate and the derivative come from one exponential. Around the
    derivative's zero at :math:`x_1 \approx -1.1924` they are expanded in
    :math:`x - x_1` so that no terms cancel (``jax.nn.mish``'s derivative is
    hundreds of ulps off there).

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`[-0.3088, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> [round(float(v), 6) for v in jaxact.mish(jax.numpy.array([-1.0, 0.0, 1.0]))]
        [-0.303401, 0.0, 0.865098]
    """
    return _mish(x)


# --- gelu --------------------------------------------------------------------

_SQRT_HALF = 0.7071067811865475244008443621048490392848
_SQRT_HALF_PI = 1.253314137315500251207882642405522626503  # sqrt(pi / 2)
_INV_SQRT_2PI = 0.3989422804014326779399460599343818684759
_SQRT_2_OVER_PI = 0.7978845608028653558798921198687637369517

# Taylor coefficients (degree 1..18) of the derivative of each gelu at its zero,
# from mpmath at 60 digits; tests/test_accuracy.py recomputes them.
_GELU_ROOT = "-0.75179152469356445745790494677952403966447115342345384838654"
_GELU_TANH_ROOT = "-0.752461422071016258487954443288916090605392178037629270641773"
_GELU_TAYLOR = (
    0.43149399231404691979, 0.38828498299055199786, -0.018199676398671087101,
    -0.11400823329722170855, -0.014771522148244337718, 0.019421679838189065889,
    0.0045392283791254155736, -0.0022395380680734971513, -0.00074482683867468162427,
    0.0001863397462323351328, 0.000086159478611165716278, -0.000011214380188426641375,
    -7.7484613070037191253e-6, 4.3284506257392275468e-7, 5.7027649792421072372e-7,
    -1.6044265494246427586e-9, -3.5459866461783866484e-8, -1.396942086426202066e-9,
)  # fmt: skip
_GELU_TANH_TAYLOR = (
    0.43040009102485850908, 0.38751844613578892642, -0.015782853521848028342,
    -0.11394448308095898711, -0.016619328343052562692, 0.019682309459833117487,
    0.0052610592549219118794, -0.0024227318458750972992, -0.00092744202302054489627,
    0.00026392764052681052568, 0.00012425227802639781938, -0.00003495617169443611733,
    -0.000015950896871645104756, 5.9186117108940050477e-6, 2.4335516344299544448e-6,
    -9.8986477474336658341e-7, -4.3102482988029014812e-7, 1.4157556987729472945e-7,
)  # fmt: skip
# float32 (and the half types, computed in float32) takes instead of 11 Taylor terms the 8
# coefficients of the polynomial interpolating gelu'(x) / d at the window's Chebyshev nodes:
# within 0.05 eps of it on the window (tests/test_accuracy.py refits it and measures), with
# fewer multiply-adds in every gradient.
_GELU_FIT32 = (
    0.43149399358782403, 0.3882849826675309, -0.018200009288720714, -0.11400814889665675,
    -0.014757902103832538, 0.019418230609023156, 0.004360255523762744, -0.0021943450316286198,
)  # fmt: skip
_GELU_TANH_FIT32 = (
    0.430400092604064, 0.3875184456861144, -0.01578326626088695, -0.11394436555593186,
    -0.01660243512205157, 0.019677499502135872, 0.0050388701095997615, -0.0023594775349506368,
)  # fmt: skip
_GELU_SERIES = (_GELU_FIT32, _GELU_TAYLOR)
_GELU_TANH_SERIES = (_GELU_TANH_FIT32, _GELU_TANH_TAYLOR)
# Taylor coefficients of the Mills ratio M(t) = Phi(-t) / phi(t) at t = 1.3, from mpmath at
# 50 digits (tests/test_accuracy.py recomputes them), for float64: the 23 reach its precision
# on |t - 1.3| <= 0.7.
_MILLS_CENTRE = 1.3
_MILLS_TAYLOR = (
    0.5648671289696161399303, -0.2656727323394990180906, 0.1097462884641337082063,
    -0.04100085244537506580747, 0.01411129507128653066415, -0.004531233770540515188816,
    0.001370115194930643486447, -0.0003928691453043826652049, 0.0001074231632543682527101,
    -0.00002813544811930043740908, 0.000007084708069927768407834,
    -0.000001720484329854030770808, 4.040065367597940338153e-7, -9.194429477433065591143e-8,
    2.031992525379744150931e-8, -4.368559462959598796621e-9, 9.150498719968726921066e-10,
    -1.869996840802155468755e-10, 3.733057126069958228714e-11, -7.287891654805583679062e-12,
    1.392815605472616175218e-12, -2.60820541318627745299e-13, 4.78976773526545502877e-14,
)  # fmt: skip


def _mills_ratio(t: Array) -> Array:
    """Phi(-t) / phi(t) for t >= 0 (float64: t >= 0.6).

    float32: the erfcx rational alone (0.1 eps from the truth down to t = 0).
    float64: a Taylor series up to t = 2, the erfcx rationals beyond.
    """
    if t.dtype != jnp.float64:
        return _SQRT_HALF_PI * _numerics.erfcx(t * _SQRT_HALF)
    far = _SQRT_HALF_PI * _numerics.erfcx(jnp.maximum(t, 2.0) * _SQRT_HALF)
    d = jnp.clip(t, 0.6, 2.0) - _MILLS_CENTRE
    near = _numerics.estrin(_MILLS_TAYLOR[::-1], d)
    return jnp.where(t <= 2.0, near, far)


# float64 evaluates Phi on |x| < 0.6 by its Taylor series: Phi(x) - 1/2 = x sum_k c_k x^(2k),
# c_k = (-1)^k / (sqrt(2 pi) 2^k k! (2k + 1)), whose terms fall by 10x or more there.
_NORMAL_CDF_TAYLOR = tuple(
    (-1) ** k * _INV_SQRT_2PI / (2**k * math.factorial(k) * (2 * k + 1)) for k in range(12)
)


def _normal_cdf_parts(x: Array) -> tuple[Array, Array, Array, Array]:
    """phi(x), the Mills ratio M(|x|), Phi(-|x|) = phi M, and Phi(x).

    Phi(-|x|) has full relative accuracy, and Phi(|x|) = 1 - Phi(-|x|) >= 1/2 does not
    cancel. One Gaussian serves both sides (no erfc, whose argument's rounding the lower
    tail would magnify). float64 takes M from 0.6 on, and Phi below by its Taylor series.
    """
    t = jnp.abs(x)
    density = _INV_SQRT_2PI * _numerics.exp_neg_half_square(x)
    wide = x.dtype == jnp.float64
    mills = _mills_ratio(jnp.maximum(t, 0.6) if wide else t)
    tail = density * mills
    cdf = jnp.where(x < 0, tail, 1 - tail)
    if wide:
        xc = jnp.clip(x, -0.6, 0.6)
        central = 0.5 + xc * _numerics.estrin(_NORMAL_CDF_TAYLOR[::-1], xc * xc)
        cdf = jnp.where(t < 0.6, central, cdf)
    return density, mills, tail, cdf


def _normal_cdf(x: Array) -> Array:
    """Phi(x) to a few ulps (see :func:`_normal_cdf_parts`)."""
    return _normal_cdf_parts(x)[3]


def _gelu_exact_slope_formula(x: Array) -> Array:
    """Phi(x) + x phi(x), accurate near its zero and in both tails."""
    x = jnp.clip(x, -64.0, 64.0)  # beyond, phi underflows and the slope is 0 or 1
    density, mills, _, cdf = _normal_cdf_parts(x)
    formula = jnp.where(x < -0.6, density * (mills + x), cdf + x * density)
    return _near_root(x, _GELU_ROOT, _GELU_SERIES, formula, bounded=True)


# 2 sqrt(2/pi) and 2 sqrt(2/pi) 0.044715 as decimal strings, split into hi + lo per dtype.
_GELU_TANH_K1 = "1.595769121605730711759784239737527473903"
_GELU_TANH_K3 = "0.07135481627260024877633875227986354099559"


def _gelu_tanh_argument(x: Array) -> tuple[Array, Array]:
    """z = 2 sqrt(2/pi) (x + 0.044715 x**3) rounded, and its error z_lo, for |x| <= 27.

    In the lower tail the gate is about e^z, whose relative error is the absolute
    error of z (up to 90 in float32, 1500 in float64). z is x (k1 + k3 x^2), the
    exponential waiting on four operations only; the error of each rounding is
    recovered, in parallel, from exact products of :func:`_numerics.halves`.
    """
    k3_hi, k3_lo = _numerics.halves_constant(_GELU_TANH_K3, x.dtype)
    k1, k1_error = _numerics.split_constant(_GELU_TANH_K1, x.dtype)
    k3 = _numerics.split_constant(_GELU_TANH_K3, x.dtype)[0]
    square = x * x
    # XLA may compute z in several kernels and contract k3 x^2 + k1 into one rounding in
    # some of them only: e^z and the correction would then disagree by an ulp of z (60 eps
    # of the gate). The absolute value (a no-op: k3 x^2 >= 0) keeps the product apart.
    cubic = jnp.abs(k3 * square)
    w = jnp.add(cubic, k1)
    z = x * w
    x_hi, x_lo = _numerics.halves(x)
    square_error = (x_hi * x_hi - square) + x_lo * (x + x_hi)  # x^2 = x_hi^2 + x_lo (x + x_hi)
    square_hi, square_lo = _numerics.halves(square)
    cubic_error = ((k3_hi * square_hi - cubic) + k3_hi * square_lo) + k3_lo * square
    w_error = _numerics.two_sum(cubic, k1, w)[1] + k1_error  # k1 + cubic - w, k1's rounding
    w_hi, w_lo = _numerics.halves(w)
    z_error = ((x_hi * w_hi - z) + x_hi * w_lo) + x_lo * w  # x w - z
    return z, z_error + x * (w_error + cubic_error + k3 * square_error)


def _gelu_tanh_bound(dtype: DTypeLike) -> float:
    """Beyond this |x| the gate of tanh-gelu is 0 or 1 in dtype; clamping keeps x**3 finite."""
    return 27.0 if dtype == jnp.float64 else 10.0


def _gelu_tanh_parts(x: Array) -> tuple[Array, Array]:
    """The gate sigmoid(z) of tanh-gelu, and gelu's derivative."""
    # Beyond the bound the gate at the clamped x is 1, or 0 to within float32's smallest
    # normal; below -bound the slope is set to 0, and gelu itself by its caller.
    bound = _gelu_tanh_bound(x.dtype)
    xc = jnp.clip(x, -bound, bound)
    gate, gate_slope = _numerics.sigmoid_and_slope(*_gelu_tanh_argument(xc))
    dz = _SQRT_2_OVER_PI * (2 + 6 * 0.044715 * xc * xc)
    formula = gate + xc * dz * gate_slope
    slope = _near_root(xc, _GELU_TANH_ROOT, _GELU_TANH_SERIES, formula, bounded=True)
    return gate, jnp.where(x < -bound, 0.0, slope)


# Taylor coefficients (degree 1..22) of gelu'' about its zeros, from mpmath at 60 digits
# (tests/test_accuracy.py recomputes them): tanh-gelu's is even, exact gelu's is
# phi(x) (2 - x^2), whose bracket an exact product keeps free of cancellation.
_GELU_TANH_CURVATURE_ROOT = "1.41850400879082835554803354559964269792415831878853240273794"
_GELU_TANH_CURVATURE_TAYLOR = (
    -0.4095488174124190962, 0.4320811115938480132, -0.0081689518839448036129,
    -0.16109481693213482575, 0.056750540975161722615, 0.020035361162701274111,
    -0.016711507560853919007, 0.00076320011369161621885, 0.0026434611466966619229,
    -0.00075142007750985029318, -0.00026173756856854424373, 0.00017619942054101046804,
    6.1388796682434663118e-6, -0.000029186541051047748193, 4.8843417595228518167e-6,
    3.5688649669617478137e-6, -1.5017465385495819778e-6, -2.3134876605993592725e-7,
    2.7799341689365080703e-7, -2.4601994673299103906e-8, -3.6027218726493861122e-8,
    1.123704279456637546e-8,
)  # fmt: skip
# float32 keeps 13 terms, as for mish''.
_GELU_TANH_CURVATURE_SERIES = (_GELU_TANH_CURVATURE_TAYLOR[:13], _GELU_TANH_CURVATURE_TAYLOR)


def _gelu_tanh_curvature(x: Array) -> Array:
    """Second derivative of tanh-gelu: sigma'(z) (z'' x + 2 z' - x tanh(z/2) z'^2), even in x."""
    bound = _gelu_tanh_bound(x.dtype)
    xa = jnp.minimum(jnp.abs(x), bound)
    z, z_lo = _gelu_tanh_argument(xa)
    gate_slope = _numerics.sigmoid_and_slope(z, z_lo)[1]
    half_tanh = -jnp.expm1(-z) / (1 + jnp.exp(-z))  # tanh(z / 2), z >= 0
    square = xa * xa
    dz = _SQRT_2_OVER_PI * (2 + 6 * 0.044715 * square)
    bracket = _SQRT_2_OVER_PI * (4 + 24 * 0.044715 * square) - xa * half_tanh * dz * dz
    formula = gate_slope * bracket
    series = _near_root(xa, _GELU_TANH_CURVATURE_ROOT, _GELU_TANH_CURVATURE_SERIES, formula)
    return jnp.where(jnp.abs(x) <= bound, series, 0.0)


def _gelu_exact_curvature(x: Array) -> Array:
    """phi(x) (2 - x^2), with x^2 = hi + lo exactly so that 2 - x^2 does not cancel."""
    x = jnp.clip(x, -64.0, 64.0)  # beyond, phi underflows in every dtype
    density = _INV_SQRT_2PI * _numerics.exp_neg_half_square(x)
    square, square_lo = _numerics.two_product(x, x, bounded=True)
    return density * -(square_lo - (2 - square))  # not (2 - hi) - lo, which XLA refolds


@jax.custom_jvp
def _gelu_exact_slope(x: Array) -> Array:
    return _gelu_exact_slope_formula(x)


_gelu_exact_slope.defjvps(lambda t, y, x: _gelu_exact_curvature(x) * t)


@jax.custom_jvp
def _gelu_exact(x: Array) -> Array:
    return _zero_at_infinity(x, _normal_cdf(x))


_gelu_exact.defjvps(lambda t, y, x: _gelu_exact_slope(x) * t)


@jax.custom_jvp
def _gelu_tanh_slope(x: Array) -> Array:
    return _gelu_tanh_parts(x)[1]


_gelu_tanh_slope.defjvps(lambda t, y, x: _gelu_tanh_curvature(x) * t)


@jax.custom_jvp
def _gelu_tanh(x: Array) -> Array:
    return jnp.where(x < -_gelu_tanh_bound(x.dtype), 0.0, x * _gelu_tanh_parts(x)[0])


_gelu_tanh.defjvps(lambda t, y, x: _gelu_tanh_slope(x) * t)


@rounds_once
def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    r"""Gaussian error linear unit (Hendrycks and Gimpel, 2016).

    .. math::
        \mathrm{gelu}(x) = x\,\Phi(x) \quad\text{or, with approximate=True,}\quad
        x\,\sigma\!\left(2\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)

    :math:`\tfrac12(1 + \tanh u) = \sigma(2u)` is used for the approximate form
    (no cancellation for negative ``x``), its argument carrying its rounding error
    (in the lower tail the gate is :math:`e^z`). The exact form evaluates
    :math:`\Phi(-|x|)` as :math:`\phi(x)` times a Mills-ratio rational function,
    with :math:`e^{-x^2/2}` free of the rounding of :math:`x^2`, and
    :math:`\Phi(|x|)` as one minus it. Both derivatives switch to a series around
    their zero near ``-0.752`` (float32: a polynomial fitted there; float64: the Taylor
    series).

    Args:
        x: input array.
        approximate: use the tanh approximation (the default, as ``jax.nn.gelu``).

    Returns:
        An array of x's shape and floating dtype, in :math:`[-0.17, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> [round(float(v), 6) for v in jaxact.gelu(jax.numpy.array([-1.0, 0.0, 1.0]))]
        [-0.158808, 0.0, 0.841192]
        >>> [round(float(v), 6) for v in jaxact.gelu(jax.numpy.array([-1.0, 1.0]), False)]
        [-0.158655, 0.841345]
    """
    return _gelu_tanh(x) if approximate else _gelu_exact(x)


# --- the ELU family ------------------------------------------------------------


@jax.custom_jvp
def _expm1(x: Array) -> Array:
    return jnp.expm1(x)


# jax's own rule is expm1(x) + 1, which is 0 in float32 for x < -17.
_expm1.defjvps(lambda t, y, x: jnp.exp(x) * t)


def _non_positive(x: Array) -> Array:
    """x where x <= 0, else 0: the negative branch's input, with slope 1 at 0 itself.

    Unlike ``jnp.minimum(x, 0)``, whose derivative at the tie is 1/2, so that the
    derivative at 0 is the left branch's, as ``jax.nn``'s.
    """
    return jnp.where(x > 0, 0.0, x)


@rounds_once
def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit (Clevert et al., 2015).

    .. math::
        \mathrm{elu}(x) = \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases},
        \qquad \mathrm{elu}'(x) = \alpha e^{x} \text{ for } x \le 0

    The negative side's derivative is :math:`\alpha e^{x}` itself, not
    :math:`\mathrm{expm1}(x) + 1` (which is 0 in float32 below ``-17``). At 0
    (and -0) every derivative is the left branch's, as ``jax.nn.elu``'s:
    :math:`\alpha` for the first and second (the one-sided first derivatives are
    :math:`\alpha` and 1, equal for the default :math:`\alpha = 1`).

    Args:
        x: input array.
        alpha: saturation value :math:`-\alpha` for :math:`x \to -\infty`; may be traced.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-\alpha, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.elu(jax.numpy.array([-1.0, 0.0, 1.0]))
        Array([-0.63212055,  0.        ,  1.        ], dtype=float32)
    """
    x = as_array(x)
    return jnp.where(x > 0, x, like(alpha, x) * _expm1(_non_positive(x)))


@rounds_once
def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable ELU (Barron, 2017).

    .. math::
        \mathrm{celu}(x) = \max(x, 0) + \alpha\left(e^{\min(x, 0)/\alpha} - 1\right)

    Continuously differentiable: the derivative at 0 is 1, as ``jax.nn.celu``'s. The
    second derivative jumps there from :math:`1/\alpha` to 0; at 0 (and -0) it is the
    left branch's :math:`1/\alpha` (``jax.nn.celu`` gives :math:`1/(4\alpha)`, an
    artefact of the 1/2 that ``jnp.minimum`` and ``jnp.maximum`` each take at a tie).

    Args:
        x: input array.
        alpha: scale :math:`\alpha > 0`; may be traced.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-\alpha, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.celu(jax.numpy.array([-1.0, 0.0, 1.0]), alpha=2.0)
        Array([-0.7869387,  0.       ,  1.       ], dtype=float32)
    """
    x = as_array(x)
    alpha = like(alpha, x)
    return jnp.where(x > 0, x, alpha * _expm1(_non_positive(x) / alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@rounds_once
def selu(x: ArrayLike) -> Array:
    r"""Scaled ELU (Klambauer et al., 2017), self-normalising under LeCun init.

    .. math::
        \mathrm{selu}(x) = \lambda\,\mathrm{elu}(x, \alpha), \quad
        \lambda \approx 1.0507, \ \alpha \approx 1.6733

    At 0 (and -0) every derivative is the left branch's, as ``jax.nn.selu``'s:
    :math:`\lambda\alpha \approx 1.7581` (the one-sided first derivatives are
    :math:`\lambda\alpha` and :math:`\lambda`).

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-\lambda\alpha, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.selu(jax.numpy.array([-1.0, 0.0, 1.0]))
        Array([-1.1113307,  0.       ,  1.050701 ], dtype=float32)
    """
    x = as_array(x)
    return _SELU_SCALE * jnp.where(x > 0, x, _SELU_ALPHA * _expm1(_non_positive(x)))


# --- algebraic and other smooth activations ------------------------------------


@jax.custom_jvp
def _soft_sign(x: Array) -> Array:
    # For |x| > 1 the second form keeps inf finite: soft_sign(inf) = 1.
    return jnp.where(jnp.abs(x) > 1, jnp.sign(x) / (1 + 1 / jnp.abs(x)), x / (1 + jnp.abs(x)))


# 1 / (1 + |x|)^2, formed as a square of a reciprocal so that it underflows, never overflows.
_soft_sign.defjvps(lambda t, y, x: jnp.square(1 / (1 + jnp.abs(x))) * t)


@rounds_once
def soft_sign(x: ArrayLike) -> Array:
    r"""Soft-sign activation.

    .. math::
        \mathrm{soft\_sign}(x) = \frac{x}{1 + |x|}, \qquad
        \mathrm{soft\_sign}'(x) = \frac{1}{(1 + |x|)^2}

    The derivative is formed directly (the automatic one subtracts two nearly
    equal terms and loses every digit for :math:`|x| > 10^4`). The second derivative
    :math:`-2\operatorname{sign}(x)/(1 + |x|)^3` jumps at 0; there (and at -0) it is
    the right branch's, -2, as ``jax.nn.soft_sign``'s.

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, strictly between -1 and 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.soft_sign(jax.numpy.array([-1.0, 0.0, 3.0]))
        Array([-0.5 ,  0.  ,  0.75], dtype=float32)
    """
    return _soft_sign(x)


softsign = soft_sign


def _squareplus_parts(x: Array, b: Array) -> tuple[Array, Array]:
    """x clamped to the finite range (no inf / inf) and sqrt(x**2 + b) without overflow."""
    x = jnp.clip(x, jnp.finfo(x.dtype).min, jnp.finfo(x.dtype).max)
    return x, jnp.hypot(x, jnp.sqrt(b))


@jax.custom_jvp
def _squareplus(x: Array, b: Array) -> Array:
    xc, root = _squareplus_parts(x, b)
    # x + root cancels for x < 0; there it is b / (root - x). Halved first: no overflow.
    return jnp.where(x >= 0, x / 2 + root / 2, (b / 4) / (root / 2 - xc / 2))


@_jvp_from_partials(_squareplus)
def _squareplus_partials(x: Array, b: Array) -> _Partials:
    slope_x = lambda: _squareplus_slope(x, b)
    slope_b = lambda: 1 / (4 * _squareplus_parts(x, b)[1])
    return slope_x, slope_b


@jax.custom_jvp
def _squareplus_slope(x: Array, b: Array) -> Array:
    xc, root = _squareplus_parts(x, b)
    return jnp.where(xc >= 0, (1 + xc / root) / 2, (b / 2) / root / (root - xc))


@_jvp_from_partials(_squareplus_slope)
def _squareplus_slope_partials(x: Array, b: Array) -> _Partials:
    xc, root = _squareplus_parts(x, b)
    # b / (2 r^3) and -x / (4 r^3) with r = sqrt(x^2 + b), divided one r at a time:
    # r^3 would overflow (0 / inf is fine, inf / inf is not).
    slope_x = lambda: (b / 2) / root / root / root
    slope_b = lambda: -(xc / root) / (4 * root) / root
    return slope_x, slope_b


@rounds_once
def squareplus(x: ArrayLike, b: ArrayLike = 4) -> Array:
    r"""Squareplus (Barron, 2021), an algebraic softplus.

    .. math::
        \mathrm{squareplus}(x) = \frac{x + \sqrt{x^2 + b}}{2}
        = \frac{b}{2\left(\sqrt{x^2 + b} - x\right)}

    The second form is used for :math:`x < 0` (the first cancels there), and
    :math:`\sqrt{x^2 + b}` is a ``hypot`` so that nothing overflows.

    Args:
        x: input array.
        b: smoothness :math:`b \ge 0`; may be traced.

    Returns:
        An array of x's shape and floating dtype, in :math:`(0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.squareplus(jax.numpy.array([-1000.0, 0.0, 1.0]))
        Array([9.99999e-04, 1.000000e+00, 1.618034e+00], dtype=float32)
    """
    x = as_array(x)
    return _squareplus(x, like(b, x))


@rounds_once
def sparse_plus(x: ArrayLike) -> Array:
    r"""Sparse plus (Martins and Astudillo, 2016), a piecewise-quadratic softplus.

    .. math::
        \mathrm{sparse\_plus}(x) = \begin{cases}
        0 & x \le -1 \\ \frac{(x + 1)^2}{4} & -1 < x < 1 \\ x & x \ge 1 \end{cases}

    Continuously differentiable; the second derivative jumps at :math:`\pm 1` and
    is 0 there, as ``jax.nn.sparse_plus``'s.

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`[0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sparse_plus(jax.numpy.array([-2.0, 0.0, 2.0]))
        Array([0.  , 0.25, 2.  ], dtype=float32)
    """
    x = as_array(x)
    quadratic = jnp.square(jnp.clip(x, -1.0, 1.0) + 1) / 4  # clipped: no inf * 0 in the gradient
    return jnp.where(x <= -1, 0.0, jnp.where(x >= 1, x, quadratic))


@rounds_once
def sparse_sigmoid(x: ArrayLike) -> Array:
    r"""Sparse sigmoid, the derivative of :func:`sparse_plus`.

    .. math::
        \mathrm{sparse\_sigmoid}(x) = \tfrac12 \operatorname{clip}(x + 1, 0, 2)

    At the kinks :math:`x = \pm 1` the derivative is :math:`1/4`, the mean of the
    one-sided 0 and :math:`1/2`, as ``jax.nn.sparse_sigmoid``'s.

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`[0, 1]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sparse_sigmoid(jax.numpy.array([-2.0, 0.0, 0.5]))
        Array([0.  , 0.5 , 0.75], dtype=float32)
    """
    return 0.5 * jnp.clip(x + 1.0, 0.0, 2.0)


@rounds_once
def exponential(x: ArrayLike) -> Array:
    r"""Exponential activation (Keras ``exponential``).

    .. math::
        \mathrm{exponential}(x) = e^{x}

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.exponential(jax.numpy.array([0.0, 1.0]))
        Array([1.       , 2.7182817], dtype=float32)
    """
    return jnp.exp(x)


def _sinh_minus_x_cosh_series(a: Array) -> Array:
    """a cosh(a) - sinh(a) = sum_k 2k a^(2k+1) / (2k+1)!, for 0 <= a <= 1 (positive terms only)."""
    terms = 10 if a.dtype == jnp.float64 else 6
    coefficients = [
        2 * k / float(np.prod(np.arange(1, 2 * k + 2, dtype=float))) for k in range(1, terms + 1)
    ]
    a2 = a * a
    return a * a2 * _numerics.horner(coefficients[::-1], a2)


@jax.custom_jvp
def _tanh_shrink(x: Array) -> Array:
    a = jnp.abs(x)
    e = jnp.exp(-jnp.minimum(a, 1e4))
    # |x| < 1: (a cosh a - sinh a) / cosh a by its series; |x| >= 1: (a - 1) + 2 sigmoid(-2a).
    small = _sinh_minus_x_cosh_series(jnp.minimum(a, 1.0)) / ((1 / e + e) / 2)
    large = (a - 1) + 2 * e * e / (1 + e * e)
    return jnp.sign(x) * jnp.where(a < 1, small, large)


# d/dx (x - tanh x) = tanh(x)**2: no cancellation.
_tanh_shrink.defjvps(lambda t, y, x: jnp.square(_tanh(x)) * t)


@rounds_once
def tanh_shrink(x: ArrayLike) -> Array:
    r"""Tanh-shrink (``torch.nn.Tanhshrink``).

    .. math::
        \mathrm{tanh\_shrink}(x) = x - \tanh(x), \qquad
        \mathrm{tanh\_shrink}'(x) = \tanh(x)^2

    The difference cancels for small :math:`|x|`; there it is evaluated as
    :math:`(x\cosh x - \sinh x)/\cosh x` by a series of positive terms.

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.tanh_shrink(jax.numpy.array([-1.0, 1e-3, 2.0]))
        Array([-2.384058e-01,  3.333332e-10,  1.035972e+00], dtype=float32)
    """
    return _tanh_shrink(x)
