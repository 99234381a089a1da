"""One compiled training program per configuration: seeds batched by vmap, steps in lax.scan.

:func:`train_seeds` is the fast path: it vmaps the whole run (initialisation,
every optimiser step and every measurement) over the seeds and, when several
devices are present, shards the seed axis across them. :func:`train_one` runs
a single seed through the same program without the batching (for comparison).

Recorded at step 0 (before any update) and every ``log_every`` steps (and at
the last step), on a fixed probe batch per seed: per layer the norm of the
kernel gradient and of ``dLoss/dh`` (h the layer's pre-activation, summed over
the batch), the mean and standard deviation of the activations and the
fraction of saturated units (local slope ``|phi'(h)| < 0.01``); loss and
accuracy on the whole train and test sets. A step whose training loss is NaN
or infinite marks the seed as diverged; its parameters stop changing and its
later records are NaN.
"""

import dataclasses
import functools
import hashlib
import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxact
from experiments import data as data_lib
from experiments import model as model_lib
from experiments.recording import safe_norm

OPTIMIZERS = ("sgd", "momentum", "adam")
DTYPES = ("float32", "bfloat16", "float16")
SATURATION_SLOPE = 1e-2


@dataclasses.dataclass(frozen=True)
class Config:
    """One training configuration (hashable: it keys the compiled program and the results).

    Attributes:
        activation: canonical jaxact name.
        activation_params: the activation's hyperparameters as sorted (name, value) pairs.
        init: ``lecun``, ``he``, ``xavier`` or ``critical``.
        init_scale: multiplies the kernels' standard deviation.
        sigma_b: bias standard deviation of the critical initialisation (else biases are 0).
        depth: hidden layers.
        width: units per hidden layer.
        norm: ``none``, ``batch`` or ``layer``.
        residual: residual connections between hidden layers.
        dtype: computation dtype.
        optimizer: ``sgd``, ``momentum`` (0.9) or ``adam``.
        lr: learning rate.
        clip: ``clip_by_global_norm`` threshold, 0 for none.
        weight_decay: decoupled weight decay (added to the update), 0 for none.
        steps: optimiser steps.
        batch_size: examples per step (and in the probe batch).
        log_every: steps between records.
        dataset: ``digits``, ``spirals`` or ``teacher``.
    """

    activation: str = "tanh"
    activation_params: tuple[tuple[str, Any], ...] = ()
    init: str = "xavier"
    init_scale: float = 1.0
    sigma_b: float = 0.0
    depth: int = 16
    width: int = 64
    norm: str = "none"
    residual: bool = False
    dtype: str = "float32"
    optimizer: str = "sgd"
    lr: float = 0.05
    clip: float = 0.0
    weight_decay: float = 0.0
    steps: int = 500
    batch_size: int = 64
    log_every: int = 50
    dataset: str = "digits"

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.activation_params)

    @property
    def activation_spec(self) -> str:
        """The activation as written on the command line, e.g. ``leaky_relu:negative_slope=0.2``."""
        args = ",".join(f"{k}={v}" for k, v in self.activation_params)
        return f"{self.activation}:{args}" if args else self.activation

    @property
    def label(self) -> str:
        """A short name for plots and tables: activation/init plus what is not the default."""
        parts = [self.activation_spec, self.init]
        if self.init_scale != 1.0:
            parts.append(f"x{self.init_scale:g}")
        if self.norm != "none":
            parts.append(f"{self.norm}norm")
        if self.residual:
            parts.append("residual")
        if self.clip:
            parts.append(f"clip{self.clip:g}")
        return "/".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["activation_params"] = dict(self.activation_params)
        return d

    def key(self, seeds) -> str:
        """A digest of the configuration and the seeds: what a finished run is resumed by."""
        text = json.dumps([self.to_dict(), [int(s) for s in seeds]], sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def program_key(self) -> "Config":
        """The configuration without its initialisation: configurations with the same
        program key share one compiled program (the init scales are its arguments)."""
        return dataclasses.replace(
            self,
            init="lecun",
            init_scale=1.0,
            sigma_b=0.0,
            lr=1.0,
            clip=math.inf if self.clip else 0.0,
        )

    def scales(self) -> dict[str, jax.Array]:
        """The initialisation's multipliers (see :func:`experiments.model.layer_scales`)."""
        data = _dataset(self.dataset)
        scales = model_lib.layer_scales(
            self.init, self.activation, self.params, depth=self.depth, width=self.width,
            input_dim=data.input_dim, num_classes=data.num_classes, sigma_b=self.sigma_b,
            init_scale=self.init_scale,
        )  # fmt: skip
        # The learning rate and the clip threshold are arguments of the program too.
        scales["lr"] = self.lr
        scales["clip"] = self.clip if self.clip else math.inf
        return {k: jnp.float32(v) for k, v in scales.items()}

    def record_steps(self) -> list[int]:
        """The steps at which the program records: 0, every ``log_every``, and the last."""
        steps = list(range(0, self.steps + 1, self.log_every))
        if steps[-1] != self.steps:
            steps.append(self.steps)
        return steps

    def validate(self) -> None:
        """Checks everything that can be checked before compiling.

        Raises:
            ValueError: with a message naming the bad setting.
        """
        entry = jaxact.info(self.activation)
        jaxact.registry.check_params(entry.name, self.params)
        if not entry.elementwise:
            raise ValueError(
                f"{entry.name} is not elementwise (it mixes units), so it has no per-unit "
                "slope or mean-field theory; choose an elementwise activation"
            )
        if "key" in self.params:
            raise ValueError(f"{entry.name}: a random key cannot be given on the command line")
        for name, low in (("depth", 1), ("width", 1), ("batch_size", 1), ("log_every", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"steps must be 0 or more, got {self.steps}")
        if self.init not in model_lib.INITS:
            raise ValueError(f"unknown init {self.init!r}; choose from {model_lib.INITS}")
        if self.norm not in model_lib.NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose from {model_lib.NORMS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose from {DTYPES}")
        if self.dataset not in data_lib.NAMES:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {data_lib.NAMES}")
        for name in ("lr", "clip", "weight_decay", "sigma_b", "init_scale"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        if self.lr == 0 or self.init_scale == 0:
            raise ValueError("lr and init_scale must be positive")
        if self.norm == "batch" and self.batch_size < 2:
            raise ValueError("BatchNorm needs batch_size >= 2")
        if self.init == "critical":
            try:
                self.scales()
            except ValueError as e:
                raise ValueError(f"critical init for {self.activation_spec}: {e}") from e


def benchmark_config() -> Config:
    """A small configuration for the vmap-against-loop benchmark."""
    return Config(activation="tanh", init="xavier", depth=8, width=32, steps=100, log_every=25)


def make_optimizer(config: Config, lr=None, clip=None) -> optax.GradientTransformation:
    """The optimiser chain: optional global-norm clipping, optional weight decay, the rule.

    ``lr`` and ``clip`` (traced values inside the program) default to the config's.
    """
    lr = config.lr if lr is None else lr
    clip = config.clip if clip is None else clip
    rule = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=0.9),
        "adam": lambda: optax.adam(lr),
    }[config.optimizer]()
    chain = []
    if config.clip > 0:
        chain.append(optax.clip_by_global_norm(clip))
    if config.weight_decay > 0:
        chain.append(optax.add_decayed_weights(config.weight_decay))
    chain.append(rule)
    return optax.chain(*chain)


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(
        optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    )


def _accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


@functools.lru_cache(maxsize=8)
def _dataset(name: str) -> data_lib.Dataset:
    return data_lib.load(name)


def make_run(config: Config):
    """The whole training run of one seed as a pure function ``(seed, arrays, scales) -> records``.

    ``arrays`` is :func:`dataset_arrays`, ``scales`` is ``config.scales()`` (the
    initialisation; the program itself depends only on ``config.program_key()``).

    Records are a dict of arrays with a leading axis over the recorded steps
    (``config.record_steps()``); per-layer ones have ``depth + 1`` columns (the
    read-out last) for gradient norms and ``depth`` for activation statistics;
    ``diverged`` flags the records after the loss went non-finite and ``diverged_step``
    holds the training step at which it did (-1 before).
    """
    data = _dataset(config.dataset)
    activation = jaxact.get(config.activation, **config.params)
    mlp = model_lib.build(
        activation=config.activation,
        params=config.params,
        depth=config.depth,
        width=config.width,
        num_classes=data.num_classes,
        norm=config.norm,
        residual=config.residual,
        dtype=config.dtype,
    )
    n_train = data.x_train.shape[0]
    batch = config.batch_size
    probe_size = min(batch, n_train)
    depth = config.depth
    nan = jnp.float32(jnp.nan)

    def forward(params, stats, x, *, train, perturbations=None, mutable=("batch_stats",)):
        variables = {"params": params, "batch_stats": stats}
        if perturbations is not None:
            variables["perturbations"] = perturbations
        logits, updates = mlp.apply(variables, x, train=train, mutable=list(mutable))
        return logits, updates

    def run(seed, arrays, scales):
        """One seed's run. The data come in as arguments (as constants they slow XLA down),
        the init scales, learning rate and clip too (one compilation serves them all)."""
        x_train, y_train = arrays["x_train"], arrays["y_train"]
        x_test, y_test = arrays["x_test"], arrays["y_test"]
        tx = make_optimizer(config, scales["lr"], scales["clip"])

        def init(key, scales):
            variables = mlp.init(key, x_train[:probe_size], train=False)
            params = model_lib.scale_parameters(variables["params"], scales)
            stats = variables.get("batch_stats", {})
            return params, stats, tx.init(params)

        # The perturbation variables have the probe batch's shape; their gradient is dLoss/dh.
        perturbation_shapes = jax.eval_shape(
            lambda: mlp.init(jax.random.key(0), x_train[:probe_size], train=False)["perturbations"]
        )

        def train_step(step, state, key):
            params, stats, opt_state, diverged_step = state
            idx = jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, n_train)

            def loss_fn(p):
                logits, updates = forward(p, stats, x_train[idx], train=True)
                return _cross_entropy(logits, y_train[idx]), updates.get("batch_stats", {})

            (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, new_opt_state = tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            newly = (diverged_step < 0) & ~jnp.isfinite(loss)
            diverged_step = jnp.where(newly, step, diverged_step)
            # A diverged seed keeps its parameters: no NaN arithmetic for the rest of the run.
            keep = diverged_step >= 0
            new = (new_params, new_stats, new_opt_state)
            old = (params, stats, opt_state)
            params, stats, opt_state = jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)
            return (params, stats, opt_state, diverged_step)

        def per_layer(tree, first, stacked, last=None):
            """One value per layer: layer 0, the scanned layers (leading axis), the read-out."""
            parts = [first(tree["layer_0"])[None]]
            if depth > 1:
                parts.append(stacked(tree["layers"]))
            if last is not None:
                parts.append(last(tree)[None])
            return jnp.concatenate(parts)

        def measure(state, step, probe_x, probe_y):
            params, stats, _, diverged_step = state
            perturbations = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), perturbation_shapes)

            def loss_fn(p, pert):
                logits, updates = forward(
                    p, stats, probe_x, train=True, perturbations=pert,
                    mutable=("batch_stats", "intermediates"),
                )  # fmt: skip
                return _cross_entropy(logits, probe_y), updates["intermediates"]

            (probe_loss, inter), (g_params, g_pre) = jax.value_and_grad(
                loss_fn, argnums=(0, 1), has_aux=True
            )(params, perturbations)
            weight_norm = per_layer(
                g_params,
                lambda t: safe_norm(t["dense"]["kernel"]),
                lambda t: jax.vmap(safe_norm)(t["dense"]["kernel"]),
                lambda t: safe_norm(t["readout"]["kernel"]),
            )
            preact_norm = per_layer(
                g_pre,
                lambda t: safe_norm(t["preact"]),
                lambda t: jax.vmap(safe_norm)(t["preact"]),
                lambda t: safe_norm(t["logits"]),
            )
            z = per_layer(
                inter, lambda t: t["preact"][0], lambda t: t["preact"][0]
            )  # (depth, B, W)
            a, slope = jax.jvp(activation, (z,), (jnp.ones_like(z),))
            a = a.astype(jnp.float32)
            saturated = (jnp.abs(slope) < SATURATION_SLOPE).astype(jnp.float32)
            # Train and test in one forward pass (evaluation mode treats examples independently).
            eval_logits, _ = forward(params, stats, x_eval, train=False)
            train_logits, test_logits = eval_logits[:n_train], eval_logits[n_train:]
            records = {
                "weight_grad_norm": weight_norm,
                "preact_grad_norm": preact_norm,
                "act_mean": jnp.mean(a, axis=(1, 2)),
                "act_std": jnp.std(a, axis=(1, 2)),
                "saturated": jnp.mean(saturated, axis=(1, 2)),
                "train_loss": _cross_entropy(train_logits, y_train),
                "train_accuracy": _accuracy(train_logits, y_train),
                "test_loss": _cross_entropy(test_logits, y_test),
                "test_accuracy": _accuracy(test_logits, y_test),
                "probe_loss": probe_loss,
            }
            diverged = ((diverged_step >= 0) & (diverged_step <= step)) | ~jnp.isfinite(probe_loss)
            records = jax.tree.map(
                lambda v: jnp.where(diverged, nan, v.astype(jnp.float32)), records
            )
            records["diverged"] = diverged
            # The training step whose loss first went non-finite, finer than the record grid
            # (the step being recorded when only the probe loss is non-finite); -1 if none.
            first_bad = jnp.where(diverged_step >= 0, diverged_step, step)
            records["diverged_step"] = jnp.where(diverged, first_bad, -1).astype(jnp.int32)
            return records

        x_eval = jnp.concatenate([x_train, x_test])
        record_steps = np.asarray(config.record_steps(), dtype=np.int32)
        # Record i trains from record_steps[i - 1] to record_steps[i] (nothing before step 0),
        # so the step and the measurement are each traced once.
        interval_starts = jnp.asarray(np.concatenate([[0], record_steps[:-1]]), dtype=jnp.int32)
        interval_ends = jnp.asarray(record_steps)

        key = jax.random.key(seed)
        init_key, batch_key, probe_key = jax.random.split(key, 3)
        params, stats, opt_state = init(init_key, scales)
        probe_idx = jax.random.choice(probe_key, n_train, (probe_size,), replace=False)
        probe_x, probe_y = x_train[probe_idx], y_train[probe_idx]
        state = (params, stats, opt_state, jnp.int32(-1))

        def interval(state, bounds):
            start, end = bounds
            state = lax.fori_loop(start, end, lambda s, st: train_step(s, st, batch_key), state)
            return state, measure(state, end, probe_x, probe_y)

        _, records = lax.scan(interval, state, (interval_starts, interval_ends))
        return records

    return run


def dataset_arrays(name: str) -> dict[str, jax.Array]:
    """The dataset as the device arrays the training program takes."""
    data = _dataset(name)
    return {k: jnp.asarray(getattr(data, k)) for k in ("x_train", "y_train", "x_test", "y_test")}


@functools.lru_cache(maxsize=4)
def _batched_program(program_key: Config, n_devices: int):
    run = jax.vmap(make_run(program_key), in_axes=(0, None, None))
    if n_devices == 1:
        return jax.jit(run), None
    mesh = Mesh(np.asarray(jax.devices()), ("seed",))
    by_seed = NamedSharding(mesh, PartitionSpec("seed"))
    replicated = NamedSharding(mesh, PartitionSpec())
    in_shardings = (by_seed, replicated, replicated)
    return jax.jit(run, in_shardings=in_shardings, out_shardings=by_seed), by_seed


@functools.lru_cache(maxsize=4)
def _single_program(program_key: Config):
    return jax.jit(make_run(program_key))


def train_seeds(config: Config, seeds) -> dict[str, jax.Array]:
    """Trains one configuration for every seed at once (vmap; seed axis sharded over devices).

    Args:
        config: the configuration.
        seeds: integer seeds (any sequence or array).

    Returns:
        The records with a leading seed axis (see :func:`make_run`). With several
        devices the seeds are padded to a multiple of the device count and the
        padding is dropped again; across hosts the result is gathered to every host.
    """
    seeds = np.asarray(seeds, dtype=np.int32).reshape(-1)
    arrays = dataset_arrays(config.dataset)
    n_devices = jax.device_count()
    scales = config.scales()
    program, by_seed = _batched_program(config.program_key(), n_devices)
    if by_seed is None:
        return program(jnp.asarray(seeds), arrays, scales)
    padded = np.concatenate([seeds, np.repeat(seeds[-1:], (-len(seeds)) % n_devices)])
    global_seeds = jax.make_array_from_callback(padded.shape, by_seed, lambda index: padded[index])
    out = program(global_seeds, arrays, scales)
    if jax.process_count() > 1:
        out = multihost_utils.process_allgather(out, tiled=True)
    return jax.tree.map(lambda v: v[: len(seeds)], out)


def train_one(config: Config, seed: int) -> dict[str, jax.Array]:
    """Trains one seed with the unbatched program (the same numbers, one at a time)."""
    program = _single_program(config.program_key())
    return program(jnp.int32(seed), dataset_arrays(config.dataset), config.scales())


def to_numpy(records: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """The records as numpy arrays on this host."""
    return {k: np.asarray(jax.device_get(v)) for k, v in records.items()}
