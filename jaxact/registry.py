"""The registry: every activation by name, its aliases, and the facts users ask about.

>>> import jax.numpy as jnp, jaxact
>>> f = jaxact.get("leaky_relu", negative_slope=0.2)
>>> f(jnp.array([-1.0, 2.0]))
Array([-0.2,  2. ], dtype=float32)
>>> jaxact.info("swish").name
'silu'
"""

import dataclasses
import difflib
import functools
import inspect
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxact import _validation, normalizers, rectifiers, smooth

_INF = math.inf


def _logistic(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# The lowest values of the self-gated functions, at the zeros of their derivatives
# (the roots smooth.py expands those derivatives around), and selu's lower bound.
_SILU_ROOT = float(smooth._SILU_ROOT)
_MISH_ROOT = float(smooth._MISH_ROOT)
_GELU_TANH_ROOT = float(smooth._GELU_TANH_ROOT)
_SILU_MIN = _SILU_ROOT * _logistic(_SILU_ROOT)
_MISH_MIN = _MISH_ROOT * math.tanh(math.log1p(math.exp(_MISH_ROOT)))
_GELU_TANH_MIN = _GELU_TANH_ROOT * _logistic(
    2 * math.sqrt(2 / math.pi) * (_GELU_TANH_ROOT + 0.044715 * _GELU_TANH_ROOT**3)
)
_SELU_MIN = -smooth._SELU_SCALE * smooth._SELU_ALPHA


@dataclasses.dataclass(frozen=True)
class ActivationInfo:
    """What the registry knows about one activation.

    Attributes:
        name: canonical name (the function's name in ``jaxact``).
        fn: the function itself.
        formula: a one-line formula, plain text.
        output_range: (low, high) of the output with default parameters; bounds may be infinite.
        monotonic: non-decreasing in x (default parameters).
        smooth: continuously differentiable everywhere (default parameters).
        odd: ``f(-x) = -f(x)`` (so its outputs are centred on 0).
        self_gated: of the form ``x * g(x)`` with a gate ``g`` (swish, gelu, mish, ...).
        elementwise: acts on each element alone (False for softmax, glu, ...).
        aliases: other names that resolve to this one.
        jax_nn: the name of the same function in ``jax.nn``, if it has one.
        breakpoint_rule: given the hyperparameters (defaults filled in), the x where the
            function or its derivative is not smooth; :meth:`breakpoints` applies it.
    """

    name: str
    fn: Callable[..., Any]
    formula: str
    output_range: tuple[float, float]
    monotonic: bool
    smooth: bool
    odd: bool
    self_gated: bool
    elementwise: bool = True
    aliases: tuple[str, ...] = ()
    jax_nn: str | None = None
    breakpoint_rule: Callable[[Mapping[str, Any]], tuple[float, ...]] = lambda params: ()

    @property
    def ranges(self) -> dict[str, str]:
        """The valid values of each checked hyperparameter, in words.

        >>> import jaxact
        >>> jaxact.info("softmax").ranges
        {'temperature': 'a finite number > 0'}
        """
        return {key: rule.describe for key, rule in _validation.RULES.get(self.name, {}).items()}

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters and their defaults (every argument after the input)."""
        signature = inspect.signature(self.fn)
        parameters = list(signature.parameters.values())[1:]
        return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    def breakpoints(self, **params: Any) -> tuple[float, ...]:
        """The x where the function or its derivative is not smooth, for these
        hyperparameters (defaults filled in), sorted; quadrature must not straddle them.

        >>> import jaxact
        >>> jaxact.info("hard_tanh").breakpoints(min_val=-2.0)
        (-2.0, 1.0)
        """
        return tuple(sorted(set(self.breakpoint_rule({**self.params, **params}))))


def _hard_sigmoid_breakpoints(p: Mapping[str, Any]) -> tuple[float, ...]:
    """Where slope x + offset crosses 0 and 1; none for a flat line (slope 0)."""
    slope, offset = float(p["slope"]), float(p["offset"])
    return () if slope == 0 else (-offset / slope, (1 - offset) / slope)


def _at(*names: str) -> Callable[[Mapping[str, Any]], tuple[float, ...]]:
    """The breakpoints at the values of the named hyperparameters."""
    return lambda p: tuple(float(p[name]) for name in names)


def _symmetric(name: str) -> Callable[[Mapping[str, Any]], tuple[float, ...]]:
    """The breakpoints at plus and minus the named hyperparameter."""
    return lambda p: (-float(p[name]), float(p[name]))


def _fixed(*points: float) -> Callable[[Mapping[str, Any]], tuple[float, ...]]:
    """Breakpoints that do not depend on the hyperparameters."""
    return lambda p: points


_NONE = _fixed()


def _entry(
    fn: Callable[..., Any],
    formula: str,
    output_range: tuple[float, float],
    *,
    monotonic: bool,
    smooth: bool,
    odd: bool = False,
    self_gated: bool = False,
    breakpoints: Callable[[Mapping[str, Any]], tuple[float, ...]] = _NONE,
    **kw: Any,
) -> ActivationInfo:
    return ActivationInfo(
        fn.__name__, fn, formula, output_range, monotonic=monotonic, smooth=smooth, odd=odd,
        self_gated=self_gated, breakpoint_rule=breakpoints,
        **kw,
    )  # fmt: skip


_ENTRIES = (
    _entry(smooth.sigmoid, "1 / (1 + exp(-gain x))", (0, 1), monotonic=True, smooth=True,
           aliases=("logistic",), jax_nn="sigmoid"),
    _entry(smooth.tanh, "(e^x - e^-x) / (e^x + e^-x)", (-1, 1), monotonic=True, smooth=True,
           odd=True, jax_nn="tanh"),
    _entry(smooth.softplus, "log(1 + exp(beta x)) / beta", (0, _INF), monotonic=True,
           smooth=True, jax_nn="softplus"),
    _entry(smooth.log_sigmoid, "-softplus(-x)", (-_INF, 0), monotonic=True, smooth=True,
           aliases=("logsigmoid",), jax_nn="log_sigmoid"),
    _entry(smooth.silu, "x sigmoid(beta x)", (_SILU_MIN, _INF), monotonic=False, smooth=True,
           self_gated=True, aliases=("swish",), jax_nn="silu"),
    _entry(smooth.mish, "x tanh(softplus(x))", (_MISH_MIN, _INF), monotonic=False, smooth=True,
           self_gated=True, jax_nn="mish"),
    _entry(smooth.gelu, "x Phi(x) (tanh approximation by default)", (_GELU_TANH_MIN, _INF),
           monotonic=False, smooth=True, self_gated=True, jax_nn="gelu"),
    _entry(smooth.elu, "x if x > 0 else alpha (exp(x) - 1)", (-1, _INF), monotonic=True,
           smooth=True, jax_nn="elu", breakpoints=_fixed(0.0)),
    _entry(smooth.celu, "max(x, 0) + alpha (exp(min(x, 0) / alpha) - 1)", (-1, _INF),
           monotonic=True, smooth=True, jax_nn="celu",
           breakpoints=_fixed(0.0)),
    _entry(smooth.selu, "scale (x if x > 0 else alpha (exp(x) - 1))", (_SELU_MIN, _INF),
           monotonic=True, smooth=False, jax_nn="selu", breakpoints=_fixed(0.0)),
    _entry(smooth.soft_sign, "x / (1 + |x|)", (-1, 1), monotonic=True, smooth=True, odd=True,
           aliases=("softsign",), jax_nn="soft_sign"),
    _entry(smooth.squareplus, "(x + sqrt(x^2 + b)) / 2", (0, _INF), monotonic=True, smooth=True,
           jax_nn="squareplus"),
    _entry(smooth.sparse_plus, "0, (x + 1)^2 / 4, x on x <= -1, |x| < 1, x >= 1", (0, _INF),
           monotonic=True, smooth=True, jax_nn="sparse_plus", breakpoints=_fixed(-1.0, 1.0)),
    _entry(smooth.sparse_sigmoid, "clip(x + 1, 0, 2) / 2", (0, 1), monotonic=True, smooth=False,
           jax_nn="sparse_sigmoid", breakpoints=_fixed(-1.0, 1.0)),
    _entry(smooth.exponential, "exp(x)", (0, _INF), monotonic=True, smooth=True),
    _entry(smooth.tanh_shrink, "x - tanh(x)", (-_INF, _INF), monotonic=True, smooth=True,
           odd=True, aliases=("tanhshrink",)),
    _entry(rectifiers.identity, "x", (-_INF, _INF), monotonic=True, smooth=True, odd=True,
           aliases=("linear",), jax_nn="identity"),
    _entry(rectifiers.relu, "max(x, 0)", (0, _INF), monotonic=True, smooth=False,
           jax_nn="relu", breakpoints=_fixed(0.0)),
    _entry(rectifiers.relu6, "min(max(x, 0), 6)", (0, 6), monotonic=True, smooth=False,
           jax_nn="relu6", breakpoints=_fixed(0.0, 6.0)),
    _entry(rectifiers.leaky_relu, "x if x >= 0 else negative_slope x", (-_INF, _INF),
           monotonic=True, smooth=False, aliases=("leakyrelu",), jax_nn="leaky_relu",
           breakpoints=_fixed(0.0)),
    _entry(rectifiers.prelu, "max(x, 0) + negative_slope min(x, 0)", (-_INF, _INF),
           monotonic=True, smooth=False, breakpoints=_fixed(0.0)),
    _entry(rectifiers.rrelu, "x if x >= 0 else a x, a ~ U(lower, upper)", (-_INF, _INF),
           monotonic=True, smooth=False, breakpoints=_fixed(0.0)),
    _entry(rectifiers.hard_tanh, "clip(x, min_val, max_val)", (-1, 1), monotonic=True,
           smooth=False, odd=True, aliases=("hardtanh",), jax_nn="hard_tanh",
           breakpoints=_at("min_val", "max_val")),
    _entry(rectifiers.hard_sigmoid, "clip(slope x + offset, 0, 1)", (0, 1), monotonic=True,
           smooth=False, aliases=("hardsigmoid",), jax_nn="hard_sigmoid",
           breakpoints=_hard_sigmoid_breakpoints),
    _entry(rectifiers.hard_silu, "x relu6(x + 3) / 6", (-0.375, _INF), monotonic=False,
           smooth=False, self_gated=True, aliases=("hard_swish", "h_swish", "hardswish"),
           jax_nn="hard_silu", breakpoints=_fixed(-3.0, 3.0)),
    _entry(rectifiers.threshold, "x if x > threshold else value", (0, _INF), monotonic=True,
           smooth=False, breakpoints=_at("threshold")),
    _entry(rectifiers.hard_shrink, "x if |x| > threshold else 0", (-_INF, _INF),
           monotonic=True, smooth=False, odd=True, aliases=("hardshrink",),
           breakpoints=_symmetric("threshold")),
    _entry(rectifiers.soft_shrink, "sign(x) max(|x| - threshold, 0)", (-_INF, _INF),
           monotonic=True, smooth=False, odd=True, aliases=("softshrink",),
           breakpoints=_symmetric("threshold")),
    _entry(rectifiers.step, "1 if x >= threshold else 0", (0, 1), monotonic=True, smooth=False,
           aliases=("heaviside", "binary_step"),
           breakpoints=_at("threshold")),
    _entry(normalizers.softmax, "exp(x_i / T) / sum_j exp(x_j / T)", (0, 1), monotonic=False,
           smooth=True, elementwise=False, jax_nn="softmax"),
    _entry(normalizers.log_softmax, "x_i / T - log sum_j exp(x_j / T)", (-_INF, 0),
           monotonic=False, smooth=True, elementwise=False, jax_nn="log_softmax"),
    _entry(normalizers.softmin, "exp(-x_i / T) / sum_j exp(-x_j / T)", (0, 1), monotonic=False,
           smooth=True, elementwise=False),
    _entry(normalizers.logsumexp, "log sum_i b_i exp(a_i)", (-_INF, _INF), monotonic=True,
           smooth=True, elementwise=False, jax_nn="logsumexp"),
    _entry(normalizers.sparsemax, "argmin over the simplex of ||p - x||^2", (0, 1),
           monotonic=False, smooth=False, elementwise=False),
    _entry(normalizers.glu, "a sigmoid(b), [a, b] = split(x, 2)", (-_INF, _INF),
           monotonic=False, smooth=True, elementwise=False, jax_nn="glu"),
)  # fmt: skip

_BY_NAME: dict[str, ActivationInfo] = {e.name: e for e in _ENTRIES}
_ALIASES: dict[str, str] = {alias: e.name for e in _ENTRIES for alias in e.aliases}


def names() -> tuple[str, ...]:
    """Every canonical activation name, sorted.

    >>> "relu" in names() and "swish" not in names()
    True
    """
    return tuple(sorted(_BY_NAME))


def aliases() -> dict[str, str]:
    """Every alias and the canonical name it resolves to."""
    return dict(_ALIASES)


def _closest(word: str, candidates: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    if not matches:
        matches = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.0)
    return " or ".join(repr(m) for m in matches)


def resolve(name: str) -> str:
    """The canonical name for ``name`` or one of its aliases (case and '-' are ignored).

    Raises:
        ValueError: for an unknown name, naming the closest known ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"an activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key in _BY_NAME:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(
        f"unknown activation {name!r}; did you mean {_closest(key, [*_BY_NAME, *_ALIASES])}? "
        f"jaxact.names() lists all {len(_BY_NAME)}."
    )


def info(name: str) -> ActivationInfo:
    """The registry entry (function and facts) for an activation name or alias.

    >>> info("relu").output_range
    (0, inf)
    """
    return _BY_NAME[resolve(name)]


# --- checking hyperparameters ----------------------------------------------------------


def _check_kind(owner: str, key: str, value: Any, default: Any) -> None:
    """Checks a hyperparameter that no range rule covers by the kind of its default."""
    if isinstance(value, jax.core.Tracer) or (value is None and (default is None or key == "axis")):
        return
    if key == "axis":
        try:
            [operator.index(a) for a in (value if isinstance(value, tuple) else (value,))]
        except TypeError:
            raise ValueError(
                f"{owner}: axis must be an int or a tuple of ints, got {value!r}"
            ) from None
    elif isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{owner}: {key} must be True or False, got {value!r}")
    elif not (isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key)):
        try:
            array = np.asarray(value)
        except Exception:  # not an array: the function decides
            return
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            raise ValueError(f"{owner}: {key} must be finite, got {value!r}")


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validates hyperparameters for an activation and returns them merged with the defaults.

    Concrete values are checked against :attr:`ActivationInfo.ranges` (numbers must be
    real, finite and in range; a string one of the accepted ones; a flag a bool). A value
    traced under ``jax.jit`` is not known until run and is not checked: outside its range
    it gives what the formula gives (NaN, an infinity, or a surprising value).

    Raises:
        ValueError: for an unknown parameter (naming the closest valid ones), or a
            concrete value of the wrong kind, not finite, or outside its range (naming
            the parameter and the range).

    >>> check_params("softmax", {"temperature": 0.0})
    Traceback (most recent call last):
    ...
    ValueError: softmax: temperature must be a finite number > 0, got 0.0
    """
    entry = info(name)
    valid = entry.params
    rules = _validation.RULES.get(entry.name, {})
    for key, value in params.items():
        if key not in valid:
            hint = f"did you mean {_closest(key, valid)}?" if valid else "it takes none."
            raise ValueError(
                f"{entry.name} has no parameter {key!r}; {hint} "
                f"Its parameters are {sorted(valid) or 'none'}."
            )
        if value is None and key in rules and valid[key] is not None:  # None means "absent"
            raise ValueError(f"{entry.name}: {key} must be {rules[key].describe}, got None")
        if key not in rules and not (entry.name == "step" and key == "surrogate"):
            _check_kind(entry.name, key, value, valid[key])
    merged = {**valid, **params}
    # An optional hyperparameter left at None (softplus's threshold) has nothing to check.
    given = {k: v for k, v in merged.items() if not (v is None and valid[k] is None)}
    _validation.check_hyperparameters(entry.name, **given)
    return merged


# --- binding hyperparameters ------------------------------------------------------------


class _Itself:
    """A value that equals only itself (a traced value, a PRNG key)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Itself) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


def hashable(value: Any) -> Any:
    """A hyperparameter as a value that hashes, and compares as the value does.

    A concrete number becomes a Python number, an array (or list) of numbers nested tuples
    of Python numbers, which ``jnp.asarray`` turns back into the array (and a 1-element
    vector stays distinct from the scalar); a string, a key, a traced value or anything
    else is returned as it is.

    >>> import numpy as np
    >>> hashable(np.float32(0.5)), hashable(np.array([[1, 2]]))
    (0.5, ((1, 2),))
    """
    if isinstance(value, str | bool | None | jax.core.Tracer):
        return value
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return value
    if not isinstance(value, int | float | list | tuple | np.ndarray | np.generic | jax.Array):
        return value
    try:
        array = np.asarray(value)
    except Exception:  # ragged, or holding what numpy cannot convert
        return value
    if array.dtype.kind not in "biuf":
        return value
    return array.item() if array.ndim == 0 else _nested(array.tolist())


def _nested(values: Any) -> Any:
    return tuple(_nested(v) for v in values) if isinstance(values, list) else values


def _comparable(value: Any) -> Any:
    """:func:`hashable`, with what still does not hash (a key, a traced value) as itself."""
    value = hashable(value)
    if isinstance(value, jax.Array):
        return _Itself(value)
    try:
        hash(value)
    except TypeError:
        return _Itself(value)
    return value


class BoundActivation(functools.partial[Any]):
    """An activation with some hyperparameters bound: what :func:`get` returns.

    A :class:`functools.partial` (``.func``, ``.keywords``) that pickles and deep-copies,
    and compares equal, with an equal hash, to another binding equal values to the same
    function, so it can key a cache or be a static argument of ``jax.jit``. Arrays compare
    by value; a traced value or a PRNG key only to itself.

    >>> import jaxact
    >>> jaxact.get("elu", alpha=2.0) == jaxact.get("elu", alpha=2)
    True
    """

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        keywords = tuple(sorted((k, _comparable(v)) for k, v in self.keywords.items()))
        return (self.func, tuple(_comparable(a) for a in self.args), keywords)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BoundActivation):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        bound = ", ".join(f"{k}={v!r}" for k, v in self.keywords.items())
        return f"jaxact.get({self.func.__name__!r}, {bound})"


def get(name: str, **params: Any) -> Callable[..., Any]:
    """The activation called ``name`` (or an alias of it) with ``params`` bound.

    Concrete hyperparameters are checked here (see :func:`check_params`), so a bad value
    fails at once, not at the first call.

    Args:
        name: a canonical name or alias, e.g. ``"relu"``, ``"swish"``, ``"h_swish"``.
        **params: hyperparameters, e.g. ``negative_slope=0.2`` or ``temperature=2.0``.

    Returns:
        A function of the input array: the registry function itself where nothing is
        bound, else a :class:`BoundActivation` (picklable, and equal to another with the
        same function and values).

    Raises:
        ValueError: for an unknown name or parameter (naming the closest valid ones), or
            a concrete value of the wrong kind or outside its range.

    >>> import jax.numpy as jnp
    >>> get("softplus", beta=2.0)(jnp.zeros(2))
    Array([0.34657359, 0.34657359], dtype=float32)
    """
    entry = info(name)
    check_params(entry.name, params)
    if not params:
        return entry.fn
    return BoundActivation(entry.fn, **params)
