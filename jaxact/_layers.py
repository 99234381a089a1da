"""What the linen and nnx layers share: validation, hyperparameter specs and the forward pass.

No Flax here, so that ``import jaxact`` never imports it.
"""

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from jaxact import registry


def freeze(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Hyperparameters as a sorted tuple of (name, value): hashable, for a module's config."""
    return tuple(sorted(params.items()))


def check(activation: str, params: Mapping[str, Any]) -> str:
    """The canonical name, after validating the hyperparameters (ValueError otherwise)."""
    canonical = registry.info(activation).name
    registry.check_params(canonical, params)
    return canonical


def learnable_specs(
    activation: str,
    params: Any,
    positive: Any,
) -> tuple[tuple[str, float, bool], ...]:
    """(name, initial value, positive) for each trainable hyperparameter.

    ``params`` is a name, a sequence of names (initial values are the registry defaults)
    or a mapping name -> initial value; ``positive`` names those kept > 0.
    """
    entry = registry.info(activation)
    if isinstance(params, str):
        params = (params,)
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = []
        for p in params:
            if isinstance(p, tuple):
                items.append(p)
            else:
                items.append((p, entry.params.get(p)))
    if not items:
        raise ValueError(f"give the names of {entry.name}'s hyperparameters to learn")
    registry.check_params(entry.name, dict(items))
    positive = (positive,) if isinstance(positive, str) else tuple(positive)
    learned = {name for name, _ in items}
    for name in positive:
        if name not in learned:
            raise ValueError(f"positive={name!r} is not among the learned parameters {learned}")
    specs = []
    for name, value in items:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"{entry.name}'s {name}={value!r} is not a number, so it cannot be learned"
            )
        if name in positive and not value > 0:
            raise ValueError(f"{name} is constrained positive, but its initial value is {value}")
        specs.append((name, float(value), name in positive))
    return tuple(specs)


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = y > 0."""
    return y + math.log(-math.expm1(-y))


def raw_name(name: str, positive: bool) -> str:
    """The name a trainable hyperparameter has in the param tree."""
    return f"{name}_raw" if positive else name


def raw_init(value: float, positive: bool) -> float:
    return inverse_softplus(value) if positive else value


def constrained(raw: Array, positive: bool) -> Array:
    return jax.nn.softplus(raw) if positive else raw


def broadcast_to_axis(value: Array, ndim: int, axis: int) -> Array:
    """A per-channel vector shaped to broadcast along ``axis`` of an ndim-d input."""
    if value.ndim == 0 or ndim == 0:
        return value
    axis = axis % ndim
    return value.reshape(value.shape + (1,) * (ndim - axis - 1))


def apply(activation: str, x: Array, fixed: Mapping[str, Any], learned: Mapping[str, Array]):
    """The activation with its fixed and (already constrained) learned hyperparameters."""
    x = jnp.asarray(x)
    values = {k: v.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else v
              for k, v in learned.items()}  # fmt: skip
    return registry.info(activation).fn(x, **fixed, **values)
