r"""jaxact activations as ``flax.nnx`` modules, fixed or with learnable hyperparameters.

Needs the optional extra ``flax``. The same layers as :mod:`jaxact.linen`, with the same
parameter names and numbers; none needs ``rngs`` (initial values are constants).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> import jaxact.nnx
>>> model = nnx.Sequential(
...     nnx.Linear(3, 4, rngs=nnx.Rngs(0)), jaxact.nnx.Activation("leaky_relu", negative_slope=0.2)
... )
>>> model(jnp.ones((1, 3))).shape
(1, 4)

A hyperparameter constrained positive is the ``nnx.Param`` ``<name>_raw``, used as
:math:`\mathrm{softplus}(\mathrm{raw})`; the others are ``nnx.Param`` s under their own name.
"""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax.numpy as jnp
from flax import nnx
from jax import Array
from jax.typing import ArrayLike

from jaxact import _layers

__all__ = ["CELU", "ELU", "Activation", "Learnable", "PReLU", "SiLU", "Softplus", "Swish"]


class Activation(nnx.Module):
    r"""Any registry activation as an nnx module, its hyperparameters fixed (validated now).

    Args:
        activation: a registry name or alias.
        **hyperparams: its hyperparameters, e.g. ``negative_slope=0.2``.

    Examples:
        >>> import jax.numpy as jnp, jaxact.nnx
        >>> jaxact.nnx.Activation("softplus", beta=2.0)(jnp.zeros(2))
        Array([0.34657359, 0.34657359], dtype=float32)
    """

    def __init__(self, activation: str, **hyperparams: Any):
        self.activation = _layers.check(activation, hyperparams)
        self.hyperparams = _layers.config_key(hyperparams)

    def __call__(self, x: ArrayLike) -> Array:
        return _layers.apply(self.activation, x, dict(self.hyperparams), {})


class Learnable(nnx.Module):
    r"""A registry activation whose numeric hyperparameters are trainable ``nnx.Param`` s.

    Args:
        activation: a registry name or alias.
        params: the hyperparameters to learn: a name, names (starting from the registry
            defaults), or a dict name -> initial value.
        positive: names constrained to stay > 0 (softplus reparametrisation).
        num_channels: ``None`` for one scalar per hyperparameter, or the size of ``axis``.
        axis: the channel axis of the input.
        param_dtype: dtype of the parameters.
        **fixed: hyperparameters that stay fixed.

    Examples:
        >>> import jax.numpy as jnp, jaxact.nnx
        >>> layer = jaxact.nnx.Learnable("elu", params={"alpha": 2.0}, positive=("alpha",))
        >>> round(float(layer(-jnp.inf * jnp.ones(()))), 4)
        -2.0
    """

    def __init__(
        self,
        activation: str,
        params: Any = (),
        *,
        positive: Sequence[str] = (),
        num_channels: int | None = None,
        axis: int = -1,
        param_dtype: Any = jnp.float32,
        **fixed: Any,
    ):
        self.activation = _layers.check(activation, fixed)
        self.fixed = _layers.config_key(fixed)
        if isinstance(params, Mapping):
            params = tuple(params.items())
        specs = _layers.learnable_specs(self.activation, params, positive)
        self.specs = tuple((name, positive_) for name, _, positive_ in specs)
        _layers.check_num_channels(num_channels)
        self.num_channels = num_channels
        self.axis = axis
        shape = () if num_channels is None else (num_channels,)
        for name, value, positive_ in specs:
            init = _layers.raw_init(value, positive_)
            setattr(
                self,
                _layers.raw_name(name, positive_),
                nnx.Param(jnp.full(shape, init, param_dtype)),
            )

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        _layers.check_channels(x, self.num_channels, self.axis)
        values = {}
        for name, positive in self.specs:
            raw = getattr(self, _layers.raw_name(name, positive))[...]
            value = _layers.constrained(raw, positive)
            values[name] = _layers.broadcast_to_axis(value, x.ndim, self.axis)
        return _layers.apply(self.activation, x, dict(self.fixed), values)


class PReLU(Learnable):
    r"""Parametric ReLU, :math:`\max(x, 0) + a \min(x, 0)` with :math:`a` learned.

    Drops in for ``flax.nnx.PReLU`` (same ``negative_slope_init``, default 0.01, and
    ``param_dtype``; the same ``nnx.Param`` ``negative_slope``), and can learn one slope
    per channel.

    Args:
        num_channels: ``None`` (or 1) for one shared slope, or the size of ``axis``.
        negative_slope_init: the initial slope (0.01, as in Flax; He et al. and torch use 0.25).
        axis: the channel axis.
        param_dtype: dtype of the slope.

    Examples:
        >>> import jax.numpy as jnp, jaxact.nnx
        >>> jaxact.nnx.PReLU(num_channels=2, negative_slope_init=0.1)(-jnp.ones((1, 2)))
        Array([[-0.1, -0.1]], dtype=float32)
    """

    def __init__(
        self,
        num_channels: int | None = None,
        *,
        negative_slope_init: float = 0.01,
        axis: int = -1,
        param_dtype: Any = jnp.float32,
    ):
        _layers.check_num_channels(num_channels)
        channels = None if num_channels in (None, 1) else num_channels
        super().__init__(
            "prelu", {"negative_slope": negative_slope_init}, num_channels=channels, axis=axis,
            param_dtype=param_dtype,
        )  # fmt: skip


class _OneLearned(Learnable):
    """One learned hyperparameter of a registry activation; the subclasses name which."""

    learned_activation: ClassVar[str]
    learned: ClassVar[str]
    learned_positive: ClassVar[bool]

    def __init__(
        self,
        init: float = 1.0,
        *,
        num_channels: int | None = None,
        axis: int = -1,
        param_dtype: Any = jnp.float32,
    ):
        super().__init__(
            self.learned_activation, {self.learned: init},
            positive=(self.learned,) if self.learned_positive else (),
            num_channels=num_channels, axis=axis, param_dtype=param_dtype,
        )  # fmt: skip


class Swish(_OneLearned):
    r"""Swish :math:`x\,\sigma(\beta x)` with :math:`\beta` learned (``init``: initial value)."""

    learned_activation, learned, learned_positive = "silu", "beta", False


SiLU = Swish


class ELU(_OneLearned):
    r"""ELU with a learned :math:`\alpha > 0` (``init``: initial value)."""

    learned_activation, learned, learned_positive = "elu", "alpha", True


class CELU(_OneLearned):
    r"""CELU with a learned :math:`\alpha > 0` (``init``: initial value)."""

    learned_activation, learned, learned_positive = "celu", "alpha", True


class Softplus(_OneLearned):
    r"""Softplus with a learned sharpness :math:`\beta > 0` (``init``: initial value)."""

    learned_activation, learned, learned_positive = "softplus", "beta", True
