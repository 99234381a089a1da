"""Hyperparameter validation shared by the activations, the registry and the layers.

:func:`check_hyperparameters` checks the hyperparameters of one activation against
:data:`RULES`; the activations call it when they are called, ``jaxact.get`` and the
Flax layers when they are built. A concrete bad value raises a ``ValueError`` that
names the activation, the parameter, the value and the valid range.

A value traced by ``jax.jit`` (or ``vmap``, ``grad``) is not known until the
program runs, so it cannot be checked: it passes, and an invalid one gives what the
formula gives (a temperature <= 0 or NaN gives a NaN result, and so does a
``hard_sigmoid`` slope of 0).
"""

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Rule:
    """The valid values of one hyperparameter.

    Attributes:
        describe: the valid values in words, completing "must be ...".
        holds: on a concrete float64 NumPy array of the value, whether every entry is valid.
        numeric: the value must be a real number or an array of them (not a string or
            bool); when False, ``holds`` gets the raw value instead.
    """

    describe: str
    holds: Callable[[Any], bool]
    numeric: bool = True


def _real(describe: str, holds: Callable[[np.ndarray], Any]) -> Rule:
    return Rule(describe, lambda v: bool(np.all(holds(v))))


REAL = _real("a finite real number", np.isfinite)
NOT_NAN = _real("a real number, not NaN (infinities allowed)", lambda v: ~np.isnan(v))
POSITIVE = _real("a finite number > 0", lambda v: np.isfinite(v) & (v > 0))
NON_NEGATIVE = _real("a finite number >= 0", lambda v: np.isfinite(v) & (v >= 0))
NON_ZERO = _real("a finite number other than 0", lambda v: np.isfinite(v) & (v != 0))
BOOL = Rule("True or False", lambda v: isinstance(v, bool | np.bool_), numeric=False)


# Every activation's checked hyperparameters; the ones not listed take any value JAX takes.
RULES: dict[str, dict[str, Rule]] = {
    "sigmoid": {"gain": REAL},
    "softplus": {"beta": POSITIVE, "threshold": NOT_NAN},
    "silu": {"beta": REAL},
    "gelu": {"approximate": BOOL},
    "elu": {"alpha": REAL},
    "celu": {"alpha": NON_ZERO},
    "squareplus": {"b": NON_NEGATIVE},
    "leaky_relu": {"negative_slope": REAL},
    "prelu": {"negative_slope": REAL},
    "rrelu": {"lower": REAL, "upper": REAL},
    "hard_tanh": {"min_val": NOT_NAN, "max_val": NOT_NAN},
    "hard_sigmoid": {"slope": NON_ZERO, "offset": REAL},
    "threshold": {"threshold": NOT_NAN, "value": NOT_NAN},
    "hard_shrink": {"threshold": NON_NEGATIVE},
    "soft_shrink": {"threshold": NON_NEGATIVE},
    "step": {"threshold": NOT_NAN, "sharpness": POSITIVE},  # surrogate: see rectifiers
    "softmax": {"temperature": POSITIVE},
    "log_softmax": {"temperature": POSITIVE},
    "softmin": {"temperature": POSITIVE},
}

# Bounds that must come in order: (activation, lower parameter, upper parameter).
ORDERED = (("rrelu", "lower", "upper"), ("hard_tanh", "min_val", "max_val"))


def is_traced(value: Any) -> bool:
    """True for a value known only when the program runs (a tracer inside jit, vmap, grad)."""
    return isinstance(value, jax.core.Tracer)


def _concrete(name: str, param: str, value: Any) -> np.ndarray:
    """A concrete numeric value as a float64 NumPy array, or a ValueError saying it is not one."""
    if isinstance(value, bool | np.bool_ | str | bytes) or value is None:
        raise ValueError(
            f"{name}: {param} must be a real number, got {value!r} ({type(value).__name__})"
        )
    try:
        array = np.asarray(value)
    except Exception as error:
        raise ValueError(
            f"{name}: {param} must be a real number, got {value!r} ({type(value).__name__})"
        ) from error
    if not (jnp.issubdtype(array.dtype, jnp.integer) or jnp.issubdtype(array.dtype, jnp.floating)):
        raise ValueError(f"{name}: {param} must be a real number, got {value!r} ({array.dtype})")
    return array.astype(np.float64)


def check(name: str, param: str, value: Any, rule: Rule) -> None:
    """Raises a ValueError if a concrete ``value`` breaks ``rule``; traced values pass.

    Raises:
        ValueError: naming the activation, the parameter, the value and the valid range.
    """
    if is_traced(value) or value is None:  # None: the parameter's "absent" (softplus threshold)
        return
    if rule.numeric:
        if rule.holds(_concrete(name, param, value)):
            return
    elif rule.holds(value):
        return
    shown = value if np.ndim(value) == 0 or isinstance(value, str) else np.asarray(value)
    raise ValueError(f"{name}: {param} must be {rule.describe}, got {shown!r}")


def check_choice(name: str, param: str, value: Any, options: Iterable[str]) -> None:
    """Raises a ValueError for a value not among ``options``, naming the closest ones."""
    valid = tuple(options)
    if isinstance(value, str) and value in valid:
        return
    close = difflib.get_close_matches(str(value), valid, n=3, cutoff=0.0)
    raise ValueError(
        f"{name}: unknown {param} {value!r}; did you mean {' or '.join(map(repr, close))}? "
        f"Valid: {', '.join(map(repr, valid))}."
    )


def check_hyperparameters(name: str, **params: Any) -> None:
    """Checks the hyperparameters of activation ``name`` (canonical name) against :data:`RULES`.

    Parameters without a rule, traced values and None pass unchecked; so do unknown
    names (the registry reports those). ``step``'s ``surrogate`` is checked
    against the surrogates ``jaxact.rectifiers.STEP_SURROGATES`` defines.

    Raises:
        ValueError: for a concrete value out of range, naming the activation, the
            parameter, the value and the valid range.

    >>> check_hyperparameters("softmax", temperature=0.0)
    Traceback (most recent call last):
    ...
    ValueError: softmax: temperature must be a finite number > 0, got 0.0
    """
    rules = RULES.get(name, {})
    for param, value in params.items():
        if param in rules:
            check(name, param, value, rules[param])
    if name == "step" and "surrogate" in params:
        from jaxact.rectifiers import STEP_SURROGATES

        check_choice(name, "surrogate", params["surrogate"], STEP_SURROGATES)
    for entry, low, high in ORDERED:
        if entry == name:
            _check_order(name, low, high, params)


def _check_order(name: str, low: str, high: str, params: Mapping[str, Any]) -> None:
    if low not in params or high not in params:
        return  # callers that want the order checked pass both bounds (defaults filled in)
    lo, hi = params[low], params[high]
    if is_traced(lo) or is_traced(hi):
        return
    lo_array, hi_array = _concrete(name, low, lo), _concrete(name, high, hi)
    if not np.all(lo_array <= hi_array):
        raise ValueError(f"{name}: {low} must be <= {high}, got {low}={lo!r}, {high}={hi!r}")
