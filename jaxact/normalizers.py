"""Normalising activations over an axis: softmax and its relatives, sparsemax, GLU.

A row with no admissible entry (all ``-inf``, or fully masked by ``where``) is
defined instead of NaN: softmax gives zeros, log_softmax and logsumexp give
``-inf``, and every derivative there is 0.
"""

import functools

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jaxact._dtypes import as_float, compute_dtype, like, rounds_once
from jaxact.smooth import sigmoid

Axis = int | tuple[int, ...] | None


def _shifted(x: Array, axis: Axis, where: Array | None) -> tuple[Array, Array]:
    """x minus its row maximum (0 for an empty row), and the unnormalised exponentials."""
    x_max = jnp.max(x, axis, where=where, initial=-jnp.inf, keepdims=True)
    shift = jnp.where(jnp.isfinite(x_max), x_max, 0.0)
    shifted = x - jax.lax.stop_gradient(shift)
    # A row holding +inf tends to uniform mass on its +inf entries.
    unnormalized = jnp.where(x_max == jnp.inf, (x == jnp.inf).astype(x.dtype), jnp.exp(shifted))
    if where is not None:
        unnormalized = jnp.where(where, unnormalized, 0.0)
    return shifted, unnormalized


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax(x: Array, axis: Axis, where: Array | None) -> Array:
    _, unnormalized = _shifted(x, axis, where)
    total = jnp.sum(unnormalized, axis, keepdims=True)
    return unnormalized / jnp.where(total > 0, total, 1.0)


@_softmax.defjvp
def _softmax_jvp(axis, primals, tangents):
    (x, where), (t, _) = primals, tangents
    y = _softmax(x, axis, where)
    return y, y * (t - jnp.sum(y * t, axis, where=where, keepdims=True))


@rounds_once
def softmax(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: ArrayLike = 1.0,
) -> Array:
    r"""Softmax over ``axis``, with an optional temperature.

    .. math::
        \mathrm{softmax}(x)_i = \frac{e^{x_i/T}}{\sum_j e^{x_j/T}}

    The row maximum is subtracted first (it cancels), so no input overflows. A
    row with no admissible entry (all ``-inf`` or all masked) gives zeros with
    zero derivative, where ``jax.nn.softmax`` gives NaN; masked entries are 0.

    Args:
        x: input array.
        axis: the axis or axes to normalise over.
        where: boolean mask of the entries to include.
        temperature: :math:`T > 0`; large values flatten the distribution,
            small ones sharpen it (knowledge distillation uses :math:`T > 1`).

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softmax(jax.numpy.array([1010.0, 1020.0, 1000.0, 990.0, 1050.0]))
        Array([4.2483541e-18, 9.3576229e-14, 1.9287499e-22, 8.7565109e-27,
               1.0000000e+00], dtype=float32)
    """
    return _softmax(x / like(temperature, x), axis, where)


def _log_softmax_parts(x: Array, axis: Axis, where: Array | None) -> tuple[Array, Array, Array]:
    """log_softmax, softmax (from the same exponentials) and which rows are not empty."""
    shifted, unnormalized = _shifted(x, axis, where)
    total = jnp.sum(unnormalized, axis, keepdims=True)
    nonempty = total > 0
    # A row holding +inf: the log of softmax's uniform mass on its +inf entries, -inf elsewhere.
    x_max = jnp.max(x, axis, where=where, initial=-jnp.inf, keepdims=True)
    shifted = jnp.where(x_max == jnp.inf, jnp.where(x == jnp.inf, 0.0, -jnp.inf), shifted)
    result = jnp.where(nonempty, shifted - jnp.log(total), -jnp.inf)
    if where is not None:
        result = jnp.where(where, result, -jnp.inf)
    return result, unnormalized / jnp.where(nonempty, total, 1.0), nonempty


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_softmax(x: Array, axis: Axis, where: Array | None) -> Array:
    return _log_softmax_parts(x, axis, where)[0]


@_log_softmax.defjvp
def _log_softmax_jvp(axis, primals, tangents):
    (x, where), (t, _) = primals, tangents
    y, probabilities, nonempty = _log_softmax_parts(x, axis, where)
    tangent = t - jnp.sum(probabilities * t, axis, where=where, keepdims=True)
    # An empty row, and every masked entry, is the constant -inf: derivative 0.
    admissible = nonempty if where is None else nonempty & where
    return y, jnp.where(admissible, tangent, 0.0)


@rounds_once
def log_softmax(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: ArrayLike = 1.0,
) -> Array:
    r"""Logarithm of the softmax, with an optional temperature.

    .. math::
        \mathrm{log\_softmax}(x)_i = \frac{x_i}{T} - \log \sum_j e^{x_j/T}

    Masked entries, and every entry of an empty row, are ``-inf`` with
    derivative 0.

    Args:
        x: input array.
        axis: the axis or axes to normalise over.
        where: boolean mask of the entries to include.
        temperature: :math:`T > 0`.

    Returns:
        An array of x's shape and floating dtype, in :math:`[-\infty, 0]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.log_softmax(jax.numpy.array([0.0, 0.0]))
        Array([-0.6931472, -0.6931472], dtype=float32)
    """
    return _log_softmax(x / like(temperature, x), axis, where)


@rounds_once
def softmin(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: ArrayLike = 1.0,
) -> Array:
    r"""Softmin: the softmax of :math:`-x` (``torch.nn.Softmin``).

    .. math::
        \mathrm{softmin}(x)_i = \frac{e^{-x_i/T}}{\sum_j e^{-x_j/T}}

    Args:
        x: input array.
        axis: the axis or axes to normalise over.
        where: boolean mask of the entries to include.
        temperature: :math:`T > 0`.

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softmin(jax.numpy.array([0.0, 1e9]))
        Array([1., 0.], dtype=float32)
    """
    return _softmax(-x / like(temperature, x), axis, where)


def _logsumexp_parts(a: Array, b: Array | None, axis: Axis, where: Array | None):
    """The unnormalised exponentials, their weighted row sum, and the shift taken out of both."""
    _, unnormalized = _shifted(a, axis, where)
    x_max = jnp.max(a, axis, where=where, initial=-jnp.inf, keepdims=True)
    # An empty row is shifted by 0; a row holding +inf keeps its +inf shift (the sum is infinite).
    shift = jnp.where(x_max == -jnp.inf, 0.0, x_max)
    weighted = unnormalized if b is None else unnormalized * b
    return unnormalized, jnp.sum(weighted, axis, keepdims=True), shift


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _logsumexp(a: Array, b: Array | None, axis: Axis, where: Array | None) -> Array:
    _, total, shift = _logsumexp_parts(a, b, axis, where)
    return jnp.log(total) + shift


@_logsumexp.defjvp
def _logsumexp_jvp(axis, where, primals, tangents):
    (a, b), (ta, tb) = primals, tangents
    y = _logsumexp(a, b, axis, where)
    unnormalized, total, _ = _logsumexp_parts(a, b, axis, where)
    # exp(a_i) / sum_j b_j exp(a_j), formed from the shifted terms: 0 for an empty row,
    # and softmax's uniform mass on the +inf entries for a row holding +inf.
    weights = unnormalized / jnp.where(total == 0, 1.0, total)
    tangent = jnp.sum((weights if b is None else weights * b) * ta, axis, keepdims=True)
    if b is not None:
        tangent = tangent + jnp.sum(weights * tb, axis, keepdims=True)
    return y, tangent


def logsumexp(
    a: ArrayLike,
    axis: Axis = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
    where: ArrayLike | None = None,
) -> Array | tuple[Array, Array]:
    r"""Log-sum-exp reduction, as ``jax.nn.logsumexp``.

    .. math::
        \mathrm{logsumexp}(a) = \log \sum_i b_i e^{a_i}

    An empty reduction (all ``-inf`` or all masked) gives ``-inf`` with
    derivative 0. With ``return_sign=True`` (signed weights) it defers to
    ``jax.nn.logsumexp``.

    Args:
        a: input array.
        axis: the axis or axes to reduce; ``None`` reduces all.
        b: optional weights, broadcastable to ``a``.
        keepdims: keep the reduced axes with size 1.
        return_sign: also return the sign of the sum.
        where: boolean mask of the entries to include.

    Returns:
        The reduced array (and its sign if ``return_sign``).

    Examples:
        >>> import jax, jaxact
        >>> jaxact.logsumexp(jax.numpy.array([1000.0, 1000.0]))
        Array(1000.6932, dtype=float32)
    """
    if return_sign:
        return jax.nn.logsumexp(a, axis, b, keepdims, return_sign=True, where=where)
    a = as_float(a)
    dtype = a.dtype
    a = a.astype(compute_dtype(dtype))
    b = None if b is None else like(b, a)
    if isinstance(axis, list):
        axis = tuple(axis)
    y = _logsumexp(a, b, axis, None if where is None else jnp.asarray(where))
    if not keepdims:
        y = jnp.squeeze(y, axis=axis) if axis is not None else y.reshape(())
    return y.astype(dtype)


def _sparsemax_support(z: Array) -> tuple[Array, Array]:
    """Threshold tau and support mask of sparsemax along the last axis.

    ``z`` should be shifted so that its row maximum is 0 (see :func:`_shift_to_max`).
    """
    z_sorted = jnp.flip(jnp.sort(z, axis=-1), axis=-1)
    k = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cumulative = jnp.cumsum(z_sorted, axis=-1)
    in_support = 1 + k * z_sorted > cumulative
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)
    cumulative_at_size = jnp.take_along_axis(
        cumulative, support_size.astype(jnp.int32) - 1, axis=-1
    )
    tau = (cumulative_at_size - 1) / support_size.astype(z.dtype)
    return tau, z > tau


def _shift_to_max(z: Array) -> Array:
    # sparsemax is shift-invariant; measured from the row maximum, entries near the top are
    # exact (Sterbenz), so max(z - tau, 0) does not cancel (a row of 65s sums to 1, not
    # 1 - 1.5e-5).
    top = jnp.max(z, axis=-1, keepdims=True, initial=-jnp.inf)
    return z - jnp.where(jnp.isfinite(top), top, 0.0)


@jax.custom_jvp
def _sparsemax_last(z: Array) -> Array:
    z = _shift_to_max(z)
    tau, _ = _sparsemax_support(z)
    return jnp.maximum(z - tau, 0.0)


@_sparsemax_last.defjvp
def _sparsemax_jvp(primals, tangents):
    (z,), (t,) = primals, tangents
    z = _shift_to_max(z)
    tau, support = _sparsemax_support(z)
    s = support.astype(z.dtype)
    # Jacobian diag(s) - s s^T / |S| (Martins and Astudillo, 2016).
    mean_on_support = jnp.sum(s * t, axis=-1, keepdims=True) / jnp.sum(s, axis=-1, keepdims=True)
    return jnp.maximum(z - tau, 0.0), s * (t - mean_on_support)


@rounds_once
def sparsemax(x: ArrayLike, axis: int = -1) -> Array:
    r"""Sparsemax (Martins and Astudillo, 2016): the Euclidean projection onto the simplex.

    .. math::
        \mathrm{sparsemax}(x) = \operatorname*{argmin}_{p \in \Delta} \lVert p - x \rVert^2
        = \max(x - \tau(x), 0)

    Like softmax its entries sum to 1, but small entries are exactly 0.

    Args:
        x: input array.
        axis: the axis to normalise over.

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sparsemax(jax.numpy.array([0.0, 0.5, 2.0]))
        Array([0., 0., 1.], dtype=float32)
    """
    return jnp.moveaxis(_sparsemax_last(jnp.moveaxis(x, axis, -1)), -1, axis)


@rounds_once
def glu(x: ArrayLike, axis: int = -1) -> Array:
    r"""Gated linear unit (Dauphin et al., 2017).

    .. math::
        \mathrm{glu}(x) = a \odot \sigma(b), \quad [a, b] = \mathrm{split}(x, 2, \mathrm{axis})

    Args:
        x: input array; the size of ``axis`` must be even.
        axis: the axis to split.

    Returns:
        An array with ``axis`` halved.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.glu(jax.numpy.array([2.0, 0.0]))
        Array([1.], dtype=float32)
    """
    if x.ndim == 0 or x.shape[axis] % 2:
        raise ValueError(
            f"glu splits axis {axis} in two halves, so its size must be even; got shape {x.shape}"
        )
    gated, gate = jnp.split(x, 2, axis)
    return gated * sigmoid(gate)
