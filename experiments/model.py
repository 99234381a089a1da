"""The deep MLP of the gradient-flow experiments (Flax linen) and its initialisations.

Every hidden layer is ``h = W x + b`` (then BatchNorm or LayerNorm if asked),
``x' = phi(h)``, with an optional residual ``x' = x + phi(h)`` where the shapes
agree. The activation's input ``h`` is the *pre-activation*; the model marks
it with ``perturb`` so that the training program can take ``dLoss/dh`` per
layer, and sows it so that the activation statistics can be read.

Initialisations (kernel variance, fan-in ``n_in``, fan-out ``n_out``):
``lecun`` 1/n_in, ``he`` 2/n_in, ``xavier`` 2/(n_in + n_out) and ``critical``
sigma_w^2/n_in with sigma_w the activation's critical gain from
:mod:`jaxact.theory` (order-to-chaos edge; biases N(0, sigma_b^2)). The model
is built with unit kernels (variance 1/n_in, Gaussian) and N(0, 1) biases, and
:func:`scale_parameters` multiplies them by each layer's sigma_w and by sigma_b:
the scales are arguments of the compiled program, so every initialisation shares
one compilation (and so does every activation: see
:func:`experiments.train.switched_activation`). ``init_scale`` multiplies
sigma_w (``> 1``: the exploding-gradient regime).
"""

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import jaxact

INITS = ("lecun", "he", "xavier", "critical")
NORMS = ("none", "batch", "layer")


class HiddenLayer(nn.Module):
    """``h -> phi(norm(W h + b))`` (plus ``h`` if residual) as a scan body ``(h, _) -> (h, None)``.

    The activation's input is marked with ``perturb("preact")`` (for ``dLoss/dh``)
    and sown to ``intermediates`` (for the activation statistics).
    """

    width: int
    activation: Callable[[jax.Array], jax.Array]
    kernel_init: Callable[..., jax.Array]
    bias_init: Callable[..., jax.Array]
    norm: str
    residual: bool
    train: bool
    dtype: Any

    @nn.compact
    def __call__(self, h: jax.Array, _: Any = None) -> tuple[jax.Array, None]:
        z = nn.Dense(
            self.width,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            dtype=self.dtype,
            name="dense",
        )(h)
        if self.norm == "batch":
            z = nn.BatchNorm(use_running_average=not self.train, dtype=self.dtype, name="norm")(z)
        elif self.norm == "layer":
            z = nn.LayerNorm(dtype=self.dtype, name="norm")(z)
        z = self.perturb("preact", z)
        self.sow("intermediates", "preact", z)
        a = self.activation(z)
        return (h + a if self.residual and h.shape == a.shape else a), None


class MLP(nn.Module):
    """A deep fully connected classifier.

    The first hidden layer (``layer_0``, input width to ``width``) is its own
    module; the other ``depth - 1`` share a shape and run as one ``nn.scan``
    (``layers``, parameters stacked on a leading layer axis), so that the
    compiled program does not grow with depth.

    Attributes:
        depth: number of hidden layers.
        width: units per hidden layer.
        num_classes: outputs of the linear read-out.
        activation: the elementwise nonlinearity ``phi``.
        kernel_init: initialiser of every kernel, read-out included.
        bias_init: initialiser of every bias.
        norm: ``"none"``, ``"batch"`` or ``"layer"``, applied to ``W x + b`` before ``phi``.
        residual: add each hidden layer's input to its output where the shapes agree.
        dtype: computation dtype (parameters stay float32).
    """

    depth: int
    width: int
    num_classes: int
    activation: Callable[[jax.Array], jax.Array]
    kernel_init: Callable[..., jax.Array]
    bias_init: Callable[..., jax.Array] = nn.initializers.zeros
    norm: str = "none"
    residual: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        layer_kwargs = {
            "width": self.width,
            "activation": self.activation,
            "kernel_init": self.kernel_init,
            "bias_init": self.bias_init,
            "norm": self.norm,
            "residual": self.residual,
            "train": train,
            "dtype": self.dtype,
        }
        h, _ = HiddenLayer(**layer_kwargs, name="layer_0")(x.astype(self.dtype))
        if self.depth > 1:
            stacked = nn.scan(
                HiddenLayer,
                variable_axes={
                    "params": 0,
                    "batch_stats": 0,
                    "perturbations": 0,
                    "intermediates": 0,
                },
                split_rngs={"params": True},
                length=self.depth - 1,
            )
            h, _ = stacked(**layer_kwargs, name="layers")(h, None)
        logits = nn.Dense(
            self.num_classes,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            dtype=self.dtype,
            name="readout",
        )(h)
        return self.perturb("logits", logits)


def layer_scales(
    init: str,
    activation: str,
    params: dict[str, Any],
    *,
    depth: int,
    width: int,
    input_dim: int,
    num_classes: int,
    sigma_b: float = 0.0,
    init_scale: float = 1.0,
) -> dict[str, float]:
    """The multipliers :func:`scale_parameters` applies: sigma_w of the first, hidden and
    read-out kernels and sigma_b of every bias (0 unless the init is ``critical``).

    Raises:
        ValueError: for an unknown init, or ``critical`` for an activation without a critical
            point (the message from :func:`jaxact.theory.critical_gain`).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    kwargs = {"sigma_b": sigma_b, "init_scale": init_scale}
    return {
        "first": sigma_w(init, activation, params, fan_in=input_dim, fan_out=width, **kwargs),
        "hidden": sigma_w(init, activation, params, fan_in=width, fan_out=width, **kwargs),
        "readout": sigma_w(init, activation, params, fan_in=width, fan_out=num_classes, **kwargs),
        "bias": sigma_b if init == "critical" else 0.0,
    }


def scale_parameters(params: Any, scales: dict[str, jax.Array]) -> Any:
    """Multiplies the unit-variance kernels and biases of a fresh :class:`MLP` by ``scales``."""

    def scale(path, leaf):
        names = [getattr(p, "key", None) for p in path]
        if names[-1] == "bias" and ("dense" in names or "readout" in names):
            return leaf * scales["bias"].astype(leaf.dtype)
        if names[-1] != "kernel":
            return leaf
        if names[0] == "readout":
            return leaf * scales["readout"].astype(leaf.dtype)
        if names[0] == "layer_0":
            return leaf * scales["first"].astype(leaf.dtype)
        return leaf * scales["hidden"].astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(scale, params)


def sigma_w(
    init: str,
    activation: str,
    params: dict[str, Any],
    *,
    fan_in: int,
    fan_out: int,
    sigma_b: float = 0.0,
    init_scale: float = 1.0,
) -> float:
    """The mean-field weight scale: kernel variance times fan-in, square-rooted.

    Raises:
        ValueError: ``critical`` for an activation without a critical point (from jaxact.theory).
    """
    if init == "critical":
        from jaxact import theory

        base = theory.critical_gain(activation, sigma_b=sigma_b, **params)
    else:
        variance_times_fan_in = {
            "lecun": 1.0,
            "he": 2.0,
            "xavier": 2.0 * fan_in / (fan_in + fan_out),
        }[init]
        base = math.sqrt(variance_times_fan_in)
    return float(base) * init_scale


def mean_field_profile(
    activation: str,
    params: dict[str, Any],
    init: str,
    *,
    depth: int,
    width: int,
    input_dim: int,
    q_input: float,
    sigma_b: float = 0.0,
    init_scale: float = 1.0,
) -> list[dict[str, float]]:
    """Mean-field prediction of the backward pre-activation gradient, layer by layer.

    The first pre-activation has variance ``q^0 = sigma_w0^2 q_input + sigma_b^2``
    (``q_input`` the mean squared input component), the next ones follow the
    length map, and ``dLoss/dh^l = phi'(h^l) * W^{l+1}^T dLoss/dh^{l+1}`` gives
    ``E|dL/dh^l|^2 / E|dL/dh^{l+1}|^2 = chi(q^l)`` with the next layer's sigma_w.

    Returns:
        For each hidden layer ``l < depth - 1``: ``layer``, ``q`` (= q^l), ``chi`` and
        ``predicted_log_ratio`` = 0.5 log chi = log(|dL/dh^l| / |dL/dh^{l+1}|).
    """
    from jaxact import theory

    kwargs = {"sigma_b": sigma_b, "init_scale": init_scale}
    first = sigma_w(init, activation, params, fan_in=input_dim, fan_out=width, **kwargs)
    hidden = sigma_w(init, activation, params, fan_in=width, fan_out=width, **kwargs)
    q = first**2 * q_input + sigma_b**2
    rows = []
    for layer in range(depth - 1):
        chi = float(theory.chi(activation, q, sigma_w=hidden, **params))
        rows.append(
            {"layer": layer, "q": q, "chi": chi, "predicted_log_ratio": 0.5 * math.log(chi)}
        )
        q = float(theory.length_map(activation, q, sigma_w=hidden, sigma_b=sigma_b, **params))
    return rows


def build(
    *,
    activation: str | Callable[[jax.Array], jax.Array],
    params: dict[str, Any] | None = None,
    depth: int,
    width: int,
    num_classes: int,
    norm: str = "none",
    residual: bool = False,
    dtype: str = "float32",
) -> MLP:
    """The MLP with unit initialisation (see :func:`scale_parameters`); ``activation`` a
    jaxact name (``params`` bound) or the function itself."""
    if isinstance(activation, str):
        activation = jaxact.get(activation, **(params or {}))
    return MLP(
        depth=depth,
        width=width,
        num_classes=num_classes,
        activation=activation,
        kernel_init=nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
        bias_init=nn.initializers.normal(1.0),
        norm=norm,
        residual=residual,
        dtype=jnp.dtype(dtype),
    )
