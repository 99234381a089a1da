"""Numerical building blocks shared by the activations.

Each helper is accurate to a few ulps over the whole range of float32 and
float64; none of them is public. They exist because the obvious formula loses
precision somewhere: ``1 - sigmoid(x)`` for large ``x``, ``exp(-x * x)`` once
``x * x`` has been rounded, ``Phi(x) + x * phi(x)`` near its zero.
"""

from collections.abc import Sequence
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike, DTypeLike


def sigmoid_and_slope(x: Array, x_lo: Array | None = None) -> tuple[Array, Array]:
    r"""Returns :math:`\sigma(x)` and :math:`\sigma'(x) = \sigma(x)\sigma(-x)` from one exponential.

    Both are formed from :math:`\sigma(-|x|) = e / (1 + e)`, :math:`e = e^{-|x|}`, which
    keeps full relative accuracy in both tails; :math:`\sigma(|x|)`, one minus it, is at
    least 1/2 and does not cancel. With ``x_lo`` (the rounding error of a product, see
    :func:`two_product`) they are evaluated at ``x + x_lo`` to first order, which keeps
    the tails, where the relative error is ``|x|`` times the error of ``x``, accurate.

    Both results are a few operations on that one array, so a program that needs both
    (the forward and backward pass of a training step) keeps only it between its kernels;
    with the exponential and the reciprocal as two arrays, XLA keeps both (four kernels, 3x
    jax.nn's time for gelu at 4.2e6 elements). The ``abs`` (of a positive number) leaves
    the division a single user, so that XLA fuses it into a lone consumer (a forward pass
    alone).
    """
    e = jnp.exp(-jnp.abs(x))
    if x_lo is not None:
        e = e * (1 - jnp.where(x >= 0, x_lo, -x_lo))  # e^-|x + x_lo|, to 1e-9 relative
    lower = jnp.abs(e / (1 + e))
    return jnp.where(x >= 0, 1 - lower, lower), lower * (1 - lower)


def sigmoid_curvature(x: Array, x_lo: Array | None = None) -> Array:
    r"""Returns :math:`\sigma''(x) = \sigma'(x)(1 - 2\sigma(x)) = -\sigma'(x)\tanh(x/2)`.

    A product of two factors accurate to a few ulps near 0 and in the tails (0 at 0),
    smooth at 0 for a further derivative. With ``x_lo`` it is evaluated at ``x + x_lo``
    to first order, through :math:`\sigma^{(3)} = e r^4 (\operatorname{expm1}(-|x|)^2 - 2e)`
    with :math:`e = e^{-|x|}`, :math:`r = 1/(1 + e)`.
    """
    e = jnp.exp(-jnp.abs(x))
    r = 1 / (1 + e)
    curvature = -(e * r * r) * jnp.tanh(x / 2)
    if x_lo is None:
        return curvature
    m = jnp.expm1(-jnp.abs(x))
    return curvature + x_lo * (e * jnp.square(r * r) * (m * m - 2 * e))


def _split(a: Array) -> tuple[Array, Array]:
    """Veltkamp's split of a into hi + lo, each with half the mantissa bits (|a| <= 2**60)."""
    mantissa_bits = jnp.finfo(a.dtype).nmant + 1
    scaled = float(2 ** ((mantissa_bits + 1) // 2) + 1) * a
    hi = scaled - (scaled - a)
    return hi, a - hi


def _half_mask(dtype: DTypeLike) -> tuple[np.ndarray, type]:
    """The bit mask keeping a float's sign, exponent and upper half of its significand."""
    if np.dtype(dtype) == np.float64:
        return np.array(~((1 << 27) - 1) & (2**64 - 1), np.uint64), np.uint64
    return np.array(~((1 << 12) - 1) & (2**32 - 1), np.uint32), np.uint32


def halves(a: Array) -> tuple[Array, Array]:
    """a as hi + lo exactly, hi its upper 12 (float32) or 26 (float64) significant bits.

    Unlike Veltkamp's split (:func:`_split`), a mask: one operation, no rounding, and the
    product of two such ``hi`` (or of a ``hi`` and a ``lo``) is exact in a's dtype.
    """
    mask, bits = _half_mask(a.dtype)
    hi = lax.bitcast_convert_type(lax.bitcast_convert_type(a, bits) & mask, a.dtype)
    return hi, a - hi


def halves_constant(value: str, dtype: DTypeLike) -> tuple[np.ndarray, np.ndarray]:
    """A constant given as a decimal string as :func:`halves` of it: hi, and the rest rounded."""
    exact = Fraction(value)
    mask, bits = _half_mask(dtype)
    hi = (np.asarray(float(exact), dtype=dtype).view(bits) & mask).view(dtype)
    return hi, np.asarray(float(exact - Fraction(float(hi))), dtype=dtype)


_PRODUCT_BOUND = 2.0**60


def two_product(a: ArrayLike, b: ArrayLike, bounded: bool = False) -> tuple[Array, Array]:
    """Returns ``p = a * b`` rounded and its rounding error ``a * b - p`` (Dekker).

    The error is exact while ``|a|, |b| <= 2**60`` and set to 0 beyond (where
    the activations using it have saturated); it never overflows. ``bounded``
    promises ``|a|, |b| <= 2**60`` and skips the guard.
    """
    a, b = jnp.broadcast_arrays(a, b)
    p = a * b
    inside: Array | bool = True
    if not bounded:
        inside = (jnp.abs(a) <= _PRODUCT_BOUND) & (jnp.abs(b) <= _PRODUCT_BOUND)
        a, b = jnp.where(inside, a, 0.0), jnp.where(inside, b, 0.0)
    (ah, al), (bh, bl) = _split(a), _split(b)
    error = ((ah * bh - a * b) + ah * bl + al * bh) + al * bl
    return p, error if bounded else jnp.where(inside, error, 0.0)


def two_sum(a: ArrayLike, b: ArrayLike, s: Array | None = None) -> tuple[Array, Array]:
    """Returns ``s = a + b`` rounded and its rounding error ``a + b - s`` (Knuth).

    ``s``, if given, is ``a + b`` already computed. A constant belongs in ``b``: with a
    constant ``a``, XLA rewrote ``s - a`` (measured: the error came out 40x too large).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    s = a + b if s is None else s
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def exp_neg_half_square(x: Array) -> Array:
    r"""Returns :math:`e^{-x^2/2}` with a relative error of a few ulps for every ``x``.

    The naive ``exp(-x * x / 2)`` inherits the rounding error of ``x * x``,
    magnified by ``x**2 / 2`` (about 60 ulps at ``x = 11`` in float32). That rounding
    error is recovered from :func:`halves` of ``x`` (``hi * hi`` is exact) and corrected for.
    """
    # Beyond 64 the result underflows in every dtype; clamping keeps the square finite.
    x = jnp.clip(x, -64.0, 64.0)
    hi, lo = halves(x)
    square = x * x
    error = (hi * hi - square) + lo * (x + hi)  # square + error == x**2 (to 2^-11 of an ulp)
    return jnp.exp(-square / 2) * (1 - error / 2)


# Rational approximations of erfcx(z) = exp(z**2) * erfc(z) for z >= 1, from Moshier's
# Cephes library (ndtr.c): P/Q on [1, 8), R/S on [8, inf); Q and S are monic; highest
# degree first. In float32, P/Q serves alone from 0 to 64 (see erfcx).
_ERFCX_P = (
    2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
    4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
    9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2,
)  # fmt: skip
_ERFCX_Q = (
    1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
    9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
    1.65666309194161350182e3, 5.57535340817727675546e2,
)  # fmt: skip
_ERFCX_R = (
    5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
    6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0,
)  # fmt: skip
_ERFCX_S = (
    1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
    1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0,
)  # fmt: skip


def horner(coefficients: Sequence[float], x: Array) -> Array:
    """Evaluates the polynomial with the given coefficients (highest degree first) at x."""
    result = jnp.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        result = result * x + c
    return result


def estrin(coefficients: Sequence[float], x: Array) -> Array:
    """The polynomial with the given coefficients (highest degree first) at x, by Estrin.

    Same value as :func:`horner` for a series whose terms fall fast, but pairs of terms
    are independent, so a vector unit is not held up by one long chain of dependent
    multiply-adds (measured: 8% off gelu's gradient on CPU).
    """
    terms = [jnp.asarray(c, x.dtype) for c in reversed(coefficients)]  # lowest degree first
    power = x
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] * power for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(terms) - len(terms) % 2 :]
        power = power * power
    return jnp.broadcast_to(terms[0], x.shape)


def erfcx(z: Array) -> Array:
    r"""Scaled complementary error function :math:`e^{z^2}\operatorname{erfc}(z)`, clamped to 64.

    Unlike ``exp(z**2) * erfc(z)`` it neither overflows nor loses accuracy for large
    ``z``. float32: P/Q alone for ``z >= 0`` (in exact arithmetic within 0.1 eps of the
    truth from 0 to 64). float64, for ``z >= 1``: P/Q below 8, R/S from 8 on, one division
    for both (every coefficient is positive, and no power of ``z <= 64`` overflows).
    """
    if z.dtype != jnp.float64:
        near = jnp.clip(z, 0.0, 64.0)
        return estrin(_ERFCX_P, near) / estrin(_ERFCX_Q, near)
    near = jnp.clip(z, 1.0, 8.0)
    far = jnp.clip(z, 8.0, 64.0)
    below = z < 8
    numerator = jnp.where(below, estrin(_ERFCX_P, near), estrin(_ERFCX_R, far))
    denominator = jnp.where(below, estrin(_ERFCX_Q, near), estrin(_ERFCX_S, far))
    return numerator / denominator


def split_constant(value: str, dtype: DTypeLike) -> tuple[np.ndarray, np.ndarray]:
    """A constant given as a decimal string as hi + lo in ``dtype`` (lo is hi's rounding error)."""
    exact = Fraction(value)
    hi = np.asarray(float(exact), dtype=dtype)
    return hi, np.asarray(float(exact - Fraction(float(hi))), dtype=dtype)


def offset_from(x: Array, value: str, x_lo: Array | None = None) -> Array:
    """Returns x (+ x_lo) - value to full precision, for a constant given as a decimal string.

    The constant is split into hi + lo in x's dtype; near the constant x - hi is
    exact (Sterbenz), so the only rounding is the final subtraction of lo.
    Written as ``-(lo - (x - hi))``: XLA folds ``(x - hi) - lo`` into
    ``x - (hi + lo)`` under jit, which rounds lo away.
    """
    hi, lo = split_constant(value, x.dtype)
    if x_lo is not None:
        lo = lo - x_lo
    return -jnp.subtract(lo, x - hi)
