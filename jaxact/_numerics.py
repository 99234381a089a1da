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
from jax import Array
from jax.typing import ArrayLike, DTypeLike


def sigmoid_and_slope(x: Array, x_lo: Array | None = None) -> tuple[Array, Array]:
    r"""Returns :math:`\sigma(x)` and :math:`\sigma'(x) = \sigma(x)\sigma(-x)` from one exponential.

    Both are formed from :math:`e^{-|x|}`, so neither tail cancels. With ``x_lo``
    (the rounding error of a product, see :func:`two_product`) they are
    evaluated at ``x + x_lo`` to first order, which keeps the tails, where the
    relative error is ``|x|`` times the error of ``x``, accurate.
    """
    e = jnp.exp(-jnp.abs(x))
    r = 1 / (1 + e)
    s, slope = jnp.where(x >= 0, r, e * r), e * r * r
    if x_lo is None:
        return s, slope
    return s + x_lo * slope, slope * (1 + x_lo * (1 - 2 * s))


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


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Returns ``s = a + b`` rounded and its rounding error ``a + b - s`` (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def exp_neg_half_square(x: Array) -> Array:
    r"""Returns :math:`e^{-x^2/2}` with a relative error of a few ulps for every ``x``.

    The naive ``exp(-x * x / 2)`` inherits the rounding error of ``x * x``,
    magnified by ``x**2 / 2`` (about 60 ulps at ``x = 11`` in float32). Dekker's
    exact product splits ``x**2`` into ``hi + lo`` and corrects for ``lo``.
    """
    mantissa_bits = jnp.finfo(x.dtype).nmant + 1
    splitter = float(2 ** ((mantissa_bits + 1) // 2) + 1)
    # Beyond 64 the result underflows in every dtype; clamping keeps the split finite.
    x = jnp.clip(x, -64.0, 64.0)
    scaled = splitter * x
    hi = scaled - (scaled - x)
    lo = x - hi
    square = x * x
    error = ((hi * hi - square) + 2 * hi * lo) + lo * lo  # square + error == x**2 exactly
    return jnp.exp(-square / 2) * (1 - error / 2)


# Rational approximations of erfcx(z) = exp(z**2) * erfc(z) for z >= 1, from Moshier's
# Cephes library (ndtr.c): P/Q on [1, 8), R/S on [8, inf); Q and S are monic.
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
    r"""Scaled complementary error function :math:`e^{z^2}\operatorname{erfc}(z)` for ``z >= 1``.

    Unlike ``exp(z**2) * erfc(z)`` it neither overflows nor loses accuracy for
    large ``z``. On [8, inf) the rational function is evaluated in ``1/z`` so
    that no power of ``z`` overflows.
    """
    near = jnp.clip(z, 1.0, 8.0)
    w = 1 / jnp.maximum(z, 8.0)
    far = w * horner(_ERFCX_R[::-1], w) / horner(_ERFCX_S[::-1], w)
    # horner(reversed R) is w**5 R(1/w); dividing by w**6 S(1/w) leaves a factor w.
    return jnp.where(z < 8, horner(_ERFCX_P, near) / horner(_ERFCX_Q, near), far)


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
