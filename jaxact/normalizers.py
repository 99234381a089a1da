"""Normalising activations over an axis: softmax and its relatives, sparsemax, GLU.

A row with no admissible entry (all ``-inf``, or fully masked by ``where``) is
defined instead of NaN: softmax and sparsemax give zeros, log_softmax and
logsumexp give ``-inf``, and every derivative there is 0. A row holding ``+inf``
gives its limit: uniform mass on the ``+inf`` entries. A NaN in a row makes the
whole row NaN, value and derivative, as in ``jax.nn``.

Types follow jax.nn (see :mod:`jaxact._dtypes`); complex inputs are computed
with jax.nn's own formulas, except by sparsemax, which orders its input and
raises a ``TypeError``. A temperature is checked when the function is called: a
concrete one must be finite and > 0 (``ValueError`` otherwise); a traced one
(under ``jit``) cannot be checked, and one that is <= 0 or NaN makes the result NaN.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from jaxact._dtypes import (
    as_array,
    astype,
    cast,
    complex_result,
    compute_dtype,
    is_complex,
    like,
    result_type,
    rounds_once,
)
from jaxact._validation import is_traced
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
    # An empty row sums to 0 (and gives zeros); a row holding NaN sums to NaN (and gives NaN).
    return unnormalized / jnp.where(total == 0, 1.0, total)


@_softmax.defjvp
def _softmax_jvp(
    axis: Axis, primals: tuple[Array, Array | None], tangents: tuple[Array, Array | None]
) -> tuple[Array, Array]:
    (x, where), (t, _) = primals, tangents
    y = _softmax(x, axis, where)
    return y, y * (t - jnp.sum(y * t, axis, where=where, keepdims=True))


def _temperature(temperature: ArrayLike, x: Array) -> Array:
    """The temperature in x's dtype; a traced one that is not > 0 becomes NaN (see above)."""
    t = like(temperature, x)
    return jnp.where(t > 0, t, jnp.nan) if is_traced(temperature) else t


@rounds_once
def softmax(
    x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None, *, temperature: ArrayLike = 1.0
) -> Array:
    r"""Softmax over ``axis``, with an optional temperature.

    .. math::
        \mathrm{softmax}(x)_i = \frac{e^{x_i/T}}{\sum_j e^{x_j/T}}

    The row maximum is subtracted first (it cancels), so no input overflows. A
    row with no admissible entry (all ``-inf`` or all masked) gives zeros with
    zero derivative, where ``jax.nn.softmax`` gives NaN; masked entries are 0.
    A NaN in a row makes the row NaN.

    Args:
        x: input array.
        axis: the axis or axes to normalise over.
        where: boolean mask of the entries to include.
        temperature: :math:`T > 0`, finite; large values flatten the distribution,
            small ones sharpen it (knowledge distillation uses :math:`T > 1`).

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softmax(jax.numpy.array([1010.0, 1020.0, 1000.0, 990.0, 1050.0]))
        Array([4.2483541e-18, 9.3576229e-14, 1.9287499e-22, 8.7565109e-27,
               1.0000000e+00], dtype=float32)
    """
    x = as_array(x)
    return _softmax(x / _temperature(temperature, x), axis, where)


def _log_softmax_parts(x: Array, axis: Axis, where: Array | None) -> tuple[Array, Array, Array]:
    """log_softmax, softmax (from the same exponentials) and which rows are not empty."""
    shifted, unnormalized = _shifted(x, axis, where)
    total = jnp.sum(unnormalized, axis, keepdims=True)
    nonempty = total != 0  # True for a row holding NaN, which then gives NaN
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
def _log_softmax_jvp(
    axis: Axis, primals: tuple[Array, Array | None], tangents: tuple[Array, Array | None]
) -> tuple[Array, Array]:
    (x, where), (t, _) = primals, tangents
    y, probabilities, nonempty = _log_softmax_parts(x, axis, where)
    return y, _log_softmax_tangent(t, probabilities, nonempty, where, axis)


@functools.partial(jax.checkpoint, static_argnums=(4,))
def _log_softmax_tangent(
    t: Array, probabilities: Array, nonempty: Array, where: Array | None, axis: Axis
) -> Array:
    """t - sum(p t), and 0 on empty rows and masked entries (constants -inf there).

    Checkpointed so that the backward pass keeps only p and the row flags, as
    jax.nn.log_softmax keeps its exponentials: the masks broadcast to the full
    shape are recomputed rather than stored.
    """
    tangent = t - jnp.sum(probabilities * t, axis, where=where, keepdims=True)
    admissible = nonempty if where is None else nonempty & where
    return jnp.where(admissible, tangent, 0.0)


@rounds_once
def log_softmax(
    x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None, *, temperature: ArrayLike = 1.0
) -> Array:
    r"""Logarithm of the softmax, with an optional temperature.

    .. math::
        \mathrm{log\_softmax}(x)_i = \frac{x_i}{T} - \log \sum_j e^{x_j/T}

    Masked entries, and every entry of an empty row, are ``-inf`` with
    derivative 0.

    Args:
        x, axis, where, temperature: as in :func:`softmax`.

    Returns:
        An array of x's shape and floating dtype, in :math:`[-\infty, 0]`.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.log_softmax(jax.numpy.array([0.0, 0.0]))
        Array([-0.6931472, -0.6931472], dtype=float32)
    """
    x = as_array(x)
    return _log_softmax(x / _temperature(temperature, x), axis, where)


@rounds_once
def softmin(
    x: ArrayLike, axis: Axis = -1, where: ArrayLike | None = None, *, temperature: ArrayLike = 1.0
) -> Array:
    r"""Softmin: the softmax of :math:`-x` (``torch.nn.Softmin``).

    .. math::
        \mathrm{softmin}(x)_i = \frac{e^{-x_i/T}}{\sum_j e^{-x_j/T}}

    Args:
        x, axis, where, temperature: as in :func:`softmax`.

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1
        (or are 0, on a row with no admissible entry).

    Examples:
        >>> import jax, jaxact
        >>> jaxact.softmin(jax.numpy.array([0.0, 1e9]))
        Array([1., 0.], dtype=float32)
    """
    x = as_array(x)
    return _softmax(-x / _temperature(temperature, x), axis, where)


def _logsumexp_parts(
    a: Array, b: Array | None, axis: Axis, where: Array | None
) -> tuple[Array, Array, Array, Array | None]:
    """The shifted exponentials, their weighted row sum, the shift, and the summed entries.

    As in jax.nn, an entry with weight 0 is left out (so ``a = inf, b = 0`` adds
    nothing rather than ``inf * 0``); its exponential is still formed, for the
    derivative in its weight.
    """
    active = where
    if b is not None:
        active = b != 0 if where is None else where & (b != 0)
    x_max = jnp.max(a, axis, where=active, initial=-jnp.inf, keepdims=True)
    shifted = a - jnp.where(jnp.isfinite(x_max), x_max, 0.0)
    # A row holding +inf tends to uniform mass on its +inf entries.
    exps = jnp.where(x_max == jnp.inf, (a == jnp.inf).astype(a.dtype), jnp.exp(shifted))
    if where is not None:
        exps = jnp.where(where, exps, 0.0)
    terms = _weighted(exps, b, active)
    # An empty row is shifted by 0; a row holding +inf (or NaN) keeps its shift.
    shift = jnp.where(x_max == -jnp.inf, 0.0, x_max)
    return exps, jnp.sum(terms, axis, keepdims=True), shift, active


def _weighted(values: Array, b: Array | None, active: Array | None) -> Array:
    """values times the weights b on the summed entries, 0 on the others (values if no b)."""
    if b is None or active is None:  # active is None only when there is no b (and no where)
        return values
    return jnp.where(active, values * b, 0.0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _logsumexp(a: Array, b: Array | None, axis: Axis, where: Array | None) -> Array:
    _, total, shift, _ = _logsumexp_parts(a, b, axis, where)
    return jnp.log(total) + shift


@functools.partial(_logsumexp.defjvp, symbolic_zeros=True)
def _logsumexp_jvp(
    axis: Axis,
    where: Array | None,
    primals: tuple[Array, Array | None],
    tangents: tuple[Array | SymbolicZero, Array | SymbolicZero | None],
) -> tuple[Array, Array]:
    (a, b), (ta, tb) = primals, tangents
    exps, total, shift, active = _logsumexp_parts(a, b, axis, where)
    y = jnp.log(total) + shift
    # exp(a_i) / sum_j b_j exp(a_j), formed from the shifted terms: 0 for an empty row,
    # and softmax's uniform mass on the +inf entries for a row holding +inf.
    weights = exps / jnp.where(total == 0, 1.0, total)
    tangent = jnp.zeros_like(y)
    if not isinstance(ta, SymbolicZero):
        slope = _weighted(weights, b, active)
        tangent = tangent + jnp.sum(slope * ta, axis, keepdims=True)
    if tb is not None and not isinstance(tb, SymbolicZero):  # tb is None when b is
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
    derivative 0. Entries with weight :math:`b_i = 0` are left out, as in
    jax.nn (``a_i = inf, b_i = 0`` adds nothing), but the derivative in
    :math:`b_i` is still :math:`e^{a_i} / \sum_j b_j e^{a_j}` (jax.nn's is 0).
    With ``return_sign=True`` (signed weights) it defers to ``jax.nn.logsumexp``.

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
    a = as_array(a)
    dtype, weak = result_type(jax.nn.logsumexp, a)
    if isinstance(axis, list):
        axis = tuple(axis)
    if is_complex(a):
        y = complex_result("logsumexp", a, axis=axis, b=b, keepdims=keepdims, where=where)
        return cast(y, dtype, weak)
    a = astype(a, compute_dtype(dtype))
    b = None if b is None else like(b, a)
    y = _logsumexp(a, b, axis, None if where is None else jnp.asarray(where))
    if not keepdims:
        y = jnp.squeeze(y, axis=axis) if axis is not None else y.reshape(())
    return cast(y, dtype, weak)


def _sparsemax_support(z: Array) -> tuple[Array, Array]:
    """Threshold tau and support mask of sparsemax along the last axis.

    ``z`` should be shifted so that its row maximum is 0 (see :func:`_sparsemax_parts`). A
    row with no support (all ``-inf``) gets tau = 0 rather than 0 / 0.
    """
    z_sorted = jnp.flip(jnp.sort(z, axis=-1), axis=-1)
    k = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cumulative = jnp.cumsum(z_sorted, axis=-1)
    in_support = 1 + k * z_sorted > cumulative
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)
    size = jnp.maximum(support_size, 1)
    cumulative_at_size = jnp.take_along_axis(cumulative, size.astype(jnp.int32) - 1, axis=-1)
    tau = jnp.where(support_size > 0, (cumulative_at_size - 1) / size.astype(z.dtype), 0.0)
    return tau, z > tau


def _sparsemax_parts(z: Array) -> tuple[Array, Array]:
    """sparsemax along the last axis and its support, with the limits of softmax's rows.

    sparsemax is shift-invariant; measured from the row maximum, entries near the top
    are exact (Sterbenz), so max(z - tau, 0) does not cancel (a row of 65s sums to 1,
    not 1 - 1.5e-5). A row holding +inf gives uniform mass on its +inf entries (the
    projection of the row with those entries at 0 and the others at -inf), a row of
    -inf gives zeros, a row holding NaN gives NaN.
    """
    top = jnp.max(z, axis=-1, keepdims=True, initial=-jnp.inf)
    finite_top = jnp.where(jnp.isfinite(top), top, 0.0)
    z = jnp.where(top == jnp.inf, jnp.where(z == jnp.inf, 0.0, -jnp.inf), z - finite_top)
    tau, support = _sparsemax_support(z)
    empty = top == -jnp.inf
    p = jnp.where(empty, 0.0, jnp.maximum(z - tau, 0.0))
    return jnp.where(jnp.isnan(top), jnp.nan, p), support & ~empty


@jax.custom_jvp
def _sparsemax_last(z: Array) -> Array:
    return _sparsemax_parts(z)[0]


@_sparsemax_last.defjvp
def _sparsemax_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (z,), (t,) = primals, tangents
    p, support = _sparsemax_parts(z)
    # Jacobian diag(s) - s s^T / |S| (Martins and Astudillo, 2016); 0 on a row of -inf, and
    # NaN on a row holding NaN (s = NaN there, so reverse mode carries it too).
    s = jnp.where(jnp.isnan(p), jnp.nan, support.astype(z.dtype))
    size = jnp.sum(s, axis=-1, keepdims=True)
    mean_on_support = jnp.sum(s * t, axis=-1, keepdims=True) / jnp.maximum(size, 1)
    return p, s * (t - mean_on_support)


@rounds_once
def sparsemax(x: ArrayLike, axis: Axis = -1) -> Array:
    r"""Sparsemax (Martins and Astudillo, 2016): the Euclidean projection onto the simplex.

    .. math::
        \mathrm{sparsemax}(x) = \operatorname*{argmin}_{p \in \Delta} \lVert p - x \rVert^2
        = \max(x - \tau(x), 0)

    Like softmax its entries sum to 1, but small entries are exactly 0. Its rows'
    limits are softmax's: a row holding ``+inf`` gives uniform mass on the ``+inf``
    entries, a row of ``-inf`` gives zeros (derivative 0), a NaN makes the row NaN.

    Args:
        x: input array (real: the projection orders the entries).
        axis: the axis or axes to normalise over; ``None`` normalises the whole array.

    Returns:
        An array of x's shape and floating dtype whose entries along ``axis`` sum to 1.

    Examples:
        >>> import jax, jaxact
        >>> jaxact.sparsemax(jax.numpy.array([0.0, 0.5, 2.0]))
        Array([0., 0., 1.], dtype=float32)
    """
    x = as_array(x)
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
    # The normalised axes moved to the end and flattened into one.
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = jnp.transpose(x, (*rest, *axes))
    flat = moved.reshape(*moved.shape[: len(rest)], math.prod(moved.shape[len(rest) :]))
    y = _sparsemax_last(flat).reshape(moved.shape)
    return jnp.transpose(y, tuple(int(i) for i in np.argsort((*rest, *axes))))


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
    x = as_array(x)
    if x.ndim == 0 or x.shape[axis] % 2:
        raise ValueError(
            f"glu splits axis {axis} in two halves, so its size must be even; got shape {x.shape}"
        )
    gated, gate = jnp.split(x, 2, axis)
    return gated * sigmoid(gate)
