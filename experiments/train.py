"""One compiled training program per network: activations switched, configurations and seeds
batched, steps scanned.

A :class:`Config` is four parts: the :class:`Model` (activation, depth, width,
norm, ...), the :class:`Init`, the :class:`Optimizer` and the :class:`Schedule`.
The compiled :class:`Program` depends only on the network (the model but its
activation), the optimiser's rule and the schedule: the activation is chosen by
an argument (``lax.switch`` over the activations of a sweep, a real branch as
the index is not batched), and every number that can be an argument is one (the
initialisation's scales, learning rate, clip threshold, weight decay, the
seeds). So a sweep of several activations and initialisations of one network
compiles once; :func:`train_configs` runs the configurations of one activation
in one call (vmap over configurations and over seeds).

What the program records (:mod:`experiments.records` names every output):

- at every ``log_every``-th training step (and the last), from that step's own
  backward pass on its training batch: per layer the norm of the kernel gradient
  and of ``dLoss/dh`` (``h`` the layer's pre-activation; a zero perturbation
  added to ``h`` has ``dLoss/dh`` as its gradient), and the batch loss;
- every ``eval_every`` steps (and after the last), on a fixed probe batch per
  seed: the activations' mean and standard deviation and the fraction of
  saturated units (local slope ``|phi'(h)| < 0.01``) per layer; loss and
  accuracy on the whole train and test sets.

A step whose training loss is NaN or infinite marks the seed as diverged: its
parameters stop changing and its later records are NaN.
"""

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxact
from experiments import background, devices
from experiments import data as data_lib
from experiments import model as model_lib
from experiments.numerics import safe_norm

OPTIMIZERS = ("sgd", "momentum", "adam")
DTYPES = ("float32", "bfloat16", "float16")
SATURATION_SLOPE = 1e-2
# Evaluations per run when ``eval_every`` is left at 0.
EVALUATIONS = 20
# The training program compiles in less CPU time without XLA's new CPU fusion emitters,
# and runs as fast (docs/benchmarks.md).
COMPILER_OPTIONS = {**devices.COMPILER_OPTIONS, "xla_cpu_use_fusion_emitters": False}


# --- configuration --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Model:
    """The network and its activation (the compiled program is built for the network,
    :class:`Network`; the activation is one of its arguments).

    Attributes:
        activation: canonical jaxact name.
        activation_params: the activation's hyperparameters as sorted (name, value) pairs.
        depth: hidden layers.
        width: units per hidden layer.
        norm: ``none``, ``batch`` or ``layer``.
        residual: residual connections between hidden layers.
        dtype: computation dtype.
        dataset: ``digits``, ``spirals`` or ``teacher`` (fixes the input and output widths).
        input_norm: ``none`` (the inputs as loaded) or ``unit`` (every example rescaled to
            the squared length ``q0`` per feature; see :func:`experiments.data.unit_length`).
        q0: the inputs' squared length per feature under ``input_norm="unit"``.
    """

    activation: str = "tanh"
    activation_params: tuple[tuple[str, Any], ...] = ()
    depth: int = 16
    width: int = 64
    norm: str = "none"
    residual: bool = False
    dtype: str = "float32"
    dataset: str = "digits"
    input_norm: str = "none"
    q0: float = 1.0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.activation_params)

    @property
    def activation_spec(self) -> str:
        """The activation as written on the command line, e.g. ``leaky_relu:negative_slope=0.2``."""
        args = ",".join(f"{k}={v}" for k, v in self.activation_params)
        return f"{self.activation}:{args}" if args else self.activation

    @property
    def network(self) -> "Network":
        """Everything but the activation: what the compiled program is built for."""
        return Network(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Network)})


@dataclasses.dataclass(frozen=True)
class Network:
    """The :class:`Model` without its activation (see there for the fields)."""

    depth: int
    width: int
    norm: str
    residual: bool
    dtype: str
    dataset: str
    input_norm: str
    q0: float


@dataclasses.dataclass(frozen=True)
class Init:
    """The initialisation (arguments of the program, not part of it).

    Attributes:
        init: ``lecun``, ``he``, ``xavier`` or ``critical``.
        init_scale: multiplies the kernels' standard deviation.
        sigma_b: bias standard deviation of the critical initialisation (else biases are 0).
    """

    init: str = "xavier"
    init_scale: float = 1.0
    sigma_b: float = 0.0


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """The optimiser: the rule is part of the program, the numbers are its arguments.

    Attributes:
        optimizer: ``sgd``, ``momentum`` (0.9) or ``adam``.
        lr: learning rate.
        clip: ``clip_by_global_norm`` threshold, 0 for none.
        weight_decay: weight decay added to the gradient before the rule, 0 for none.
    """

    optimizer: str = "sgd"
    lr: float = 0.05
    clip: float = 0.0
    weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long and how often (part of the program).

    Attributes:
        steps: optimiser steps.
        batch_size: examples per step (and in the probe batch).
        log_every: steps between gradient records (1: every step).
        eval_every: steps between evaluations; 0 for ``steps // 20`` (at least 1).
    """

    steps: int = 500
    batch_size: int = 64
    log_every: int = 1
    eval_every: int = 0

    @property
    def eval_interval(self) -> int:
        return self.eval_every or max(1, self.steps // EVALUATIONS)

    def log_steps(self) -> list[int]:
        """The training steps whose gradients are recorded: every ``log_every``, and the last."""
        steps = list(range(0, self.steps, self.log_every))
        if steps[-1] != self.steps - 1:
            steps.append(self.steps - 1)
        return steps

    def eval_steps(self) -> list[int]:
        """The steps (updates done) at which the program evaluates: 0, every ``eval_every``,
        and the end."""
        steps = list(range(0, self.steps + 1, self.eval_interval))
        if steps[-1] != self.steps:
            steps.append(self.steps)
        return steps


@dataclasses.dataclass(frozen=True)
class Program:
    """What one compiled program is built for: the configurations that share it differ only
    in their activation (one of ``activations``, chosen per call), their :class:`Init` and the
    numbers of their :class:`Optimizer`.

    Attributes:
        network: the model without its activation.
        activations: the ``(name, activation_params)`` pairs the program can run.
        optimizer: the optimiser's rule.
        schedule: steps, batch size and recording cadence.
    """

    network: Network
    activations: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    optimizer: str
    schedule: Schedule

    def index(self, model: Model) -> int:
        """The position of ``model``'s activation among :attr:`activations`."""
        return self.activations.index((model.activation, model.activation_params))


_PARTS = {
    "model": Model,
    "initialisation": Init,
    "optimiser": Optimizer,
    "schedule": Schedule,
}


@dataclasses.dataclass(frozen=True)
class Config:
    """One training configuration (hashable: it keys the results).

    Build one from flat settings with :meth:`create`; ``config.depth`` and the like
    read through to the part that holds them.
    """

    model: Model = Model()
    initialisation: Init = Init()
    optimiser: Optimizer = Optimizer()
    schedule: Schedule = Schedule()

    @classmethod
    def create(cls, **settings: Any) -> "Config":
        """A configuration from flat settings (any field of the four parts).

        Raises:
            ValueError: for a setting no part has.
        """
        if isinstance(settings.get("activation_params"), dict):
            settings["activation_params"] = tuple(sorted(settings["activation_params"].items()))
        parts = {}
        for part, kind in _PARTS.items():
            names = {f.name for f in dataclasses.fields(kind)}
            parts[part] = kind(**{k: settings.pop(k) for k in list(settings) if k in names})
        if settings:
            raise ValueError(f"unknown settings {sorted(settings)}; known: {sorted(field_names())}")
        return cls(**parts)

    def replace(self, **settings: Any) -> "Config":
        """A copy with some flat settings changed."""
        return Config.create(**{**self.to_dict(), **settings})

    def __getattr__(self, name: str) -> Any:
        # Flat read access: config.depth is config.model.depth, config.lr config.optimizer.lr.
        if name.startswith("__"):
            raise AttributeError(name)
        for part in _PARTS:
            value = object.__getattribute__(self, part)
            if name in {f.name for f in dataclasses.fields(value)} or hasattr(type(value), name):
                return getattr(value, name)
        raise AttributeError(f"Config has no setting {name!r}")

    @property
    def label(self) -> str:
        """A short name for plots and tables: activation/init plus what is not the default."""
        parts = [self.model.activation_spec, self.initialisation.init]
        if self.initialisation.init_scale != 1.0:
            parts.append(f"x{self.initialisation.init_scale:g}")
        if self.model.norm != "none":
            parts.append(f"{self.model.norm}norm")
        if self.model.residual:
            parts.append("residual")
        if self.optimiser.clip:
            parts.append(f"clip{self.optimiser.clip:g}")
        return "/".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The flat settings (``activation_params`` as a dict)."""
        d = {}
        for part in _PARTS:
            d.update(dataclasses.asdict(getattr(self, part)))
        d["activation_params"] = dict(self.model.activation_params)
        return d

    def key(self, seeds) -> str:
        """A digest of the configuration and the seeds: what a finished run is resumed by."""
        text = json.dumps([self.to_dict(), [int(s) for s in seeds]], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def program_key(self) -> tuple[Network, str, Schedule]:
        """What the compiled program depends on besides the activations: configurations with
        equal keys share one program (see :func:`group_by_program`)."""
        return (self.model.network, self.optimiser.optimizer, self.schedule)

    def program(self) -> Program:
        """The program of this configuration alone (one activation)."""
        return program_of([self])

    def hyper(self) -> dict[str, jax.Array]:
        """The program's numeric arguments: the init's scales (see
        :func:`experiments.model.layer_scales`), learning rate, clip threshold (inf for
        none) and weight decay."""
        model, init = self.model, self.initialisation
        data = _dataset(model.dataset, model.input_norm, model.q0)
        scales = model_lib.layer_scales(
            init.init, model.activation, model.params, depth=model.depth, width=model.width,
            input_dim=data.input_dim, num_classes=data.num_classes, sigma_b=init.sigma_b,
            init_scale=init.init_scale,
        )  # fmt: skip
        scales["lr"] = self.optimiser.lr
        scales["clip"] = self.optimiser.clip if self.optimiser.clip else math.inf
        scales["weight_decay"] = self.optimiser.weight_decay
        return {k: np.float32(v) for k, v in scales.items()}

    def validate(self) -> None:
        """Checks everything that can be checked before compiling.

        Raises:
            ValueError: with a message naming the bad setting.
        """
        model, init, opt, schedule = (
            self.model,
            self.initialisation,
            self.optimiser,
            self.schedule,
        )
        entry = jaxact.info(model.activation)
        jaxact.registry.check_params(entry.name, model.params)
        if not entry.elementwise:
            raise ValueError(
                f"{entry.name} is not elementwise (it mixes units), so it has no per-unit "
                "slope or mean-field theory; choose an elementwise activation"
            )
        if "key" in model.params:
            raise ValueError(f"{entry.name}: a random key cannot be given on the command line")
        for name, low in (
            ("depth", 1), ("width", 1), ("batch_size", 1), ("log_every", 1), ("steps", 1),
            ("eval_every", 0),
        ):  # fmt: skip
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        for name, value, choices in (
            ("init", init.init, model_lib.INITS),
            ("norm", model.norm, model_lib.NORMS),
            ("optimizer", opt.optimizer, OPTIMIZERS),
            ("dtype", model.dtype, DTYPES),
            ("dataset", model.dataset, data_lib.NAMES),
            ("input norm", model.input_norm, data_lib.INPUT_NORMS),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose from {choices}")
        for name in ("lr", "clip", "weight_decay", "sigma_b", "init_scale", "q0"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        if opt.lr == 0 or init.init_scale == 0 or model.q0 == 0:
            raise ValueError("lr, init_scale and q0 must be positive")
        if model.norm == "batch" and schedule.batch_size < 2:
            raise ValueError("BatchNorm needs batch_size >= 2")
        if init.init == "critical":
            try:
                self.hyper()
            except ValueError as e:
                raise ValueError(f"critical init for {model.activation_spec}: {e}") from e


def field_names() -> list[str]:
    """Every flat setting of a :class:`Config`."""
    return [f.name for kind in _PARTS.values() for f in dataclasses.fields(kind)]


def defaults() -> dict[str, Any]:
    """The flat settings of ``Config()``: the one source of the defaults."""
    return Config().to_dict()


def benchmark_config() -> Config:
    """A small configuration for the vmap-against-loop benchmark."""
    return Config.create(
        activation="tanh", init="xavier", depth=8, width=32, steps=100, log_every=1, eval_every=25
    )


# --- the compilation cache ----------------------------------------------------------


def default_cache_dir() -> Path:
    """``$JAXACT_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxact/xla`` (``~/.cache/jaxact/xla``)."""
    if os.environ.get("JAXACT_CACHE_DIR"):
        return Path(os.environ["JAXACT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxact" / "xla"


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Keeps compiled programs on disk (JAX's persistent compilation cache), so that a re-run,
    a resumed sweep or the test suite loads them instead of compiling again.

    Args:
        directory: where; default :func:`default_cache_dir`. ``"none"`` or ``""`` turns it off.

    Returns:
        The directory in use, or None when off (or when it cannot be created).
    """
    if directory is not None and str(directory).lower() in ("", "none", "off"):
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path = Path(directory) if directory is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", 1 << 30)  # least recently used go
    return path


# --- the program ----------------------------------------------------------------------


class TrainState(NamedTuple):
    """One seed's training state; ``diverged_step`` is -1 until the loss goes non-finite."""

    params: Any
    batch_stats: Any
    opt_state: Any
    diverged_step: jax.Array


@functools.lru_cache(maxsize=8)
def _dataset(name: str, input_norm: str = "none", q0: float = 1.0) -> data_lib.Dataset:
    return data_lib.load(name, input_norm=input_norm, q0=q0)


def _dataset_of(network: Network) -> data_lib.Dataset:
    return _dataset(network.dataset, network.input_norm, network.q0)


def switched_activation(program: Program, activation: jax.Array | int):
    """The elementwise function ``program.activations[activation]``.

    It is ``lax.switch`` over them: the index is an argument of the compiled program, not
    batched, so only the chosen branch runs. A single activation is switched too (to itself):
    XLA fuses an activation outside a conditional with its neighbours, which changes the last
    bits, and a configuration's numbers must not depend on what it was trained beside.
    """
    branches = [jaxact.get(name, **dict(params)) for name, params in program.activations]
    return functools.partial(lax.switch, activation, branches * (2 if len(branches) == 1 else 1))


def build_model(program: Program, activation: jax.Array | int = 0) -> model_lib.MLP:
    """The Flax MLP of ``program`` running its ``activation``-th activation."""
    network = program.network
    return model_lib.build(
        activation=switched_activation(program, activation), depth=network.depth,
        width=network.width, num_classes=_dataset_of(network).num_classes, norm=network.norm,
        residual=network.residual, dtype=network.dtype,
    )  # fmt: skip


def make_optimizer(rule: str, hyper: dict[str, Any]) -> optax.GradientTransformation:
    """Global-norm clipping (``hyper["clip"]``, inf for none), weight decay, then the rule.

    The numbers are traced values inside the program: one compilation serves them all.
    """
    lr = hyper["lr"]
    update = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=0.9),
        "adam": lambda: optax.adam(lr),
    }[rule]()
    return optax.chain(
        optax.clip_by_global_norm(hyper["clip"]),
        optax.add_decayed_weights(hyper["weight_decay"]),
        update,
    )


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(
        optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    )


def _accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


def _per_layer(tree: Any, first, stacked, last=None) -> jax.Array:
    """One value per layer: layer 0, the scanned layers (leading axis), then the read-out."""
    parts = [first(tree["layer_0"])[None]]
    if "layers" in tree:
        parts.append(stacked(tree["layers"]))
    if last is not None:
        parts.append(last(tree)[None])
    return jnp.concatenate(parts)


def init_state(program: Program, key: jax.Array, hyper: dict, data: dict) -> TrainState:
    """Unit-variance parameters scaled by the init's multipliers; the optimiser's state."""
    mlp = build_model(program)
    variables = mlp.init(key, data["x_train"][:1], train=False)
    params = model_lib.scale_parameters(variables["params"], hyper)
    opt_state = make_optimizer(program.optimizer, hyper).init(params)
    return TrainState(params, variables.get("batch_stats", {}), opt_state, jnp.int32(-1))


def _zero_perturbations(mlp: model_lib.MLP, x: jax.Array) -> Any:
    shapes = jax.eval_shape(lambda: mlp.init(jax.random.key(0), x, train=False)["perturbations"])
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _gradient_norms(grads: Any, preact_grads: Any) -> dict[str, jax.Array]:
    return {
        "weight_grad_norm": _per_layer(
            grads,
            lambda t: safe_norm(t["dense"]["kernel"]),
            lambda t: jax.vmap(safe_norm)(t["dense"]["kernel"]),
            lambda t: safe_norm(t["readout"]["kernel"]),
        ),
        "preact_grad_norm": _per_layer(
            preact_grads,
            lambda t: safe_norm(t["preact"]),
            lambda t: jax.vmap(safe_norm)(t["preact"]),
            lambda t: safe_norm(t["logits"]),
        ),
    }


def train_step(
    program: Program,
    activation: jax.Array | int,
    state: TrainState,
    step: jax.Array,
    key: jax.Array,
    hyper: dict,
    data: dict,
    *,
    record: jax.Array | bool = True,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimiser step on a random batch; records the step's own per-layer gradient norms.

    ``dLoss/dh`` comes from the same backward pass as the parameter gradient: the model adds
    a zero perturbation to every pre-activation, and its gradient is ``dLoss/dh``. Norms are
    computed only where ``record`` is true (NaN elsewhere).
    """
    mlp = build_model(program, activation)
    x_train, y_train = data["x_train"], data["y_train"]
    idx = jax.random.randint(
        jax.random.fold_in(key, step), (program.schedule.batch_size,), 0, x_train.shape[0]
    )
    x, y = x_train[idx], y_train[idx]

    def loss_fn(params, perturbations):
        variables = {"params": params, "perturbations": perturbations}
        if program.network.norm == "batch":
            variables["batch_stats"] = state.batch_stats
            logits, updates = mlp.apply(variables, x, train=True, mutable=["batch_stats"])
            return _cross_entropy(logits, y), updates["batch_stats"]
        return _cross_entropy(mlp.apply(variables, x, train=True), y), state.batch_stats

    (loss, batch_stats), (grads, preact_grads) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True
    )(state.params, _zero_perturbations(mlp, x))
    tx = make_optimizer(program.optimizer, hyper)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    newly = (state.diverged_step < 0) & ~jnp.isfinite(loss)
    diverged_step = jnp.where(newly, step, state.diverged_step)
    # A diverged seed keeps its parameters: no NaN arithmetic for the rest of the run.
    keep = diverged_step >= 0
    new = (params, batch_stats, opt_state)
    old = (state.params, state.batch_stats, state.opt_state)
    params, batch_stats, opt_state = jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)

    def norms():
        return _gradient_norms(grads, preact_grads)

    if isinstance(record, bool) and record:
        records = norms()
    else:
        blank = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), jax.eval_shape(norms))
        records = lax.cond(record, norms, lambda: blank)
    records["batch_loss"] = loss
    nan = jnp.float32(jnp.nan)
    records = {k: jnp.where(keep, nan, v.astype(jnp.float32)) for k, v in records.items()}
    return TrainState(params, batch_stats, opt_state, diverged_step), records


def evaluate(
    program: Program,
    activation: jax.Array | int,
    state: TrainState,
    step: jax.Array,
    probe: tuple,
    data: dict,
) -> dict[str, jax.Array]:
    """Activation statistics on the probe batch; loss and accuracy on the train and test sets."""
    mlp = build_model(program, activation)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    probe_x, probe_y = probe
    # The probe batch in training mode (BatchNorm normalises by the batch, as in training),
    # without updating the running statistics.
    probe_logits, inter = mlp.apply(
        variables, probe_x, train=True, mutable=["batch_stats", "intermediates"]
    )
    z = _per_layer(
        inter["intermediates"], lambda t: t["preact"][0], lambda t: t["preact"][0]
    )  # (depth, batch, width)
    phi = mlp.activation  # the switched activation the model applies
    a, slope = jax.jvp(phi, (z,), (jnp.ones_like(z),))
    a = a.astype(jnp.float32)
    saturated = (jnp.abs(slope) < SATURATION_SLOPE).astype(jnp.float32)
    n_train = data["x_train"].shape[0]
    # Train and test in one forward pass (evaluation mode treats examples independently).
    logits = mlp.apply(variables, jnp.concatenate([data["x_train"], data["x_test"]]), train=False)
    train_logits, test_logits = logits[:n_train], logits[n_train:]
    probe_loss = _cross_entropy(probe_logits, probe_y)
    records = {
        "act_mean": jnp.mean(a, axis=(1, 2)),
        "act_std": jnp.std(a, axis=(1, 2)),
        "saturated_fraction": jnp.mean(saturated, axis=(1, 2)),
        "train_loss": _cross_entropy(train_logits, data["y_train"]),
        "train_accuracy": _accuracy(train_logits, data["y_train"]),
        "test_loss": _cross_entropy(test_logits, data["y_test"]),
        "test_accuracy": _accuracy(test_logits, data["y_test"]),
        "probe_loss": probe_loss,
    }
    diverged_step = state.diverged_step
    diverged = ((diverged_step >= 0) & (diverged_step < step)) | ~jnp.isfinite(probe_loss)
    nan = jnp.float32(jnp.nan)
    records = {k: jnp.where(diverged, nan, v.astype(jnp.float32)) for k, v in records.items()}
    records["diverged"] = diverged
    # The training step whose loss first went non-finite, finer than the evaluation grid
    # (the step evaluated when only the probe loss is non-finite); -1 if none.
    first_bad = jnp.where(diverged_step >= 0, diverged_step, step)
    records["diverged_step"] = jnp.where(diverged, first_bad, -1).astype(jnp.int32)
    return records


def run(
    program: Program, activation: jax.Array, seed: jax.Array, data: dict, hyper: dict
) -> dict[str, jax.Array]:
    """One seed's whole run of ``program.activations[activation]``: init, ``steps`` training
    steps in one ``lax.scan``, evaluations.

    Returns:
        The gradient records (:func:`train_step`'s, leading axis ``schedule.log_steps()``)
        and the evaluation records (:func:`evaluate`'s, leading axis
        ``schedule.eval_steps()``), in one dict.
    """
    schedule = program.schedule
    key = jax.random.key(seed)
    init_key, batch_key, probe_key = jax.random.split(key, 3)
    state = init_state(program, init_key, hyper, data)
    n_train = data["x_train"].shape[0]
    probe_size = min(schedule.batch_size, n_train)
    probe_idx = jax.random.choice(probe_key, n_train, (probe_size,), replace=False)
    probe = (data["x_train"][probe_idx], data["y_train"][probe_idx])
    eval_shape = jax.eval_shape(
        lambda: evaluate(program, activation, state, jnp.int32(0), probe, data)
    )
    blank = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), eval_shape)
    log_every, eval_every, steps = schedule.log_every, schedule.eval_interval, schedule.steps

    def body(state, step):
        # Evaluate the state after ``step`` updates, then make update number ``step``.
        evaluation = lax.cond(
            (step % eval_every == 0) | (step == steps),
            lambda: evaluate(program, activation, state, step, probe, data),
            lambda: blank,
        )
        record = True if log_every == 1 else (step % log_every == 0) | (step == steps - 1)
        state, gradients = train_step(
            program, activation, state, step, batch_key, hyper, data, record=record
        )
        return state, (gradients, evaluation)

    # One iteration more than there are steps: its evaluation is the final one, its update is
    # dropped. (Evaluating after the scan instead would compile the evaluation twice.)
    _, (gradients, evaluations) = lax.scan(body, state, jnp.arange(steps + 1, dtype=jnp.int32))
    log_idx = np.asarray(schedule.log_steps())
    eval_idx = np.asarray(schedule.eval_steps())
    records = {k: v[log_idx] for k, v in gradients.items()}
    records.update({k: v[eval_idx] for k, v in evaluations.items()})
    return records


def dataset_arrays(name: str, *, input_norm: str = "none", q0: float = 1.0) -> dict[str, jax.Array]:
    """The dataset (its inputs normalised by ``input_norm``, see :func:`experiments.data.load`)
    as the device arrays the training program takes (arguments, not constants: as constants
    they slow XLA's compilation down)."""
    data = _dataset(name, input_norm, float(q0))
    return {k: jnp.asarray(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")}


@functools.lru_cache(maxsize=8)
def _batched_program(program: Program, n_devices: int):
    """``(activation, seeds, data, hyper) -> records`` vmapped over configurations (hyper's
    leading axis) and seeds, jitted; ``activation`` indexes ``program.activations`` and is
    not batched. With several devices (of one or several processes) each device runs the
    same program on its share of the seeds (``shard_map``): no computation is split across
    devices, so the numbers do not depend on how many processes there are."""
    per_run = jax.vmap(functools.partial(run, program), in_axes=(None, 0, None, 0))

    def batched(activation, seeds, data, hyper):
        # One vmap over the (configuration, seed) pairs: tracing it is half the work of a
        # vmap over configurations of a vmap over seeds (both batch every scan).
        n_configs, n_seeds = len(next(iter(hyper.values()))), len(seeds)
        pairs = {k: jnp.repeat(v, n_seeds, axis=0) for k, v in hyper.items()}
        out = per_run(activation, jnp.tile(seeds, n_configs), data, pairs)
        return jax.tree.map(lambda v: v.reshape(n_configs, n_seeds, *v.shape[1:]), out)

    if n_devices == 1:
        return jax.jit(batched, compiler_options=COMPILER_OPTIONS), None
    mesh = Mesh(np.asarray(jax.devices()), ("seed",))
    replicated = PartitionSpec()
    spmd = jax.shard_map(
        batched,
        mesh=mesh,
        in_specs=(replicated, PartitionSpec("seed"), replicated, replicated),
        out_specs=PartitionSpec(None, "seed"),
        check_vma=False,  # every value in the body is per device (per seed)
    )
    return jax.jit(spmd, compiler_options=COMPILER_OPTIONS), NamedSharding(
        mesh, PartitionSpec("seed")
    )


@functools.lru_cache(maxsize=4)
def _single_program(program: Program):
    return jax.jit(functools.partial(run, program), compiler_options=COMPILER_OPTIONS)


def _stacked_hyper(configs: Sequence[Config]) -> dict[str, np.ndarray]:
    hypers = [c.hyper() for c in configs]
    return {k: np.stack([h[k] for h in hypers]) for k in hypers[0]}


def program_of(configs: Sequence[Config]) -> Program:
    """The one program of ``configs`` (equal :meth:`Config.program_key`): their activations
    in order of first appearance.

    Raises:
        ValueError: if the configurations need different programs.
    """
    keys = {c.program_key() for c in configs}
    if len(keys) != 1:
        raise ValueError("these configurations need different programs; group them first")
    activations = dict.fromkeys((c.model.activation, c.model.activation_params) for c in configs)
    network, optimizer, schedule = configs[0].program_key()
    return Program(network, tuple(activations), optimizer, schedule)


def _by_activation(program: Program, configs: Sequence[Config]) -> list[list[Config]]:
    """``configs`` split into one call per activation, in the program's order."""
    calls: dict[int, list[Config]] = {}
    for config in configs:
        calls.setdefault(program.index(config.model), []).append(config)
    return list(calls.values())


def _call(program: Program, configs: Sequence[Config], seeds) -> tuple[Any, tuple]:
    """The batched program and its arguments for ``configs``, all of one activation."""
    (index,) = {program.index(c.model) for c in configs}
    seeds = np.asarray(seeds, dtype=np.int32).reshape(-1)
    network = program.network
    data = dataset_arrays(network.dataset, input_norm=network.input_norm, q0=network.q0)
    hyper = _stacked_hyper(configs)
    activation = np.int32(index)
    n_devices = jax.device_count()
    jitted, by_seed = _batched_program(program, n_devices)
    if by_seed is None:
        return jitted, (activation, jnp.asarray(seeds), data, hyper)
    padded = devices.padded(seeds, n_devices)
    global_seeds = jax.make_array_from_callback(padded.shape, by_seed, lambda i: padded[i])
    # Host arrays: every process holds the same data, replicated over the global mesh.
    return jitted, (activation, global_seeds, jax.device_get(data), hyper)


def _split(out: dict, n_configs: int, n_seeds: int) -> list[dict[str, np.ndarray]]:
    """Per configuration, the records on this host without the padding seeds (sliced in
    numpy: slicing on the device would compile a program per shape)."""
    if jax.process_count() > 1:
        out = multihost_utils.process_allgather(out, tiled=True)
    out = to_numpy(out)
    return [{k: v[i, :n_seeds] for k, v in out.items()} for i in range(n_configs)]


def train_configs(configs: Sequence[Config], seeds) -> list[dict[str, np.ndarray]]:
    """Trains several configurations of one program for every seed: one call per activation.

    Args:
        configs: configurations with equal :meth:`Config.program_key`.
        seeds: integer seeds (any sequence or array).

    Returns:
        Per configuration, the records with a leading seed axis (see :func:`run`). With
        several devices the seeds are padded to a multiple of the device count and the
        padding dropped again; across hosts the result is gathered to every host.

    Raises:
        ValueError: if the configurations need different programs.
    """
    configs = list(configs)
    program_of(configs)  # raises for configurations of different programs
    results: dict[int, dict[str, np.ndarray]] = {}
    for call, records in train_groups([configs], seeds):
        results.update(zip(map(id, call), records, strict=True))
    return [results[id(c)] for c in configs]


# Programs compiled ahead of time by train_groups: (program, devices, configs, seeds) -> them.
_COMPILED: dict[tuple, Any] = {}


def clear_caches() -> None:
    """Forgets every compiled program of this module (the persistent cache is untouched)."""
    _COMPILED.clear()
    _batched_program.cache_clear()
    _single_program.cache_clear()


def train_groups(
    groups: Sequence[Sequence[Config]], seeds
) -> Iterator[tuple[list[Config], list[dict[str, np.ndarray]]]]:
    """Trains each group (configurations of one program, see :func:`group_by_program`), one
    call per activation, compiling the next program while the current call runs.

    Yields:
        (the configurations of one call, their records as numpy, per configuration as
        :func:`train_configs`).
    """
    n_seeds = len(np.atleast_1d(seeds))
    calls = []
    for group in groups:
        program = program_of(list(group))
        calls += [(program, call) for call in _by_activation(program, list(group))]

    def key(program, call):
        return (program, jax.device_count(), len(call), n_seeds)

    def compile_(program, call):
        jitted, args = _call(program, call, seeds)
        if key(program, call) not in _COMPILED:
            _COMPILED[key(program, call)] = jitted.lower(*args).compile()
        return _COMPILED[key(program, call)], args

    pending = background.in_background(compile_, *calls[0]) if calls else None
    for i, (_, call) in enumerate(calls):
        compiled, args = pending.result()
        out = compiled(*args)  # dispatched; runs while the next program compiles
        if i + 1 < len(calls):
            pending = background.in_background(compile_, *calls[i + 1])
        yield call, _split(out, len(call), n_seeds)


def train_seeds(config: Config, seeds) -> dict[str, np.ndarray]:
    """Trains one configuration for every seed at once (:func:`train_configs` of one)."""
    return train_configs([config], seeds)[0]


def train_one(config: Config, seed: int) -> dict[str, jax.Array]:
    """Trains one seed with the unbatched program (the same numbers, one at a time)."""
    program = config.program()
    hyper = {k: jnp.asarray(v) for k, v in config.hyper().items()}
    data = dataset_arrays(config.dataset, input_norm=config.input_norm, q0=config.q0)
    return _single_program(program)(jnp.int32(0), jnp.int32(seed), data, hyper)


def group_by_program(configs: Sequence[Config]) -> list[list[Config]]:
    """The configurations grouped by compiled program (:meth:`Config.program_key`: every
    activation of one network, optimiser rule and schedule shares one), in order of first
    appearance."""
    groups: dict[tuple, list[Config]] = {}
    for config in configs:
        groups.setdefault(config.program_key(), []).append(config)
    return list(groups.values())


def to_numpy(records: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """The records as numpy arrays on this host."""
    return {k: np.asarray(v) for k, v in jax.device_get(records).items()}
