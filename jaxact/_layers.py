"""What the linen and nnx layers share: validation, hyperparameter specs and the forward pass.

No Flax here, so that ``import jaxact`` never imports it.
"""

import math
from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jaxact import registry


def pairs(params: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Hyperparameters given as a mapping or as (name, value) pairs, as a dict."""
    return dict(params.items() if isinstance(params, Mapping) else params)


def config_key(
    params: Mapping[str, Any] | Iterable[tuple[str, Any]],
) -> tuple[tuple[str, Any], ...]:
    """Hyperparameters as a sorted tuple of (name, value): hashable, for a module's config.

    Concrete arrays become nested tuples of Python numbers (``jnp.asarray`` gives them
    back), so that a module holding a per-channel vector hashes and compares by value.
    """
    return tuple(sorted((k, registry.hashable(v)) for k, v in pairs(params).items()))


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


def check_num_channels(num_channels: Any) -> None:
    """A clear error for a ``num_channels`` that is not a positive int or None."""
    if num_channels is None:
        return
    if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
        raise ValueError(
            f"num_channels must be a positive int (one learned value per channel) or None "
            f"(one shared value), got {num_channels!r}"
        )


def check_channels(x: Array, num_channels: int | None, axis: int) -> None:
    """A clear error where the input has no ``axis`` or not ``num_channels`` entries along it."""
    if num_channels is None:
        return
    if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"num_channels={num_channels} learns one value per entry of axis {axis}, but the "
            f"input has shape {x.shape}; use num_channels=None for one shared value"
        )
    if x.shape[axis] != num_channels:
        raise ValueError(
            f"num_channels={num_channels} but the input has {x.shape[axis]} along axis {axis}"
        )


def broadcast_to_axis(value: Array, ndim: int, axis: int) -> Array:
    """A per-channel vector shaped to broadcast along ``axis`` of an ndim-d input."""
    if value.ndim == 0 or ndim == 0:
        return value
    axis = axis % ndim
    return value.reshape(value.shape + (1,) * (ndim - axis - 1))


def apply(
    activation: str, x: ArrayLike, fixed: Mapping[str, Any], learned: Mapping[str, Array]
) -> Array:
    """The activation with its fixed and (already constrained) learned hyperparameters."""
    x = jnp.asarray(x)
    values = {k: v.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else v
              for k, v in learned.items()}  # fmt: skip
    out: Array = registry.info(activation).fn(x, **fixed, **values)
    return out
