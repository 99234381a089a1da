"""The registry: every activation by name, its aliases, and the facts users ask about.

>>> import jaxact
>>> f = jaxact.get("leaky_relu", negative_slope=0.2)
>>> f(jaxact.identity(-1.0))
Array(-0.2, dtype=float32)
>>> jaxact.info("swish").name
'silu'
"""

import dataclasses
import difflib
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxact import normalizers, rectifiers, smooth

_INF = math.inf
# The minima of mish and of tanh-gelu (at their derivative's zero), from mpmath at 30 digits.
_MISH_MIN = -0.3088434130172504
_GELU_TANH_MIN = -0.17004075057125405


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
        zero_centred: odd, ``f(-x) = -f(x)``, so its outputs are centred on 0.
        self_gated: of the form ``x * g(x)`` with a gate ``g`` (swish, gelu, mish, ...).
        elementwise: acts on each element alone (False for softmax, glu, ...).
        aliases: other names that resolve to this one.
        jax_nn: the name of the same function in ``jax.nn``, if it has one.
        kinks: given the bound parameters, the x where the function or its
            derivative is not smooth (for quadrature that must not straddle them).
    """

    name: str
    fn: Callable[..., Any]
    formula: str
    output_range: tuple[float, float]
    monotonic: bool
    smooth: bool
    zero_centred: bool
    self_gated: bool
    elementwise: bool = True
    aliases: tuple[str, ...] = ()
    jax_nn: str | None = None
    kinks: Callable[[Mapping[str, Any]], tuple[float, ...]] = lambda params: ()

    @property
    def params(self) -> dict[str, Any]:
        """The hyperparameters and their defaults (every argument after the input)."""
        signature = inspect.signature(self.fn)
        parameters = list(signature.parameters.values())[1:]
        return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    def breakpoints(self, **params: Any) -> tuple[float, ...]:
        """The kinks for these parameters (defaults filled in), sorted."""
        return tuple(sorted(set(self.kinks({**self.params, **params}))))


def _hard_sigmoid_kinks(p: Mapping[str, Any]) -> tuple[float, ...]:
    """Where slope x + offset crosses 0 and 1; none for a flat line (slope 0)."""
    slope, offset = float(p["slope"]), float(p["offset"])
    return () if slope == 0 else (-offset / slope, (1 - offset) / slope)


def _entry(fn, formula, output_range, monotonic, smooth_, zero_centred, self_gated, **kw):
    return ActivationInfo(
        fn.__name__, fn, formula, output_range, monotonic, smooth_, zero_centred, self_gated, **kw
    )


_ENTRIES = (
    # name, formula, output range, monotonic, smooth, zero-centred, self-gated
    _entry(smooth.sigmoid, "1 / (1 + exp(-gain x))", (0, 1), True, True, False, False,
           aliases=("logistic",), jax_nn="sigmoid"),
    _entry(smooth.tanh, "(e^x - e^-x) / (e^x + e^-x)", (-1, 1), True, True, True, False,
           jax_nn="tanh"),
    _entry(smooth.softplus, "log(1 + exp(beta x)) / beta", (0, _INF), True, True, False, False,
           jax_nn="softplus"),
    _entry(smooth.log_sigmoid, "-softplus(-x)", (-_INF, 0), True, True, False, False,
           aliases=("logsigmoid",), jax_nn="log_sigmoid"),
    _entry(smooth.silu, "x sigmoid(beta x)", (-0.2784645427610738, _INF), False, True, False, True,
           aliases=("swish",), jax_nn="silu"),
    _entry(smooth.mish, "x tanh(softplus(x))", (_MISH_MIN, _INF), False, True, False, True,
           jax_nn="mish"),
    _entry(smooth.gelu, "x Phi(x) (tanh approximation by default)", (_GELU_TANH_MIN, _INF), False,
           True, False, True, jax_nn="gelu"),
    _entry(smooth.elu, "x if x > 0 else alpha (exp(x) - 1)", (-1, _INF), True, True, False, False,
           jax_nn="elu", kinks=lambda p: (0.0,)),
    _entry(smooth.celu, "max(x, 0) + alpha (exp(min(x, 0) / alpha) - 1)", (-1, _INF), True, True,
           False, False, jax_nn="celu", kinks=lambda p: (0.0,)),
    _entry(smooth.selu, "scale (x if x > 0 else alpha (exp(x) - 1))", (-1.7580993408473766, _INF),
           True, False, False, False, jax_nn="selu", kinks=lambda p: (0.0,)),
    _entry(smooth.soft_sign, "x / (1 + |x|)", (-1, 1), True, True, True, False,
           aliases=("softsign",), jax_nn="soft_sign"),
    _entry(smooth.squareplus, "(x + sqrt(x^2 + b)) / 2", (0, _INF), True, True, False, False,
           jax_nn="squareplus"),
    _entry(smooth.sparse_plus, "0, (x + 1)^2 / 4, x on x <= -1, |x| < 1, x >= 1", (0, _INF), True,
           True, False, False, jax_nn="sparse_plus", kinks=lambda p: (-1.0, 1.0)),
    _entry(smooth.sparse_sigmoid, "clip(x + 1, 0, 2) / 2", (0, 1), True, False, False, False,
           jax_nn="sparse_sigmoid", kinks=lambda p: (-1.0, 1.0)),
    _entry(smooth.exponential, "exp(x)", (0, _INF), True, True, False, False),
    _entry(smooth.tanh_shrink, "x - tanh(x)", (-_INF, _INF), True, True, True, False,
           aliases=("tanhshrink",)),
    _entry(rectifiers.identity, "x", (-_INF, _INF), True, True, True, False,
           aliases=("linear",), jax_nn="identity"),
    _entry(rectifiers.relu, "max(x, 0)", (0, _INF), True, False, False, False,
           jax_nn="relu", kinks=lambda p: (0.0,)),
    _entry(rectifiers.relu6, "min(max(x, 0), 6)", (0, 6), True, False, False, False,
           jax_nn="relu6", kinks=lambda p: (0.0, 6.0)),
    _entry(rectifiers.leaky_relu, "x if x >= 0 else negative_slope x", (-_INF, _INF), True, False,
           False, False, aliases=("leakyrelu",), jax_nn="leaky_relu", kinks=lambda p: (0.0,)),
    _entry(rectifiers.prelu, "max(x, 0) + negative_slope min(x, 0)", (-_INF, _INF), True, False,
           False, False, kinks=lambda p: (0.0,)),
    _entry(rectifiers.rrelu, "x if x >= 0 else a x, a ~ U(lower, upper)", (-_INF, _INF), True,
           False, False, False, kinks=lambda p: (0.0,)),
    _entry(rectifiers.hard_tanh, "clip(x, min_val, max_val)", (-1, 1), True, False, True, False,
           aliases=("hardtanh",), jax_nn="hard_tanh",
           kinks=lambda p: (float(p["min_val"]), float(p["max_val"]))),
    _entry(rectifiers.hard_sigmoid, "clip(slope x + offset, 0, 1)", (0, 1), True, False, False,
           False, aliases=("hardsigmoid",), jax_nn="hard_sigmoid",
           kinks=_hard_sigmoid_kinks),
    _entry(rectifiers.hard_silu, "x relu6(x + 3) / 6", (-0.375, _INF), False, False, False, True,
           aliases=("hard_swish", "h_swish", "hardswish"), jax_nn="hard_silu",
           kinks=lambda p: (-3.0, 3.0)),
    _entry(rectifiers.threshold, "x if x > threshold else value", (0, _INF), True, False, False,
           False, kinks=lambda p: (float(p["threshold"]),)),
    _entry(rectifiers.hard_shrink, "x if |x| > threshold else 0", (-_INF, _INF), True, False, True,
           False, aliases=("hardshrink",),
           kinks=lambda p: (-float(p["threshold"]), float(p["threshold"]))),
    _entry(rectifiers.soft_shrink, "sign(x) max(|x| - threshold, 0)", (-_INF, _INF), True, False,
           True, False, aliases=("softshrink",),
           kinks=lambda p: (-float(p["threshold"]), float(p["threshold"]))),
    _entry(rectifiers.step, "1 if x >= threshold else 0", (0, 1), True, False, False, False,
           aliases=("heaviside", "binary_step"), kinks=lambda p: (float(p["threshold"]),)),
    _entry(normalizers.softmax, "exp(x_i / T) / sum_j exp(x_j / T)", (0, 1), False, True, False,
           False, elementwise=False, jax_nn="softmax"),
    _entry(normalizers.log_softmax, "x_i / T - log sum_j exp(x_j / T)", (-_INF, 0), False, True,
           False, False, elementwise=False, jax_nn="log_softmax"),
    _entry(normalizers.softmin, "exp(-x_i / T) / sum_j exp(-x_j / T)", (0, 1), False, True, False,
           False, elementwise=False),
    _entry(normalizers.logsumexp, "log sum_i b_i exp(a_i)", (-_INF, _INF), True, True, False,
           False, elementwise=False, jax_nn="logsumexp"),
    _entry(normalizers.sparsemax, "argmin over the simplex of ||p - x||^2", (0, 1), False, False,
           False, False, elementwise=False),
    _entry(normalizers.glu, "a sigmoid(b), [a, b] = split(x, 2)", (-_INF, _INF), False, True, False,
           False, elementwise=False, jax_nn="glu"),
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


def _closest(word: str, candidates) -> str:
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


def _is_non_finite(value: Any) -> bool:
    """True for a concrete number, or array of numbers, holding NaN or an infinity.

    Booleans, strings, keys and traced values (unknown until run) are never non-finite.
    """
    if value is None or isinstance(value, bool | str):
        return False
    try:
        array = np.asarray(value)
        return array.dtype != np.bool_ and not bool(np.all(np.isfinite(array)))
    except Exception:  # a tracer, a PRNG key, or something that is not a number
        return False


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validates hyperparameters for an activation and returns them merged with the defaults.

    Raises:
        ValueError: for an unknown parameter (naming the closest valid ones) or a
            concrete number that is NaN or infinite.
    """
    entry = info(name)
    valid = entry.params
    for key, value in params.items():
        if key not in valid:
            hint = f"did you mean {_closest(key, valid)}?" if valid else "it takes none."
            raise ValueError(
                f"{entry.name} has no parameter {key!r}; {hint} "
                f"Its parameters are {sorted(valid) or 'none'}."
            )
        if _is_non_finite(value):
            raise ValueError(f"{entry.name} parameter {key}={value} must be finite")
    return {**valid, **params}


def get(name: str, **params: Any) -> Callable[..., Any]:
    """The activation called ``name`` (or an alias of it) with ``params`` bound.

    Args:
        name: a canonical name or alias, e.g. ``"relu"``, ``"swish"``, ``"h_swish"``.
        **params: hyperparameters, e.g. ``negative_slope=0.2`` or ``temperature=2.0``.

    Returns:
        A function of the input array.

    Raises:
        ValueError: for an unknown name or parameter; the message names the closest valid ones.

    >>> import jax.numpy as jnp
    >>> get("softplus", beta=2.0)(jnp.zeros(2))
    Array([0.34657359, 0.34657359], dtype=float32)
    """
    entry = info(name)
    check_params(entry.name, params)
    if not params:
        return entry.fn
    return functools.partial(entry.fn, **params)
