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
linen's method; :mod:`jaxact.nnx` calls it ``init``), and ``negative_slope_init`` for
:class:`PReLU`, as in ``flax.linen.PReLU``. Any jaxact function can also be
passed wherever Flax takes an activation function
(``nn.LSTMCell(features, activation_fn=jaxact.tanh)``).

The layers that learn one hyperparameter (:class:`Swish`, :class:`ELU`, :class:`CELU`,
:class:`Softplus`) take ``init_value``, ``num_channels`` (``None`` for one value, or one
per channel), ``axis`` (the channel axis) and ``param_dtype``.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from jaxact import _layers

__all__ = ["CELU", "ELU", "Activation", "Learnable", "PReLU", "SiLU", "Softplus", "Swish"]


class _GathersHyperparameters(type(nn.Module)):  # type: ignore[misc]
    """Gathers the keyword arguments that are not fields into the field ``cls.gathered``.

    ``Activation("elu", alpha=2.0)`` becomes ``Activation("elu", hyperparams={"alpha": 2.0})``
    before Flax's dataclass ``__init__`` runs. Being the metaclass, it also applies to the
    subclasses Flax's lifted transforms make (``nn.jit(Activation)``, ``nn.remat``).
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        fields = [f.name for f in dataclasses.fields(cls)]
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in fields}
        if extra:
            target = cls.gathered
            position = fields.index(target)
            if len(args) > position:
                given, args = args[position], args[:position] + args[position + 1 :]
            else:
                given = kwargs.pop(target, ())
            kwargs[target] = {**_layers.pairs(given), **extra}
        return super().__call__(*args, **kwargs)


class Activation(nn.Module, metaclass=_GathersHyperparameters):
    r"""Any registry activation as a linen module, its hyperparameters fixed.

    ``Activation("leaky_relu", negative_slope=0.2)``: the hyperparameters are validated
    at construction (an unknown name or parameter, or a value of the wrong kind or out
    of range, is a ``ValueError``) and kept as a sorted tuple of (name, value) pairs, an
    array as nested tuples, so the module is hashable (a static argument of ``jax.jit``)
    and its config serialisable. It has no parameters. ``nn.jit``, ``nn.remat`` and the
    other lifted transforms take the class itself.

    Attributes:
        activation: a registry name or alias, e.g. ``"gelu"`` or ``"swish"``.
        hyperparams: ((name, value), ...); given as keyword arguments (or a dict).

    Examples:
        >>> import jax.numpy as jnp, jaxact.linen
        >>> act = jaxact.linen.Activation("softplus", beta=2.0)
        >>> act.apply({}, jnp.zeros(2))
        Array([0.34657359, 0.34657359], dtype=float32)
    """

    gathered: ClassVar[str] = "hyperparams"

    activation: str
    hyperparams: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        hyperparams = _layers.pairs(self.hyperparams)
        self.activation = _layers.check(self.activation, hyperparams)
        self.hyperparams = _layers.config_key(hyperparams)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        return _layers.apply(self.activation, x, dict(self.hyperparams), {})


def _learned_values(
    module: nn.Module, specs: Sequence[tuple[str, float, bool]], shape: tuple[int, ...]
) -> dict[str, Array]:
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


def _learnable_call(
    module: nn.Module,
    activation: str,
    specs: Sequence[tuple[str, float, bool]],
    num_channels: int | None,
    axis: int,
    fixed: Sequence[tuple[str, Any]],
    x: ArrayLike,
) -> Array:
    x = jnp.asarray(x)
    _layers.check_channels(x, num_channels, axis)
    shape = () if num_channels is None else (num_channels,)
    values = _learned_values(module, specs, shape)
    values = {k: _layers.broadcast_to_axis(v, x.ndim, axis) for k, v in values.items()}
    return _layers.apply(activation, x, dict(fixed), values)


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


class Learnable(nn.Module, metaclass=_GathersHyperparameters):
    r"""A registry activation whose numeric hyperparameters are trainable parameters.

    ``Learnable("elu", params=("alpha",), positive=("alpha",))`` learns ELU's
    :math:`\alpha`, kept positive as :math:`\alpha = \mathrm{softplus}(\alpha_\mathrm{raw})`.
    The configuration is validated at construction; keyword arguments that are not
    attributes are fixed hyperparameters (``Learnable("hard_tanh", "max_val", min_val=0.)``).

    Attributes:
        activation: a registry name or alias.
        params: the hyperparameters to learn: a name, names (starting from the registry
            defaults), (name, initial value) pairs, or a dict.
        positive: names constrained to stay > 0 (softplus reparametrisation).
        num_channels: ``None`` for one scalar per hyperparameter, or the size of
            ``axis``: one value per channel.
        axis: the channel axis of the input.
        fixed: ((name, value), ...) hyperparameters that stay fixed (or keyword arguments).
        param_dtype: dtype of the parameters.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxact.linen
        >>> layer = jaxact.linen.Learnable("silu", params={"beta": 1.5})
        >>> variables = layer.init(jax.random.key(0), jnp.ones(3))
        >>> variables["params"]["beta"]
        Array(1.5, dtype=float32)
    """

    gathered: ClassVar[str] = "fixed"

    activation: str
    params: Any = ()
    positive: Sequence[str] = ()
    num_channels: int | None = None
    axis: int = -1
    fixed: tuple[tuple[str, Any], ...] = ()
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        params = self.params
        if isinstance(params, Mapping):
            params = tuple(params.items())
        self.params = _names(params)
        self.positive = _names(self.positive)
        fixed = _layers.pairs(self.fixed)
        self.activation = _layers.check(self.activation, fixed)
        self.fixed = _layers.config_key(fixed)
        _layers.learnable_specs(self.activation, self.params, self.positive)  # validates
        _layers.check_num_channels(self.num_channels)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        specs = _layers.learnable_specs(self.activation, self.params, self.positive)
        return _learnable_call(
            self, self.activation, specs, self.num_channels, self.axis, self.fixed, x
        )


class PReLU(nn.Module):
    r"""Parametric ReLU (He et al., 2015): :math:`\max(x, 0) + a \min(x, 0)`, :math:`a` learned.

    Drops in for ``flax.linen.PReLU`` (same ``negative_slope_init``, default 0.01, and
    ``param_dtype``; the same parameter ``negative_slope``), and can learn one slope
    per channel.

    Attributes:
        num_channels: ``None`` (or 1) for one shared slope, or the size of ``axis``.
        negative_slope_init: the initial slope (0.01, as in Flax; He et al. and torch use 0.25).
        axis: the channel axis.
        param_dtype: dtype of the slope.

    Examples:
        >>> import jax, jax.numpy as jnp, jaxact.linen
        >>> layer = jaxact.linen.PReLU(num_channels=2, negative_slope_init=0.1)
        >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 2)))
        >>> layer.apply(variables, -jnp.ones((1, 2)))
        Array([[-0.1, -0.1]], dtype=float32)
    """

    num_channels: int | None = None
    negative_slope_init: float = 0.01
    axis: int = -1
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _layers.check_num_channels(self.num_channels)
        _layers.learnable_specs("prelu", {"negative_slope": self.negative_slope_init}, ())
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        channels = None if self.num_channels in (None, 1) else self.num_channels
        specs = _layers.learnable_specs("prelu", {"negative_slope": self.negative_slope_init}, ())
        return _learnable_call(self, "prelu", specs, channels, self.axis, (), x)


class _OneLearned(nn.Module):
    """One learned hyperparameter of a registry activation; the subclasses name which.

    Attributes (of every subclass):
        init_value: the hyperparameter's initial value.
        num_channels: ``None`` for one value, or one per channel.
        axis: the channel axis.
        param_dtype: dtype of the learned value.
    """

    learned_activation: ClassVar[str]
    learned: ClassVar[str]
    learned_positive: ClassVar[bool]

    init_value: float = 1.0
    num_channels: int | None = None
    axis: int = -1
    param_dtype: Any = jnp.float32

    def _specs(self) -> tuple[tuple[str, float, bool], ...]:
        positive = (self.learned,) if self.learned_positive else ()
        return _layers.learnable_specs(
            self.learned_activation, {self.learned: self.init_value}, positive
        )

    def __post_init__(self) -> None:
        _layers.check_num_channels(self.num_channels)
        self._specs()  # validates
        super().__post_init__()

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        return _learnable_call(
            self, self.learned_activation, self._specs(), self.num_channels, self.axis, (), x
        )


class Swish(_OneLearned):
    r"""Swish, :math:`x\,\sigma(\beta x)`, learning :math:`\beta` (Ramachandran et al., 2017)."""

    learned_activation, learned, learned_positive = "silu", "beta", False


SiLU = Swish


class ELU(_OneLearned):
    r"""ELU with a learned :math:`\alpha > 0` (softplus reparametrisation)."""

    learned_activation, learned, learned_positive = "elu", "alpha", True


class CELU(_OneLearned):
    r"""CELU with a learned :math:`\alpha > 0` (softplus reparametrisation)."""

    learned_activation, learned, learned_positive = "celu", "alpha", True


class Softplus(_OneLearned):
    r"""Softplus with a learned sharpness :math:`\beta > 0` (softplus reparametrisation)."""

    learned_activation, learned, learned_positive = "softplus", "beta", True
