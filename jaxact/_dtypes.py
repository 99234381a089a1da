"""Dtype handling shared by every activation.

Half-precision inputs are computed in float32 and rounded once at the end, so a
bfloat16 or float16 result is within one ulp of its own type; float32 and
float64 are computed in their own precision.
"""

import functools
from collections.abc import Callable

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def as_float(x: ArrayLike) -> Array:
    """`x` as an array of a floating dtype (integers and bools become the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype an activation is evaluated in: at least float32.

    Decided by width, not by ``jnp.promote_types``, which refuses bfloat16 and
    float16 under ``jax_numpy_dtype_promotion="strict"``.
    """
    dtype = jnp.dtype(dtype)
    return dtype if dtype.itemsize >= 4 else jnp.dtype(jnp.float32)


def rounds_once(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Evaluates `fn(x, ...)` in at least float32 and casts the result back to x's dtype."""

    @functools.wraps(fn)
    def wrapped(x: ArrayLike, *args, **kwargs) -> Array:
        x = as_float(x)
        return fn(x.astype(compute_dtype(x.dtype)), *args, **kwargs).astype(x.dtype)

    return wrapped


def like(value: ArrayLike, x: Array) -> Array:
    """A hyperparameter as an array of x's dtype (so strict promotion never complains)."""
    return jnp.asarray(value).astype(x.dtype)
