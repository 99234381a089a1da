"""Piecewise-linear activations: the ReLU family, hard approximations, shrinkage, the step.

Their derivatives are exact away from the kinks. At a kink (and at +-0) the
derivative is jax.nn's where jax.nn has the function, and otherwise one of the
two one-sided derivatives; every one is tested at the exact kink:

==============  ==============================  ========================
function        kink                            derivative there
==============  ==============================  ========================
relu            0                               0 (jax.nn)
relu6           0, 6                            0, 0 (jax.nn)
leaky_relu      0                               1 (jax.nn)
prelu, rrelu    0                               1 (the right one)
hard_tanh       min_val, max_val                1, 1 (jax.nn)
hard_sigmoid    the two ends of the line        0, 0 (jax.nn; the outer ones)
hard_silu       -3, 3                           0, 1 (jax.nn)
threshold       threshold                       0 (the left one)
hard_shrink     -threshold, threshold           0, 0 (the inner ones)
soft_shrink     -threshold, threshold           0, 0 (the inner ones)
==============  ==============================  ========================

The Heaviside step has derivative 0 almost everywhere, so it carries a
selectable surrogate gradient instead.

Types follow jax.nn (see :mod:`jaxact._dtypes`): relu and hard_tanh keep
integers, the others return floats. Complex inputs raise a ``TypeError``: every
function here compares its input with a fixed point. Hyperparameters are checked
when the function is called (see :mod:`jaxact._validation`).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from jaxact import _numerics
from jaxact._dtypes import (
    as_array,
    astype,
    cast,
    complex_formula,
    is_complex,
    like,
    result_type,
    rounds_once,
)
from jaxact._validation import check_hyperparameters, is_traced


def _real_input(name: str, x: ArrayLike) -> jax.Array:
    """x as an array; a complex one raises the TypeError that says why ``name`` refuses it."""
    x = as_array(x)
    if is_complex(x):
        complex_formula(name)  # raises
    return x


def _in_jax_nn_dtype(
    name: str, reference: Callable[[Array], Array], fn: Callable[[Array], Array], x: ArrayLike
) -> Array:
    """fn(x) computed and returned in the dtype and weak type ``reference`` (jax.nn's) gives."""
    x = _real_input(name, x)
    dtype, weak = result_type(reference, x)
    return cast(fn(astype(x, dtype)), dtype, weak)


def identity(x: ArrayLike) -> Array:
    r"""Identity (linear) activation.

    .. math::
        \mathrm{identity}(x) = x

    Args:
        x: input array; its dtype is kept, integers included.

    Returns:
        ``x`` as an array.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.identity(jax.numpy.array([-1.0, 2.0]))
        Array([-1.,  2.], dtype=float32)
    """
    return jnp.asarray(x)


linear = identity


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    .. math::
        \mathrm{relu}(x) = \max(x, 0), \qquad \mathrm{relu}'(0) = 0

    Args:
        x: input array; integer dtypes are kept (bools become integers), as in ``jax.nn.relu``.

    Returns:
        An array of x's shape and jax.nn.relu's dtype, in :math:`[0, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.relu(jax.numpy.array([-1.0, 0.0, 2.0]))
        Array([0., 0., 2.], dtype=float32)
    """
    return _in_jax_nn_dtype("relu", jax.nn.relu, _relu, x)


@jax.custom_jvp
def _relu(x: Array) -> Array:
    return jnp.maximum(x, 0)


_relu.defjvps(lambda t, y, x: jnp.where(x > 0, t, jnp.zeros_like(t)))


@jax.custom_jvp
def _relu6(x: Array) -> Array:
    return jnp.minimum(jnp.maximum(x, 0), 6)


_relu6.defjvps(lambda t, y, x: jnp.where((x > 0) & (x < 6), t, jnp.zeros_like(t)))


def relu6(x: ArrayLike) -> Array:
    r"""ReLU capped at 6 (Howard et al., 2017).

    .. math::
        \mathrm{relu6}(x) = \min(\max(x, 0), 6), \qquad \mathrm{relu6}'(0) = \mathrm{relu6}'(6) = 0

    Args:
        x: input array; integers become the default float, as ``jax.nn.relu6`` gives
            (and unlike it, also under strict dtype promotion).

    Returns:
        An array of x's shape and floating dtype (the default float for integer x), in
        :math:`[0, 6]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.relu6(jax.numpy.array([-1.0, 3.0, 9.0]))
        Array([0., 3., 6.], dtype=float32)
    """
    return _in_jax_nn_dtype("relu6", jax.nn.relu6, _relu6, x)


@rounds_once
def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 1e-2) -> Array:
    r"""Leaky ReLU (Maas et al., 2013).

    .. math::
        \mathrm{leaky\_relu}(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases}

    Args:
        x: input array.
        negative_slope: the slope :math:`a` for negative inputs; may be traced.

    Returns:
        An array of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.leaky_relu(jax.numpy.array([-2.0, 3.0]))
        Array([-0.02,  3.  ], dtype=float32)
    """
    return _leaky(as_array(x), negative_slope)


def _leaky(x: Array, negative_slope: ArrayLike) -> Array:
    return jnp.where(x >= 0, x, like(negative_slope, x) * x)


# For prelu and rrelu, which check their own parameters (rrelu's slopes are drawn, one per
# element: checking them would copy them to the host on every eager call).
_leaky_checked_by_caller = rounds_once(_leaky, name="leaky_relu", check=False)


def prelu(x: ArrayLike, *, negative_slope: ArrayLike = 0.25) -> Array:
    r"""Parametric ReLU (He et al., 2015), functional form with the slope given.

    .. math::
        \mathrm{prelu}(x) = \max(x, 0) + a \min(x, 0)

    The slope broadcasts against ``x``, so one value per channel is a vector of
    the last axis's size. :class:`jaxact.linen.PReLU` learns it.

    Args:
        x: input array.
        negative_slope: slope :math:`a`, a scalar or an array broadcastable to x.

    Returns:
        An array of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> slopes = jax.numpy.array([0.1, 0.5])  # one per channel (last axis)
        >>> jaxact.prelu(jax.numpy.array([[-1.0, -1.0]]), negative_slope=slopes)
        Array([[-0.1, -0.5]], dtype=float32)
    """
    check_hyperparameters("prelu", negative_slope=negative_slope)
    return _leaky_checked_by_caller(_real_input("prelu", x), negative_slope)


def rrelu(
    x: ArrayLike,
    *,
    lower: ArrayLike = 1 / 8,
    upper: ArrayLike = 1 / 3,
    key: Array | None = None,
) -> Array:
    r"""Randomised leaky ReLU (Xu et al., 2015; ``torch.nn.RReLU``).

    .. math::
        \mathrm{rrelu}(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases},
        \quad a \sim U(\mathrm{lower}, \mathrm{upper})

    With a ``key`` (training) each element draws its own slope; without one
    (evaluation) the slope is the mean :math:`(\mathrm{lower} + \mathrm{upper})/2`.

    Args:
        x: input array.
        lower: lower bound of the slope.
        upper: upper bound of the slope.
        key: a ``jax.random`` key, or ``None`` for the deterministic mean slope.

    Returns:
        An array of x's shape and floating dtype; with a ``key``, random where ``x < 0``.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.rrelu(jax.numpy.array([-24.0, 1.0]))
        Array([-5.5,  1. ], dtype=float32)
    """
    check_hyperparameters("rrelu", lower=lower, upper=upper)
    x = _real_input("rrelu", x)
    if key is None:
        slope = (jnp.asarray(lower) + jnp.asarray(upper)) / 2
    else:
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
        slope = jax.random.uniform(key, x.shape, dtype, minval=lower, maxval=upper)
    return _leaky_checked_by_caller(x, slope)


def hard_tanh(x: ArrayLike, *, min_val: ArrayLike = -1.0, max_val: ArrayLike = 1.0) -> Array:
    r"""Hard tanh: the identity clipped to ``[min_val, max_val]``.

    .. math::
        \mathrm{hard\_tanh}(x) = \min(\max(x, m), M)

    Args:
        x: input array; integer dtypes are kept (bools become integers), as in
            ``jax.nn.hard_tanh``, while both bounds are whole numbers; a fractional
            bound makes the result a float.
        min_val: lower bound :math:`m` (default -1).
        max_val: upper bound :math:`M \ge m` (default 1).

    Returns:
        An array of x's shape and jax.nn.hard_tanh's dtype, in :math:`[m, M]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.hard_tanh(jax.numpy.array([-2.0, 0.5, 2.0]))
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    check_hyperparameters("hard_tanh", min_val=min_val, max_val=max_val)
    x = _real_input("hard_tanh", x)
    dtype, weak = result_type(jax.nn.hard_tanh, x)
    if not jnp.issubdtype(dtype, jnp.inexact):
        if _whole(min_val) and _whole(max_val):
            # Bounds beyond the integer type's range cannot bind: clamping them first keeps
            # -1 from wrapping to 255 in uint8.
            info = jnp.iinfo(dtype)
            min_val, max_val = (_clamp(v, info.min, info.max) for v in (min_val, max_val))
        else:  # a fractional bound: integers become floats, as jnp would promote them
            dtype, weak = result_type(jax.nn.relu6, x)
    x = astype(x, dtype)
    low, high = like(min_val, x), like(max_val, x)
    return cast(jnp.where(x > high, high, jnp.where(x < low, low, x)), dtype, weak)


def _whole(value: ArrayLike) -> bool:
    """A bound that an integer type can hold exactly: a whole number (or an integer array)."""
    if is_traced(value):
        return not jnp.issubdtype(jnp.result_type(value), jnp.inexact)
    array = np.asarray(value, dtype=np.float64)
    return bool(np.all((array == np.round(array)) | np.isinf(array)))


def _clamp(value: ArrayLike, low: int, high: int) -> ArrayLike:
    if is_traced(value):
        return jnp.clip(value, low, high)
    return np.clip(np.asarray(value, np.float64), low, high)


@rounds_once
def hard_sigmoid(x: ArrayLike, *, slope: ArrayLike = 1 / 6, offset: ArrayLike = 0.5) -> Array:
    r"""Hard sigmoid: a line clipped to ``[0, 1]``.

    .. math::
        \mathrm{hard\_sigmoid}(x) = \min(\max(s x + c, 0), 1)

    The defaults (:math:`s = 1/6, c = 1/2`) give ``jax.nn.hard_sigmoid``,
    :math:`\mathrm{relu6}(x + 3)/6`; ``slope=0.2`` gives the Keras 2 form
    :math:`\mathrm{clip}(0.2x + 0.5, 0, 1)`. The derivative is 0 at the kinks.

    The line is evaluated as :math:`s\,(x + c/s)`: near the lower kink
    :math:`x + c/s` is exact, where :math:`s x + c` cancels (a relative error of
    :math:`10^{-3}` at ``x = -2.9999`` in float32). :math:`c/s` is formed in the
    parameters' own precision, so it is exactly 3 for the defaults.

    Args:
        x: input array.
        slope: slope :math:`s \ne 0` of the linear part; may be traced.
        offset: value :math:`c` at 0; may be traced.

    Returns:
        An array of x's shape and floating dtype, in :math:`[0, 1]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.hard_sigmoid(jax.numpy.array([-3.0, 0.0, 1.0]), slope=0.2)
        Array([0. , 0.5, 0.7], dtype=float32)
    """
    x = as_array(x)
    y = (x + like(offset / slope, x)) * like(slope, x)
    # NaN falls through to the last branch: NaN out, derivative 0 (as jax.nn.hard_sigmoid).
    outside = jnp.where(y <= 0, 0.0, jnp.where(y >= 1, 1.0, jax.lax.stop_gradient(y)))
    return jnp.where((y > 0) & (y < 1), y, outside)


@jax.custom_jvp
def _hard_silu(x: Array) -> Array:
    # 0 below -3 written out, so that -inf gives the limit 0 rather than -inf * 0.
    return jnp.where(x <= -3, 0.0, jnp.where(x >= 3, x, x * (x + 3) / 6))


# (2x + 3) / 6 formed as (x + 1.5) / 3: the automatic (x + 3)/6 + x/6 cancels near -1.5.
# At the kinks it follows jax.nn (relu6's derivative is 0 at 0 and 6): 0 at -3, 1 at 3.
_hard_silu.defjvps(
    lambda t, y, x: jnp.where(x <= -3, 0.0, jnp.where(x >= 3, 1.0, (x + 1.5) / 3)) * t
)


@rounds_once
def hard_silu(x: ArrayLike) -> Array:
    r"""Hard SiLU, also called hard swish (Howard et al., 2019).

    .. math::
        \mathrm{hard\_silu}(x) = x\,\frac{\mathrm{relu6}(x + 3)}{6}, \qquad
        \mathrm{hard\_silu}'(x) = \frac{2x + 3}{6} \text{ on } (-3, 3)

    Args:
        x: input array.

    Returns:
        An array of x's shape and floating dtype, in :math:`[-0.375, \infty)`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.hard_silu(jax.numpy.array([-3.0, 0.0, 1.0]))
        Array([0.       , 0.       , 0.6666667], dtype=float32)
        >>> float(jax.grad(jaxact.hard_silu)(-1.5))
        0.0
    """
    return _hard_silu(x)


hard_swish = hard_silu


@rounds_once
def threshold(x: ArrayLike, *, threshold: ArrayLike = 0.0, value: ArrayLike = 0.0) -> Array:
    r"""Thresholded identity (``torch.nn.Threshold``).

    .. math::
        \mathrm{threshold}(x) = \begin{cases} x & x > \theta \\ v & x \le \theta \end{cases}

    Args:
        x: input array.
        threshold: the threshold :math:`\theta`.
        value: the replacement :math:`v` at or below the threshold.

    Returns:
        An array of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.threshold(jax.numpy.array([-1.0, 0.5, 2.0]), threshold=1.0, value=-5.0)
        Array([-5., -5.,  2.], dtype=float32)
    """
    x = as_array(x)
    return jnp.where(x > like(threshold, x), x, like(value, x))


@rounds_once
def hard_shrink(x: ArrayLike, *, threshold: ArrayLike = 0.5) -> Array:
    r"""Hard shrinkage: zero inside ``[-threshold, threshold]``, identity outside.

    .. math::
        \mathrm{hard\_shrink}(x) = \begin{cases}
        x & |x| > \lambda \\ 0 & |x| \le \lambda \end{cases}

    Args:
        x: input array.
        threshold: :math:`\lambda \ge 0`; inputs with :math:`|x| \le \lambda` become 0.

    Returns:
        An array of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.hard_shrink(jax.numpy.array([-1.0, 0.25, 0.75]))
        Array([-1.  ,  0.  ,  0.75], dtype=float32)
    """
    x = as_array(x)
    return jnp.where(jnp.abs(x) > like(threshold, x), x, 0.0)


@rounds_once
def soft_shrink(x: ArrayLike, *, threshold: ArrayLike = 0.5) -> Array:
    r"""Soft shrinkage (soft thresholding), the proximal map of :math:`\lambda|x|`.

    .. math::
        \mathrm{soft\_shrink}(x) = \operatorname{sign}(x)\max(|x| - \lambda, 0)

    Args:
        x: input array.
        threshold: :math:`\lambda \ge 0`, taken off :math:`|x|` down to 0.

    Returns:
        An array of x's shape and floating dtype, each entry :math:`\lambda` nearer 0 than x's
        (0 where :math:`|x| \le \lambda`).

    Examples:
        >>> import jax, jaxact
        >>> jaxact.soft_shrink(jax.numpy.array([-1.0, 0.25, 0.75]))
        Array([-0.5 ,  0.  ,  0.25], dtype=float32)
    """
    x = as_array(x)
    lam = like(threshold, x)
    return jnp.where(x > lam, x - lam, jnp.where(x < -lam, x + lam, 0.0))


# --- the Heaviside step and its surrogate gradients ----------------------------


def _sigmoid_surrogate(d: Array, sharpness: Array) -> Array:
    return sharpness * _numerics.sigmoid_and_slope(sharpness * d)[1]


def _straight_through_surrogate(d: Array, sharpness: Array) -> Array:
    return jnp.where(jnp.abs(d) <= 1 / sharpness, 1.0, 0.0).astype(d.dtype)


def _zero_surrogate(d: Array, sharpness: Array) -> Array:
    return jnp.zeros_like(d)


STEP_SURROGATES = {
    "sigmoid": _sigmoid_surrogate,
    "straight_through": _straight_through_surrogate,
    "none": _zero_surrogate,
}


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _step(x: Array, threshold: Array, sharpness: Array, surrogate: str) -> Array:
    return jnp.where(x >= threshold, 1.0, 0.0).astype(x.dtype)


@_step.defjvp
def _step_jvp(
    surrogate: str, primals: tuple[Array, Array, Array], tangents: tuple[Array, Array, Array]
) -> tuple[Array, Array]:
    (x, threshold, sharpness), (tx, tthreshold, _) = primals, tangents
    slope = STEP_SURROGATES[surrogate](x - threshold, sharpness)
    # The step depends on x - threshold only; the sharpness shapes the surrogate, not the value.
    return _step(x, threshold, sharpness, surrogate), slope * (tx - tthreshold)


@rounds_once
def step(
    x: ArrayLike,
    threshold: ArrayLike = 0.0,
    *,
    surrogate: str = "sigmoid",
    sharpness: ArrayLike = 1.0,
) -> Array:
    r"""Heaviside step with a surrogate gradient.

    .. math::
        \mathrm{step}(x) = \begin{cases} 1 & x \ge \theta \\ 0 & x < \theta \end{cases}

    Its true derivative is 0 almost everywhere, which stops all learning, so
    the gradient is replaced by a surrogate with sharpness :math:`k`:

    - ``"sigmoid"`` (default): :math:`k\,\sigma'(k(x - \theta))`, the derivative
      of :math:`\sigma(k(x-\theta))`, which tends to the step as :math:`k \to \infty`;
    - ``"straight_through"``: 1 where :math:`|x - \theta| \le 1/k`, else 0 (the
      clipped straight-through estimator of Hubara et al., 2016, at :math:`k = 1`);
    - ``"none"``: the true derivative, 0.

    Args:
        x: input array.
        threshold: :math:`\theta`; the output is 1 from the threshold on.
        surrogate: which surrogate gradient to use (see above).
        sharpness: :math:`k > 0`; may be traced.

    Returns:
        An array of zeros and ones of x's shape and floating dtype.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.step(jax.numpy.array([-1.0, 0.0, 2.0]))
        Array([0., 1., 1.], dtype=float32)
        >>> float(jax.grad(jaxact.step)(0.0))
        0.25
    """
    x = as_array(x)
    return _step(x, like(threshold, x), like(sharpness, x), surrogate)
