r"""jaxact activations as ``flax.linen`` modules, fixed or with learnable hyperparameters.

Needs the optional extra ``flax`` (``pip install jaxact[flax]``). Fixed activations:

>>> import jax, jax.numpy as jnp, flax.linen as nn
>>> import jaxact.linen
>>> model = nn.Sequential([nn.Dense(4), jaxact.linen.Activation("leaky_relu", negative_slope=0.2)])
>>> params = model.init(jax.random.key(0), jnp.ones((1, 3)))
>>> model.apply(params, jnp.ones((1, 3))).shape
(1, 4)

Learnable ones keep their hyperparameters in the ``params`` collection, where optax
trains them like any weight. A hyperparameter constrained positive is stored as
``<name>_raw`` and used as :math:`\mathrm{softplus}(\mathrm{raw}) > 0`; the others are
stored under their own name, as is. Initial values are ``init_value`` (``init`` is
linen's method; :mod:`jaxact.nnx` calls it ``init``). Any jaxact function can also be
passed wherever Flax takes an activation function
(``nn.LSTMCell(features, activation_fn=jaxact.tanh)``).
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jaxact import _layers

__all__ = ["CELU", "ELU", "Activation", "Learnable", "PReLU", "SiLU", "Softplus", "Swish"]


def _accept_hyperparameters(cls):
    """Lets ``cls(activation, **hyperparameters)`` fill the hashable ``hyperparams`` field."""
    generated = cls.__init__

    @functools.wraps(generated)
    def __init__(self, activation, hyperparams=(), **kwargs):
        own = {k: kwargs.pop(k) for k in list(kwargs) if k not in cls.__dataclass_fields__}
        if isinstance(hyperparams, Mapping):
            hyperparams = hyperparams.items()
        merged = {**dict(hyperparams), **own}
        canonical = _layers.check(activation, merged)
        generated(self, canonical, _layers.freeze(merged), **kwargs)

    cls.__init__ = __init__
    return cls


@_accept_hyperparameters
class Activation(nn.Module):
    r"""Any registry activation as a linen module, its hyperparameters fixed.

    ``Activation("leaky_relu", negative_slope=0.2)``: the hyperparameters are validated
    at construction (an unknown name or parameter, or a non-finite value, is a
    ``ValueError``) and kept as a sorted tuple of (name, value) pairs, so the module is
    hashable and its config serialisable. It has no parameters.

    Attributes:
        activation: a registry name or alias, e.g. ``"gelu"`` or ``"swish"``.
        hyperparams: ((name, value), ...); given as keyword arguments.

    Examples:
        >>> import jax.numpy as jnp, jaxact.linen
        >>> act = jaxact.linen.Activation("softplus", beta=2.0)
        >>> act.apply({}, jnp.zeros(2))
        Array([0.34657359, 0.34657359], dtype=float32)
    """

    activation: str
    hyperparams: tuple[tuple[str, Any], ...] = ()

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        return _layers.apply(self.activation, x, dict(self.hyperparams), {})


def _learned_values(module: nn.Module, specs, shape) -> dict[str, Array]:
    values = {}
    for name, value, positive in specs:
        init = _layers.raw_init(value, positive)
        raw = module.param(
            _layers.raw_name(name, positive),
            lambda key, s, d, init=init: jnp.full(s, init, d),
            shape,
            module.param_dtype,
        )
        values[name] = _layers.constrained(raw, positive)
    return values


def _learnable_call(module, activation, params, positive, num_channels, axis, fixed, x):
    x = jnp.asarray(x)
    _layers.check(activation, dict(fixed))
    specs = _layers.learnable_specs(activation, params, positive)
    shape = () if num_channels is None else (num_channels,)
    if num_channels is not None and x.shape[axis] != num_channels:
        raise ValueError(
            f"num_channels={num_channels} but the input has {x.shape[axis]} along axis {axis}"
        )
    values = _learned_values(module, specs, shape)
    values = {k: _layers.broadcast_to_axis(v, x.ndim, axis) for k, v in values.items()}
    return _layers.apply(activation, x, dict(fixed), values)


class Learnable(nn.Module):
    r"""A registry activation whose numeric hyperparameters are trainable parameters.

    ``Learnable("elu", params=("alpha",), positive=("alpha",))`` learns ELU's
    :math:`\alpha`, kept positive as :math:`\alpha = \mathrm{softplus}(\alpha_\mathrm{raw})`.

    Attributes:
        activation: a registry name or alias.
        params: the hyperparameters to learn: names (starting from the registry
            defaults), or (name, initial value) pairs, or a dict.
        positive: names constrained to stay > 0 (softplus reparametrisation).
        num_channels: ``None`` for one scalar per hyperparameter, or the size of
            ``axis``: one value per channel.
        axis: the channel axis of the input.
        fixed: ((name, value), ...) hyperparameters that stay fixed.
        param_dtype: dtype of the parameters.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxact.linen
        >>> layer = jaxact.linen.Learnable("silu", params={"beta": 1.5})
        >>> variables = layer.init(jax.random.key(0), jnp.ones(3))
        >>> variables["params"]["beta"]
        Array(1.5, dtype=float32)
    """

    activation: str
    params: Any = ()
    positive: Sequence[str] = ()
    num_channels: int | None = None
    axis: int = -1
    fixed: tuple[tuple[str, Any], ...] = ()
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        params = tuple(self.params.items()) if isinstance(self.params, Mapping) else self.params
        return _learnable_call(
            self, self.activation, params, self.positive, self.num_channels, self.axis,
            self.fixed, x,
        )  # fmt: skip


class PReLU(nn.Module):
    r"""Parametric ReLU (He et al., 2015): :math:`\max(x, 0) + a \min(x, 0)`, :math:`a` learned.

    Attributes:
        num_channels: ``None`` (or 1) for one shared slope, or the size of ``axis``.
        init_value: the initial slope (0.25, as in the paper and torch).
        axis: the channel axis.
        param_dtype: dtype of the slope.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxact.linen
        >>> layer = jaxact.linen.PReLU(num_channels=2, init_value=0.1)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 2)))
        >>> layer.apply(variables, -jnp.ones((1, 2)))
        Array([[-0.1, -0.1]], dtype=float32)
    """

    num_channels: int | None = None
    init_value: float = 0.25
    axis: int = -1
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        channels = None if self.num_channels in (None, 1) else self.num_channels
        slope = {"negative_slope": self.init_value}
        return _learnable_call(self, "prelu", slope, (), channels, self.axis, (), x)


class _OneLearned(nn.Module):
    """One learned hyperparameter of a registry activation; the subclasses name which."""

    activation: ClassVar[str]
    hyperparameter: ClassVar[str]
    positive: ClassVar[bool]

    init_value: float = 1.0
    num_channels: int | None = None
    axis: int = -1
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        name = self.hyperparameter
        positive = (name,) if self.positive else ()
        params = {name: self.init_value}
        return _learnable_call(
            self, self.activation, params, positive, self.num_channels, self.axis, (), x
        )


class Swish(_OneLearned):
    r"""Swish with a learned :math:`\beta` (Ramachandran et al., 2017): :math:`x\,\sigma(\beta x)`.

    Attributes:
        init_value: the initial :math:`\beta` (1: SiLU).
        num_channels: ``None`` for one :math:`\beta`, or one per channel.
        axis: the channel axis.
        param_dtype: dtype of :math:`\beta`.
    """

    activation, hyperparameter, positive = "silu", "beta", False


SiLU = Swish


class ELU(_OneLearned):
    r"""ELU with a learned :math:`\alpha > 0` (softplus reparametrisation).

    Attributes:
        init_value: the initial :math:`\alpha`.
        num_channels: ``None`` for one :math:`\alpha`, or one per channel.
        axis: the channel axis.
        param_dtype: dtype of :math:`\alpha`.
    """

    activation, hyperparameter, positive = "elu", "alpha", True


class CELU(_OneLearned):
    r"""CELU with a learned :math:`\alpha > 0` (softplus reparametrisation).

    Attributes:
        init_value: the initial :math:`\alpha`.
        num_channels: ``None`` for one :math:`\alpha`, or one per channel.
        axis: the channel axis.
        param_dtype: dtype of :math:`\alpha`.
    """

    activation, hyperparameter, positive = "celu", "alpha", True


class Softplus(_OneLearned):
    r"""Softplus with a learned sharpness :math:`\beta > 0` (softplus reparametrisation).

    Attributes:
        init_value: the initial :math:`\beta`.
        num_channels: ``None`` for one :math:`\beta`, or one per channel.
        axis: the channel axis.
        param_dtype: dtype of :math:`\beta`.
    """

    activation, hyperparameter, positive = "softplus", "beta", True
