"""Dtypes, weak types and complex inputs, shared by every activation.

Result type. An activation returns the dtype and weak type that ``jax.nn``'s
function of the same name returns for the same input: Python scalars, weakly
typed arrays, bools, integers, half types and complex numbers, with
``jax_enable_x64`` off or on. jax.nn's rules differ from function to function
(``tanh`` of an int8 array is float32 even with x64 on, ``relu`` keeps integers,
``relu6`` of an integer is a weakly typed float), so rather than restate them the
type is read off jax.nn's own function by abstract evaluation (``jax.eval_shape``,
no computation), once per input type, under standard dtype promotion. A function
jax.nn lacks follows its nearest jax.nn relative (softmin follows softmax, the
shrinkage functions follow leaky_relu), and an input jax.nn refuses (``sigmoid``
of an integer) gets the type ``jnp.tanh`` gives it.

Precision. Half-precision inputs are computed in float32 and rounded once at the
end, so a bfloat16 or float16 result is within one ulp of its own type; float32
and float64 are computed in their own precision.

Complex inputs. Where jax.nn computes a complex result jaxact computes the same
formula (the real-valued accuracy work does not apply to complex arguments);
where the activation orders its input (relu, the ELU family, every piecewise
function) a complex input raises a ``TypeError`` that says so. :data:`CONVENTIONS`
lists both, by function name.

Hyperparameters are checked when the function is called (see
:mod:`jaxact._validation`) and cast to the dtype the function computes in.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, overload
from typing import cast as type_cast

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike, DTypeLike

from jaxact._validation import check_hyperparameters

P = ParamSpec("P")

try:  # JAX's public API cannot make a weakly typed array; this is what jnp uses internally.
    from jax._src.lax.lax import _convert_element_type as _jax_convert_element_type

    _convert_element_type: Callable[..., Array] | None = _jax_convert_element_type
except ImportError:  # pragma: no cover - a future JAX; the conformance tests would say so
    _convert_element_type = None


def as_float(x: ArrayLike) -> Array:
    """`x` as an array of a floating dtype (integers and bools become the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def compute_dtype(dtype: DTypeLike) -> jnp.dtype:
    """The dtype an activation is evaluated in: at least float32.

    Decided by width, not by ``jnp.promote_types``, which refuses bfloat16 and
    float16 under ``jax_numpy_dtype_promotion="strict"``.
    """
    dtype = jnp.dtype(dtype)
    return dtype if dtype.itemsize >= 4 else jnp.dtype(jnp.float32)


def like(value: ArrayLike, x: Array) -> Array:
    """A hyperparameter as an array of x's dtype (so strict promotion never complains)."""
    return jnp.asarray(value).astype(x.dtype)


def as_array(x: ArrayLike) -> Array:
    """x as a jax.Array (``jnp.asarray`` costs ~10 us eagerly even when it already is one)."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


def astype(x: Array, dtype: DTypeLike) -> Array:
    """x as ``dtype`` (no operation when it is already)."""
    return x if x.dtype == dtype else x.astype(dtype)


def is_complex(x: Array) -> bool:
    return jnp.issubdtype(x.dtype, jnp.complexfloating)


# --- the result type ------------------------------------------------------------------


@functools.cache
def _abstract_result(
    reference: Callable[[Any], Any], dtype: jnp.dtype, weak: bool, x64: bool
) -> tuple[jnp.dtype, bool] | None:
    """(dtype, weak type) of reference's result for a (2,)-shaped input, or None if it refuses."""
    del x64  # part of the cache key: the answer depends on it
    spec = jax.ShapeDtypeStruct((2,), dtype, weak_type=weak)
    with jax.numpy_dtype_promotion("standard"):
        try:
            out = jax.eval_shape(reference, spec)
        except (TypeError, ValueError):
            return None
    return jnp.dtype(out.dtype), bool(out.weak_type)


def result_type(reference: Callable[[Any], Any], x: Array) -> tuple[jnp.dtype, bool]:
    """The dtype and weak type ``reference(x)`` returns (``jnp.tanh``'s where it refuses x)."""
    key = (jnp.dtype(x.dtype), bool(getattr(x, "weak_type", False)), jax.enable_x64.value)
    found = _abstract_result(reference, *key)
    if found is None:
        found = _abstract_result(jnp.tanh, *key)
    if found is None:
        raise TypeError(f"jaxact activations take numeric arrays, got dtype {key[0]}")
    return found


def cast(y: ArrayLike, dtype: DTypeLike, weak: bool) -> Array:
    """y as ``dtype``, weakly typed if ``weak`` (as a Python scalar's result would be)."""
    y = astype(as_array(y), dtype)
    if weak and _convert_element_type is not None:
        y = _convert_element_type(y, jnp.dtype(dtype), weak_type=True)
    return y


# --- complex inputs --------------------------------------------------------------------


def _ordered(name: str) -> str:
    return (
        f"{name} compares its input with fixed points (x > 0, x < 1, ...) and complex numbers "
        f"have no order; apply it to a real array (jnp.real(x), jnp.abs(x)) explicitly"
    )


def _complex_softplus(
    x: Array, *, beta: ArrayLike = 1.0, threshold: ArrayLike | None = None
) -> Array:
    if threshold is not None:
        raise TypeError(
            "softplus(threshold=...) compares beta * x with the threshold and complex numbers "
            "have no order"
        )
    beta = like(beta, x)
    return jax.nn.softplus(beta * x) / beta


def _complex_gelu(x: Array, approximate: bool = True) -> Array:
    if not approximate:
        raise TypeError(
            "gelu(approximate=False) needs the error function, which JAX defines for real "
            "inputs only (jax.nn.gelu refuses complex inputs too); use approximate=True"
        )
    return jax.nn.gelu(x, approximate=True)


def _complex_normalizer(
    reference: Callable[..., Array], negate: bool = False
) -> Callable[..., Array]:
    """``reference`` (jax.nn.softmax or log_softmax) of ``x / T``, or of ``-x / T`` (softmin)."""

    def formula(
        x: Array,
        axis: int | tuple[int, ...] | None = -1,
        where: ArrayLike | None = None,
        *,
        temperature: ArrayLike = 1.0,
    ) -> Array:
        return reference((-x if negate else x) / like(temperature, x), axis=axis, where=where)

    return formula


@dataclasses.dataclass(frozen=True)
class Convention:
    """How one activation treats the type of its input.

    Attributes:
        like: the function whose result dtype and weak type it returns (jax.nn's
            function of the same name where there is one).
        complex_formula: the formula for complex inputs (same arguments as the
            activation), or a string saying why complex inputs are refused.
    """

    like: Callable[..., Any]
    complex_formula: Callable[..., Array] | str


_LEAKY = jax.nn.leaky_relu
CONVENTIONS: dict[str, Convention] = {
    # smooth
    "sigmoid": Convention(jax.nn.sigmoid, lambda x, *, gain=1.0: jax.nn.sigmoid(like(gain, x) * x)),
    "tanh": Convention(jax.nn.tanh, jnp.tanh),
    "softplus": Convention(jax.nn.softplus, _complex_softplus),
    "log_sigmoid": Convention(jax.nn.log_sigmoid, jax.nn.log_sigmoid),
    "silu": Convention(jax.nn.silu, lambda x, *, beta=1.0: x * jax.nn.sigmoid(like(beta, x) * x)),
    "mish": Convention(jax.nn.mish, jax.nn.mish),
    "gelu": Convention(jax.nn.gelu, _complex_gelu),
    "elu": Convention(jax.nn.elu, _ordered("elu")),
    "celu": Convention(jax.nn.celu, _ordered("celu")),
    "selu": Convention(jax.nn.selu, _ordered("selu")),
    "soft_sign": Convention(jax.nn.soft_sign, jax.nn.soft_sign),
    "squareplus": Convention(jax.nn.squareplus, lambda x, b=4: jax.nn.squareplus(x, like(b, x))),
    "sparse_plus": Convention(jax.nn.sparse_plus, _ordered("sparse_plus")),
    "sparse_sigmoid": Convention(jax.nn.sparse_sigmoid, _ordered("sparse_sigmoid")),
    "exponential": Convention(jnp.exp, jnp.exp),
    "tanh_shrink": Convention(jnp.tanh, lambda x: x - jnp.tanh(x)),
    # piecewise linear
    "relu": Convention(jax.nn.relu, _ordered("relu")),
    "relu6": Convention(jax.nn.relu6, _ordered("relu6")),
    "leaky_relu": Convention(_LEAKY, _ordered("leaky_relu")),
    "prelu": Convention(_LEAKY, _ordered("prelu")),
    "rrelu": Convention(_LEAKY, _ordered("rrelu")),
    "hard_tanh": Convention(jax.nn.hard_tanh, _ordered("hard_tanh")),
    "hard_sigmoid": Convention(jax.nn.hard_sigmoid, _ordered("hard_sigmoid")),
    "hard_silu": Convention(jax.nn.hard_silu, _ordered("hard_silu")),
    "threshold": Convention(_LEAKY, _ordered("threshold")),
    "hard_shrink": Convention(_LEAKY, _ordered("hard_shrink")),
    "soft_shrink": Convention(_LEAKY, _ordered("soft_shrink")),
    "step": Convention(_LEAKY, _ordered("step")),
    # over an axis
    "softmax": Convention(jax.nn.softmax, _complex_normalizer(jax.nn.softmax)),
    "log_softmax": Convention(jax.nn.log_softmax, _complex_normalizer(jax.nn.log_softmax)),
    "softmin": Convention(jax.nn.softmax, _complex_normalizer(jax.nn.softmax, negate=True)),
    "logsumexp": Convention(jax.nn.logsumexp, jax.nn.logsumexp),
    "sparsemax": Convention(jax.nn.softmax, _ordered("sparsemax")),
    "glu": Convention(jax.nn.glu, jax.nn.glu),
}


def convention(name: str) -> Convention:
    """The convention for the activation called ``name`` (a default for unlisted helpers)."""
    return CONVENTIONS.get(name, Convention(jnp.tanh, f"{name} has no complex form"))


def complex_formula(name: str) -> Callable[..., Array]:
    """The complex formula of ``name``, or a TypeError saying why there is none."""
    formula = convention(name).complex_formula
    if isinstance(formula, str):
        raise TypeError(f"jaxact.{name} does not take complex inputs: {formula}")
    return formula


def complex_result(name: str, x: Array, *args: Any, **kwargs: Any) -> Array:
    """``name``'s complex formula at x, under the standard dtype promotion it was written for."""
    formula = complex_formula(name)
    with jax.numpy_dtype_promotion("standard"):
        return formula(x, *args, **kwargs)


# --- the decorator ----------------------------------------------------------------------


def hyperparameters(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The hyperparameters given in one call (everything after the input), by name."""
    bound = signature.bind(None, *args, **kwargs).arguments
    return dict(list(bound.items())[1:])


@overload
def rounds_once(
    fn: Callable[P, Array], *, name: str | None = None, check: bool = True
) -> Callable[P, Array]: ...


@overload
def rounds_once(
    fn: None = None, *, name: str | None = None, check: bool = True
) -> Callable[[Callable[P, Array]], Callable[P, Array]]: ...


def rounds_once(
    fn: Callable[P, Array] | None = None, *, name: str | None = None, check: bool = True
) -> Callable[P, Array] | Callable[[Callable[P, Array]], Callable[P, Array]]:
    """Wraps ``fn(x, ...)``: checks its hyperparameters, evaluates it in at least float32
    (complex inputs by their plain formula), and returns jax.nn's result type.

    ``fn``'s conventions (result type, complex formula) and hyperparameter rules are
    looked up by its name in :data:`CONVENTIONS` and ``jaxact._validation.RULES``.
    The result has ``fn``'s signature, so ``fn`` declares the public one
    (``x: ArrayLike``) although it is called with an Array of the dtype it computes
    in: a body that needs the Array writes ``x = as_array(x)``, which returns it as is.

    Args:
        fn: the function; without it, a decorator with these options.
        name: the name to look the conventions up by (default ``fn.__name__``).
        check: check the hyperparameters on every call (False for an inner
            function whose caller has checked them).
    """
    if fn is None:

        def decorator(fn: Callable[P, Array]) -> Callable[P, Array]:
            return rounds_once(fn, name=name, check=check)

        return decorator
    inner: Callable[..., Array] = fn
    looked_up = name or fn.__name__
    signature = inspect.signature(fn)
    conv = convention(looked_up)

    @functools.wraps(fn)
    def wrapped(x: ArrayLike, *args: Any, **kwargs: Any) -> Array:
        if check and (args or kwargs):
            check_hyperparameters(looked_up, **hyperparameters(signature, args, kwargs))
        x = as_array(x)
        dtype, weak = result_type(conv.like, x)
        if is_complex(x):
            return cast(complex_result(looked_up, x, *args, **kwargs), dtype, weak)
        return cast(inner(astype(x, compute_dtype(dtype)), *args, **kwargs), dtype, weak)

    # wrapped takes fn's arguments (x, then the hyperparameters) and returns an Array.
    return type_cast(Callable[P, Array], wrapped)
