"""Smooth activations: sigmoid, tanh, softplus, the self-gated family, the ELU family.

Every function here is accurate to a few ulps in value and first derivative over
the whole float range. Where JAX's automatic derivative cancels or overflows, a
``jax.custom_jvp`` rule right under the function computes the derivative from a
formula that does not; the rules are written in ``jax.numpy`` so they can be
differentiated again (hessians, ``jacfwd``).
"""

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxact import _numerics
from jaxact._dtypes import like, rounds_once


def _tangent(primal_out: Array, *terms) -> Array:
    """Sum of ``slope() * tangent`` over the tangents that are not symbolic zeros."""
    parts = [slope() * t for slope, t in terms if not isinstance(t, SymbolicZero)]
    if not parts:
        return jnp.zeros_like(primal_out)
    return functools.reduce(jnp.add, parts) * jnp.ones_like(primal_out)


def _zero_at_infinity(x: Array, y: Array) -> Array:
    """x * g(x) where g vanishes faster than x grows: the limit 0 instead of inf * 0 = nan."""
    return jnp.where(jnp.isinf(x) & (y == 0), 0.0, x * y)


def _is_one(value) -> bool:
    """True for the literal default 1, where ``value * x`` is exact and needs no correction."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 1


# --- sigmoid -----------------------------------------------------------------


@jax.custom_jvp
def _sigmoid(x: Array) -> Array:
    return _numerics.sigmoid_and_slope(x)[0]


@_sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y, slope = _numerics.sigmoid_and_slope(x)
    return y, slope * t


# With a gain, a * x is rounded, and the tails' relative error is |a x| times that
# rounding: the rounding error (Dekker's exact product) corrects them to first order.
@jax.custom_jvp
def _sigmoid_gain(x: Array, gain: Array) -> Array:
    return _numerics.sigmoid_and_slope(*_numerics.two_product(gain, x))[0]


@functools.partial(_sigmoid_gain.defjvp, symbolic_zeros=True)
def _sigmoid_gain_jvp(primals, tangents):
    (x, gain), (tx, tgain) = primals, tangents
    y, slope = _numerics.sigmoid_and_slope(*_numerics.two_product(gain, x))
    slope_x = lambda: gain * slope
    slope_gain = lambda: _zero_at_infinity(x, slope)
    return y, _tangent(y, (slope_x, tx), (slope_gain, tgain))


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
    if _is_one(gain):
        return _sigmoid(x)
    return _sigmoid_gain(x, like(gain, x))


# --- tanh --------------------------------------------------------------------


@jax.custom_jvp
def _tanh(x: Array) -> Array:
    return jnp.tanh(x)


@_tanh.defjvp
def _tanh_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    e = jnp.exp(-2 * jnp.abs(x))
    # sech(x)**2 from exp(-2|x|): unlike 1 - tanh(x)**2 it does not vanish for |x| > 9.
    return jnp.tanh(x), 4 * e / jnp.square(1 + e) * t


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
def _softplus_jvp(primals, tangents):
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
def _softplus_beta_jvp(primals, tangents):
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
            never switches.

    Returns:
        An array of x's shape and floating dtype, in :math:`(0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softplus(jax.numpy.array([-1000.0, 0.0, 1000.0]))
        Array([0.000000e+00, 6.931472e-01, 1.000000e+03], dtype=float32)
    """
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
    return -_softplus(-x)


# --- silu / swish --------------------------------------------------------------

# silu'(z) = sigma'(z) (1 + z + e^z) vanishes at z0 = -1 - W(1/e). Writing
# d = z - z0, the bracket is d + e^{z0} expm1(d): two terms of one sign, so it
# keeps full relative accuracy near the zero where the textbook form cancels.
_SILU_ROOT = "-1.278464542761073795109358739022980155439477488619745765453"
_SILU_EXP_ROOT = 0.2784645427610737951093587390229801554394774886197


# expm1(d) = sum_k d^k / k!, highest degree first: the series used within _SILU_WINDOW of z0.
_EXPM1_TAYLOR = tuple(1 / math.factorial(k) for k in range(15, 0, -1))
_SILU_WINDOW = 0.35


def _silu_slope(z: Array, z_lo: Array | None = None) -> Array:
    """d/dz [z sigmoid(z)] at z (+ z_lo), accurate to a few ulps including near its zero."""
    e = jnp.exp(-jnp.abs(z))
    r = 1 / (1 + e)
    sigmoid_slope = e * r * r
    if z_lo is not None:
        sigmoid_slope = _numerics.sigmoid_and_slope(z, z_lo)[1]
        z_lo = jnp.where(z >= -1e4, z_lo, 0.0)  # where z is clamped below, so is its error
    exp_z = e if z_lo is None else e * (1 + z_lo)  # e^(z + z_lo) where z <= 0
    # Clamped so that the branch not taken stays finite (no inf * 0 in second derivatives).
    d = _numerics.offset_from(jnp.clip(z, -1e4, 0.0), _SILU_ROOT, z_lo)
    # expm1(d) = e^z / e^{z0} - 1 needs no second exponential; near the root (where that
    # difference would cancel) a short series replaces it: 8 terms reach float32's precision.
    terms = len(_EXPM1_TAYLOR) if z.dtype == jnp.float64 else 8
    near = jnp.clip(d, -_SILU_WINDOW, _SILU_WINDOW)
    series = near * _numerics.horner(_EXPM1_TAYLOR[-terms:], near)
    expm1_d = jnp.where(jnp.abs(d) < _SILU_WINDOW, series, exp_z / _SILU_EXP_ROOT - 1)
    negative = sigmoid_slope * (d + _SILU_EXP_ROOT * expm1_d)
    positive = r + jnp.where(e > 0, z * sigmoid_slope, 0.0)
    return jnp.where(z <= 0, negative, positive)


def _scaled(beta: Array, x: Array, corrected: bool) -> tuple[Array, Array | None]:
    """beta * x, and its rounding error if ``corrected`` (else None: beta is exactly 1)."""
    return _numerics.two_product(beta, x) if corrected else (beta * x, None)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _silu(x: Array, beta: Array, corrected: bool = False) -> Array:
    return _zero_at_infinity(x, _numerics.sigmoid_and_slope(*_scaled(beta, x, corrected))[0])


@functools.partial(_silu.defjvp, symbolic_zeros=True)
def _silu_jvp(corrected, primals, tangents):
    (x, beta), (tx, tbeta) = primals, tangents
    z, z_lo = _scaled(beta, x, corrected)
    y = _silu(x, beta, corrected)
    slope_x = lambda: _silu_slope(z, z_lo)
    slope_beta = lambda: _zero_at_infinity(x, x * _numerics.sigmoid_and_slope(z, z_lo)[1])
    return y, _tangent(y, (slope_x, tx), (slope_beta, tbeta))


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
    return _silu(x, like(beta, x), not _is_one(beta))


swish = silu


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
def _mish(x: Array) -> Array:
    return _zero_at_infinity(x, _mish_parts(x)[0])


@_mish.defjvp
def _mish_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    gate, slope = _mish_parts(x)
    return _zero_at_infinity(x, gate), slope * t


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

_SQRT_HALF_DIGITS = "0.7071067811865475244008443621048490392848"
_SQRT_HALF = float(_SQRT_HALF_DIGITS)
_SQRT_HALF_PI = 1.253314137315500251207882642405522626503  # sqrt(pi / 2)
_TWO_OVER_SQRT_PI = 1.128379167095512573896158903121545171688
_INV_SQRT_2PI = 0.3989422804014326779399460599343818684759
_SQRT_2_OVER_PI = 0.7978845608028653558798921198687637369517

# Taylor coefficients (degree 1..18) of the derivative of each gelu at its zero,
# from mpmath at 60 digits; tests/test_smooth.py recomputes them.
_GELU_ROOT = "-0.75179152469356445745790494677952403966447115342345384838654"
_GELU_TAYLOR = (
    0.43149399231404691979, 0.38828498299055199786, -0.018199676398671087101,
    -0.11400823329722170855, -0.014771522148244337718, 0.019421679838189065889,
    0.0045392283791254155736, -0.0022395380680734971513, -0.00074482683867468162427,
    0.0001863397462323351328, 0.000086159478611165716278, -0.000011214380188426641375,
    -7.7484613070037191253e-6, 4.3284506257392275468e-7, 5.7027649792421072372e-7,
    -1.6044265494246427586e-9, -3.5459866461783866484e-8, -1.396942086426202066e-9,
)  # fmt: skip
_GELU_TANH_ROOT = "-0.752461422071016258487954443288916090605392178037629270641773"
_GELU_TANH_TAYLOR = (
    0.43040009102485850908, 0.38751844613578892642, -0.015782853521848028342,
    -0.11394448308095898711, -0.016619328343052562692, 0.019682309459833117487,
    0.0052610592549219118794, -0.0024227318458750972992, -0.00092744202302054489627,
    0.00026392764052681052568, 0.00012425227802639781938, -0.00003495617169443611733,
    -0.000015950896871645104756, 5.9186117108940050477e-6, 2.4335516344299544448e-6,
    -9.8986477474336658341e-7, -4.3102482988029014812e-7, 1.4157556987729472945e-7,
)  # fmt: skip
_NEAR_ROOT = 0.35  # half-width of the window where the Taylor series replaces the formula


def _near_root(x: Array, root: str, taylor: tuple[float, ...], formula: Array) -> Array:
    """formula, except within _NEAR_ROOT of root: there the Taylor series (no cancellation)."""
    d = _numerics.offset_from(x, root)
    d_safe = jnp.clip(d, -_NEAR_ROOT, _NEAR_ROOT)
    # Within the window the terms fall by 3x or more each: in float32 the 12th would add
    # less than 1e-9 relative (a fiftieth of an epsilon), so 11 are kept.
    terms = len(taylor) if x.dtype == jnp.float64 else 11
    series = d_safe * _numerics.estrin(taylor[terms - 1 :: -1], d_safe)
    return jnp.where(jnp.abs(d) < _NEAR_ROOT, series, formula)


# Taylor coefficients of the Mills ratio M(t) = Phi(-t) / phi(t) at t = 1.3, from mpmath at
# 50 digits (tests/test_accuracy.py recomputes them); 13 terms reach float32 precision
# on |t - 1.3| <= 0.7, 23 reach float64. XLA's erfc is ~5 ulps off for t near 1.4.
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
    """Phi(-t) / phi(t) for t >= 0.6: a Taylor series up to t = 2, the erfcx rational beyond."""
    terms = 23 if t.dtype == jnp.float64 else 13
    d = jnp.clip(t, 0.6, 2.0) - _MILLS_CENTRE
    near = _numerics.horner(_MILLS_TAYLOR[terms - 1 :: -1], d)
    far = _SQRT_HALF_PI * _numerics.erfcx(jnp.maximum(t, 2.0) * _SQRT_HALF)
    return jnp.where(t <= 2.0, near, far)


def _normal_cdf(x: Array) -> Array:
    """Phi(x) to a few ulps: phi(x) times the Mills ratio below -0.6, erfc above."""
    gaussian = _numerics.exp_neg_half_square(x)  # e^{-z^2} for z = -x / sqrt(2)
    lower = _INV_SQRT_2PI * gaussian * _mills_ratio(-jnp.minimum(x, -0.6))
    # erfc magnifies the rounding of z = -x / sqrt(2) by 2 z^2: take the rounding error dz
    # of the product and correct to first order, erfc'(z) = -2/sqrt(pi) e^{-z^2}.
    half_hi, half_lo = _split_constant(_SQRT_HALF_DIGITS, x.dtype)
    z, dz = _numerics.two_product(-x, half_hi)
    dz = dz - jnp.clip(x, -64.0, 64.0) * half_lo  # beyond 64 the Gaussian factor is 0
    upper = 0.5 * (jax.lax.erfc(z) - dz * _TWO_OVER_SQRT_PI * gaussian)
    return jnp.where(x < -0.6, lower, upper)


def _gelu_exact_slope(x: Array) -> Array:
    """Phi(x) + x phi(x), accurate near its zero and in both tails."""
    x = jnp.clip(x, -64.0, 64.0)  # beyond, phi underflows and the slope is 0 or 1
    density = _INV_SQRT_2PI * _numerics.exp_neg_half_square(x)
    mills = _mills_ratio(-jnp.minimum(x, -0.6))
    formula = jnp.where(x < -0.6, density * (mills + x), _normal_cdf(x) + x * density)
    return _near_root(x, _GELU_ROOT, _GELU_TAYLOR, formula)


# 2 sqrt(2/pi) and 2 sqrt(2/pi) 0.044715 as decimal strings, split into hi + lo per dtype.
_GELU_TANH_K1 = "1.595769121605730711759784239737527473903"
_GELU_TANH_K3 = "0.07135481627260024877633875227986354099559"


def _split_constant(value: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    exact = Fraction(value)
    hi = np.asarray(float(exact), dtype=dtype)
    return hi, np.asarray(float(exact - Fraction(float(hi))), dtype=dtype)


def _gelu_tanh_argument(x: Array) -> tuple[Array, Array]:
    """z = 2 sqrt(2/pi) (x + 0.044715 x**3) as hi + lo, for |x| <= 10.

    In the lower tail the gate is about e^z, whose relative error is the absolute
    error of z (up to 70 in magnitude): z is formed in double-word arithmetic.
    """
    (k1, k1_lo), (k3, k3_lo) = (_split_constant(k, x.dtype) for k in (_GELU_TANH_K1, _GELU_TANH_K3))
    a, a_lo = _numerics.two_product(k1, x, bounded=True)
    square, square_lo = _numerics.two_product(x, x, bounded=True)
    cube, cube_lo = _numerics.two_product(square, x, bounded=True)
    b, b_lo = _numerics.two_product(k3, cube, bounded=True)
    z, z_lo = _numerics.two_sum(a, b)
    z_lo = z_lo + (a_lo + k1_lo * x) + (b_lo + k3 * (cube_lo + square_lo * x) + k3_lo * cube)
    return z, z_lo


def _gelu_tanh_parts(x: Array) -> tuple[Array, Array]:
    """The gate sigmoid(z) of tanh-gelu and its derivative."""
    # Beyond |x| = 10 the gate is 0 or 1 to float64 precision; clamping keeps x**3 finite.
    inside = jnp.abs(x) <= 10
    xc = jnp.clip(x, -10.0, 10.0)
    z, z_lo = _gelu_tanh_argument(xc)
    z = jnp.where(inside, z, 100 * x)  # |z| >= 1000 outside: sigmoid(z) is 0 or 1
    gate, gate_slope = _numerics.sigmoid_and_slope(z, jnp.where(inside, z_lo, 0.0))
    dz = _SQRT_2_OVER_PI * (2 + 6 * 0.044715 * xc * xc)
    formula = gate + xc * dz * gate_slope
    return gate, _near_root(xc, _GELU_TANH_ROOT, _GELU_TANH_TAYLOR, formula)


@jax.custom_jvp
def _gelu_exact(x: Array) -> Array:
    return _zero_at_infinity(x, _normal_cdf(x))


_gelu_exact.defjvps(lambda t, y, x: _gelu_exact_slope(x) * t)


@jax.custom_jvp
def _gelu_tanh(x: Array) -> Array:
    return _zero_at_infinity(x, _gelu_tanh_parts(x)[0])


_gelu_tanh.defjvps(lambda t, y, x: _gelu_tanh_parts(x)[1] * t)


@rounds_once
def gelu(x: ArrayLike, approximate: bool = True) -> Array:
    r"""Gaussian error linear unit (Hendrycks and Gimpel, 2016).

    .. math::
        \mathrm{gelu}(x) = x\,\Phi(x) \quad\text{or, with approximate=True,}\quad
        x\,\sigma\!\left(2\sqrt{2/\pi}\,(x + 0.044715 x^3)\right)

    :math:`\tfrac12(1 + \tanh u) = \sigma(2u)` is used for the approximate form
    (no cancellation for negative ``x``). The exact form evaluates the lower
    tail of :math:`\Phi` as :math:`\phi(x)` times a Mills-ratio rational
    function, with :math:`e^{-x^2/2}` free of the rounding of :math:`x^2`. Both
    derivatives switch to a Taylor series around their zero near ``-0.752``.

    Args:
        x: input array.
        approximate: use the tanh approximation (the default, as ``jax.nn.gelu``).

    Returns:
        An array of x's shape and floating dtype, in :math:`[-0.17, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.gelu(jax.numpy.array([-1.0, 0.0, 1.0]), approximate=False)
        Array([-0.15865526,  0.        ,  0.8413447 ], dtype=float32)
    """
    return _gelu_tanh(x) if approximate else _gelu_exact(x)


# --- the ELU family ------------------------------------------------------------


@jax.custom_jvp
def _expm1(x: Array) -> Array:
    return jnp.expm1(x)


# jax's own rule is expm1(x) + 1, which is 0 in float32 for x < -17.
_expm1.defjvps(lambda t, y, x: jnp.exp(x) * t)


@rounds_once
def elu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Exponential linear unit (Clevert et al., 2015).

    .. math::
        \mathrm{elu}(x) = \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases},
        \qquad \mathrm{elu}'(x) = \alpha e^{x} \text{ for } x \le 0

    The negative side's derivative is :math:`\alpha e^{x}` itself, not
    :math:`\mathrm{expm1}(x) + 1` (which is 0 in float32 below ``-17``).

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
    return jnp.where(x > 0, x, like(alpha, x) * _expm1(jnp.minimum(x, 0.0)))


@rounds_once
def celu(x: ArrayLike, alpha: ArrayLike = 1.0) -> Array:
    r"""Continuously differentiable ELU (Barron, 2017).

    .. math::
        \mathrm{celu}(x) = \max(x, 0) + \alpha\left(e^{\min(x, 0)/\alpha} - 1\right)

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
    alpha = like(alpha, x)
    return jnp.where(x > 0, x, alpha * _expm1(jnp.minimum(x, 0.0) / alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@rounds_once
def selu(x: ArrayLike) -> Array:
    r"""Scaled ELU (Klambauer et al., 2017), self-normalising under LeCun init.

    .. math::
        \mathrm{selu}(x) = \lambda\,\mathrm{elu}(x, \alpha), \quad
        \lambda \approx 1.0507, \ \alpha \approx 1.6733

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-\lambda\alpha, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.selu(jax.numpy.array([-1.0, 0.0, 1.0]))
        Array([-1.1113307,  0.       ,  1.050701 ], dtype=float32)
    """
    return _SELU_SCALE * jnp.where(x > 0, x, _SELU_ALPHA * _expm1(jnp.minimum(x, 0.0)))


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
    equal terms and loses every digit for :math:`|x| > 10^4`).

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`(-1, 1)`.

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


@functools.partial(_squareplus.defjvp, symbolic_zeros=True)
def _squareplus_jvp(primals, tangents):
    (x, b), (tx, tb) = primals, tangents
    y = _squareplus(x, b)
    xc, root = _squareplus_parts(x, b)
    slope_x = lambda: jnp.where(xc >= 0, (1 + xc / root) / 2, (b / 2) / root / (root - xc))
    slope_b = lambda: 1 / (4 * root)
    return y, _tangent(y, (slope_x, tx), (slope_b, tb))


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
    return _squareplus(x, like(b, x))


@rounds_once
def sparse_plus(x: ArrayLike) -> Array:
    r"""Sparse plus (Martins and Astudillo, 2016), a piecewise-quadratic softplus.

    .. math::
        \mathrm{sparse\_plus}(x) = \begin{cases}
        0 & x \le -1 \\ \frac{(x + 1)^2}{4} & -1 < x < 1 \\ x & x \ge 1 \end{cases}

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`[0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sparse_plus(jax.numpy.array([-2.0, 0.0, 2.0]))
        Array([0.  , 0.25, 2.  ], dtype=float32)
    """
    quadratic = jnp.square(jnp.clip(x, -1.0, 1.0) + 1) / 4  # clipped: no inf * 0 in the gradient
    return jnp.where(x <= -1, 0.0, jnp.where(x >= 1, x, quadratic))


@rounds_once
def sparse_sigmoid(x: ArrayLike) -> Array:
    r"""Sparse sigmoid, the derivative of :func:`sparse_plus`.

    .. math::
        \mathrm{sparse\_sigmoid}(x) = \tfrac12 \operatorname{clip}(x + 1, 0, 2)

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
_tanh_shrink.defjvps(lambda t, y, x: jnp.square(jnp.tanh(x)) * t)


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
