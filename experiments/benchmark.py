"""Side-by-side benchmarks: jaxact against jax.nn, and what jax.vmap batching buys.

Run ``python -m experiments.benchmark --out DIR`` (``--quick`` for a small run).
Every comparison is measured in one process with the contenders interleaved
(one call of each in turn, repeated), after compilation, with
``block_until_ready``; medians and min/max over the repeats are reported, and
compile time is measured apart. Results: ``benchmark.csv`` (every measurement),
``benchmark.md`` (tables and the targets met or missed) and
``activation_ratios.png``.

The default run ends with the training steps a user decides on (a transformer MLP
block and the experiments' MLP, jaxact's activation against jax.nn's); alone with
``--training-steps`` (``training_steps.csv``/``.md``). ``--program-structure`` times the
experiments' training step with its layers in ``nn.scan`` against unrolled, with and
without the divergence guard (``program_structure.csv``/``.md``).
"""

import argparse
import csv
import dataclasses
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxact
from experiments.arguments import positive_int
from experiments.atomic_files import atomic_write_text, save_figure
from experiments.stats import geometric_mean

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000, 16_000_000)
QUICK_SIZES = (1_000, 10_000)
QUICK_ACTIVATIONS = ("relu", "sigmoid", "softplus", "gelu")
HYPERPARAMETER_COUNT = 64

# jax.nn activations that take an array and nothing else required (glu halves its axis).
_SKIP = {"logsumexp"}  # a reduction, not an activation; benchmarked through softmax


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One contender in one benchmark: seconds per call over the repeats, and compile time."""

    benchmark: str
    case: str
    dtype: str
    size: int
    contender: str
    median_s: float
    min_s: float
    max_s: float
    compile_s: float
    repeats: int


def _compile(fn: Callable, *args) -> tuple[Callable, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _time_once(fn: Callable, args: tuple, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / inner


def compare(
    contenders: dict[str, tuple[Callable, tuple]],
    *,
    repeats: int,
    compiled: bool = True,
    min_sample_s: float = 1e-2,
) -> dict[str, tuple[list[float], float]]:
    """Times each contender, interleaved, so that the machine's drift hits all alike.

    Args:
        contenders: name -> (function, arguments). Each function is jitted and
            compiled first (compile time reported apart) unless ``compiled`` is False,
            in which case it is called as it is (e.g. a Python loop over jitted calls).
        repeats: samples per contender.
        min_sample_s: calls are repeated within a sample until it lasts about this long,
            so that tiny arrays measure the kernel rather than the timer.

    Returns:
        name -> (seconds per call for each repeat, compile seconds).
    """
    ready = {}
    for name, (fn, args) in contenders.items():
        if compiled:
            fn, compile_s = _compile(fn, *args)
        else:
            compile_s = 0.0
        jax.block_until_ready(fn(*args))  # warm-up
        ready[name] = (fn, args, compile_s)
    first_fn, first_args, _ = next(iter(ready.values()))
    single = _time_once(first_fn, first_args, 1)
    inner = max(1, min(1000, int(min_sample_s / max(single, 1e-9))))
    samples = {name: [] for name in ready}
    for _ in range(repeats):
        for name, (fn, args, _) in ready.items():
            samples[name].append(_time_once(fn, args, inner))
    return {name: (samples[name], ready[name][2]) for name in ready}


def _measurements(benchmark, case, dtype, size, results) -> list[Measurement]:
    return [
        Measurement(
            benchmark, case, dtype, size, name, statistics.median(times), min(times), max(times),
            compile_s, len(times),
        )
        for name, (times, compile_s) in results.items()
    ]  # fmt: skip


def _input(size: int, dtype, *, rows: int = 1) -> jax.Array:
    # Spread over the interesting range, including both tails.
    x = jnp.linspace(-12.0, 12.0, size, dtype=jnp.float32).astype(dtype)
    return x.reshape(rows, size // rows) if rows > 1 else x


def _forward_backward(fn: Callable) -> Callable:
    """x, cotangent -> the input gradient: forward pass and backward pass, as in training.

    The cotangent is an argument (not the constant ones of ``grad(sum(f))``), so XLA
    cannot constant-fold the backward pass.
    """
    return lambda x, cotangent: jax.vjp(fn, x)[1](cotangent)[0]


def _value_and_gradient(fn: Callable) -> Callable:
    """x, cotangent -> (f(x), the input gradient) from one program, as a training step needs
    them: what the forward pass keeps for the backward pass is then written and read."""

    def both(x, cotangent):
        y, pullback = jax.vjp(fn, x)
        return y, pullback(cotangent)[0]

    return both


def bench_activations(names, sizes, dtypes, repeats) -> list[Measurement]:
    """Forward, forward+backward (vjp) and both outputs of each activation: jaxact, jax.nn and
    a copy kernel."""
    out = []
    for dtype in dtypes:
        for size in sizes:
            x = _input(size, dtype)
            copy = (jnp.negative, (x,))  # one read, one write: the memory-bandwidth limit
            for name in names:
                ours, theirs = jaxact.get(name), getattr(jax.nn, jaxact.info(name).jax_nn)
                result = jax.eval_shape(ours, x)
                cotangent = jnp.ones(result.shape, result.dtype)
                forward = compare(
                    {"jaxact": (ours, (x,)), "jax.nn": (theirs, (x,)), "copy": copy},
                    repeats=repeats,
                )
                out += _measurements("forward", name, jnp.dtype(dtype).name, size, forward)
                for benchmark, program in (
                    ("gradient", _forward_backward),
                    ("value_and_gradient", _value_and_gradient),
                ):
                    results = compare(
                        {
                            "jaxact": (program(ours), (x, cotangent)),
                            "jax.nn": (program(theirs), (x, cotangent)),
                            "copy": copy,
                        },
                        repeats=repeats,
                    )
                    out += _measurements(benchmark, name, jnp.dtype(dtype).name, size, results)
    return out


def bench_vmap_rows(names, size, repeats) -> list[Measurement]:
    """jax.vmap(f) over the rows of a matrix against f on the whole batch."""
    out = []
    x = _input(size, jnp.float32, rows=256)
    for name in names:
        f = jaxact.get(name)
        results = compare({"batched": (f, (x,)), "vmap": (jax.vmap(f), (x,))}, repeats=repeats)
        out += _measurements("vmap_rows", name, "float32", size, results)
    return out


def bench_vmap_hyperparameters(size, repeats) -> list[Measurement]:
    """64 hyperparameter values at once with jax.vmap against a Python loop over them."""
    x = _input(size, jnp.float32)
    cases = {
        "leaky_relu slope": (
            lambda a: jaxact.leaky_relu(x, a),
            jnp.linspace(0.0, 0.3, HYPERPARAMETER_COUNT),
        ),
        "softmax temperature": (
            lambda t: jaxact.softmax(x.reshape(-1, 100), temperature=t),
            jnp.linspace(0.5, 4.0, HYPERPARAMETER_COUNT),
        ),
    }
    out = []
    for case, (f, values) in cases.items():
        one = jax.jit(f)
        jax.block_until_ready(one(values[0]))
        value_list = list(values)

        def loop(_, one=one, value_list=value_list):
            return [one(v) for v in value_list]

        results = compare({"vmap": (jax.vmap(f), (values,))}, repeats=repeats) | compare(
            {"loop": (loop, (values,))}, repeats=repeats, compiled=False
        )
        out += _measurements("vmap_hyperparameters", case, "float32", size, results)
    return out


def _mlp_params(key, depth: int, width: int, fan_in: int) -> list[tuple[jax.Array, jax.Array]]:
    params = []
    for layer in range(depth):
        key, sub = jax.random.split(key)
        n_in = fan_in if layer == 0 else width
        params.append((jax.random.normal(sub, (n_in, width)) / math.sqrt(n_in), jnp.zeros(width)))
    return params


def bench_per_example_gradients(repeats, *, depth=8, width=128, batch=64) -> list[Measurement]:
    """Per-example gradient norms through a deep MLP: vmap(grad) against a loop over examples."""
    params = _mlp_params(jax.random.key(0), depth, width, 64)
    xs = jax.random.normal(jax.random.key(1), (batch, 64))

    def loss(params, x):
        h = x
        for w, b in params:
            h = jaxact.tanh(h @ w + b)
        return jnp.sum(h**2)

    def norm(grads):
        return jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))

    per_example = jax.jit(lambda p, xs: jax.vmap(lambda x: norm(jax.grad(loss)(p, x)))(xs))
    one = jax.jit(lambda p, x: norm(jax.grad(loss)(p, x)))
    jax.block_until_ready(one(params, xs[0]))

    def loop(p, xs):
        return [one(p, xs[i]) for i in range(xs.shape[0])]

    results = compare({"vmap": (per_example, (params, xs))}, repeats=repeats) | compare(
        {"loop": (loop, (params, xs))}, repeats=repeats, compiled=False
    )
    return _measurements("per_example_gradients", f"mlp depth {depth}", "float32", batch, results)


def bench_ensemble(repeats, *, seeds=8, quick=False) -> list[Measurement]:
    """The experiments' own training program: seeds batched by vmap against one after another."""
    from experiments import train

    config = train.benchmark_config()
    if quick:  # a smoke test of the harness, not a measurement worth quoting
        config = config.replace(depth=2, width=8, steps=4, eval_every=2)
    seed_array = jnp.arange(seeds)

    def vmapped(s):
        return train.train_seeds(config, s)

    def loop(s):
        return [train.train_one(config, int(i)) for i in range(s.shape[0])]

    # The programs compile on their first call: that call's excess over a steady one is
    # reported as compile time.
    first = {}
    for name, fn in (("vmap", vmapped), ("loop", loop)):
        start = time.perf_counter()
        jax.block_until_ready(fn(seed_array))
        first[name] = time.perf_counter() - start
    results = compare(
        {"vmap": (vmapped, (seed_array,)), "loop": (loop, (seed_array,))},
        repeats=repeats,
        compiled=False,
    )
    results = {
        name: (times, max(first[name] - statistics.median(times), 0.0))
        for name, (times, _) in results.items()
    }
    case = f"{seeds} seeds, depth {config.depth}, width {config.width}, {config.steps} steps"
    return _measurements("ensemble_training", case, "float32", seeds, results)


# --- training steps ---------------------------------------------------------------

# The activation as a user would swap it in: jaxact's, jax.nn's, and jax.nn's again as a
# separately compiled control, whose ratio to jax.nn is the noise floor of the comparison.
STEP_CONTENDERS = ("jaxact", "jax.nn", "jax.nn control")
MLP_STEP_ACTIVATIONS = ("tanh", "relu", "gelu", "selu", "sigmoid")
STEP_TARGET = 1.03  # jaxact's training step at most this many times jax.nn's


class MLPBlock(nn.Module):
    """A transformer's MLP block: ``Dense(4 d)``, the activation, ``Dense(d)``."""

    features: int
    activation: Callable[[jax.Array], jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(self.features)(self.activation(nn.Dense(4 * self.features)(x)))


def _train_step(loss: Callable, tx: optax.GradientTransformation) -> Callable:
    """``(params, opt_state, x, y) -> (params, opt_state, loss)``: value_and_grad, update."""

    def step(params, opt_state, x, y):
        # JAX's default promotion, as users run it (optax's Adam raises a float to an int32
        # count, which the test suite's strict promotion refuses).
        with jax.numpy_dtype_promotion("standard"):
            value, grads = jax.value_and_grad(loss)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

    return step


def block_step(activation: Callable, *, batch: int, seq: int, features: int):
    """The training step of :class:`MLPBlock` on ``(batch, seq, features)`` float32 input,
    mean squared error against a random target, one Adam update; and its arguments."""
    module = MLPBlock(features, activation)
    x = jax.random.normal(jax.random.key(0), (batch, seq, features))
    y = jax.random.normal(jax.random.key(1), (batch, seq, features))
    params = module.init(jax.random.key(2), x)
    tx = optax.adam(1e-3)

    def loss(params, x, y):
        return jnp.mean((module.apply(params, x) - y) ** 2)

    return _train_step(loss, tx), (params, tx.init(params), x, y)


def mlp_step(activation: Callable, *, depth: int, width: int, batch: int, gain: float = 1.0):
    """The training step of the experiments' MLP (:class:`experiments.model.MLP`, layers in
    ``nn.scan``) on a batch of digits: cross entropy, one SGD update; and its arguments."""
    from experiments import data as data_lib
    from experiments import model as model_lib

    dataset = data_lib.load("digits")
    mlp = model_lib.MLP(
        depth=depth,
        width=width,
        num_classes=dataset.num_classes,
        activation=activation,
        kernel_init=nn.initializers.variance_scaling(gain**2, "fan_in", "normal"),
    )
    x, y = jnp.asarray(dataset.x_train[:batch]), jnp.asarray(dataset.y_train[:batch])
    params = mlp.init(jax.random.key(0), x, train=True)["params"]
    tx = optax.sgd(0.01)

    def loss(params, x, y):
        logits = mlp.apply({"params": params}, x, train=True)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    return _train_step(loss, tx), (params, tx.init(params), x, y)


def bench_training_steps(repeats, *, quick=False) -> list[Measurement]:
    """One jitted training step with jaxact's activation against the same with jax.nn's.

    A transformer MLP block with gelu (2,048 tokens of width 512) and the experiments'
    MLP (depth 20, width 64, batch 128 of digits) with tanh, relu, gelu, selu and sigmoid.
    ``quick``: tiny shapes and the MLP with tanh only, a smoke test of the harness.
    """
    block = (
        {"batch": 2, "seq": 4, "features": 8}
        if quick
        else {"batch": 8, "seq": 256, "features": 512}
    )
    mlp = (
        {"depth": 3, "width": 8, "batch": 16} if quick else {"depth": 20, "width": 64, "batch": 128}
    )
    tokens = block["batch"] * block["seq"]
    cases = [
        (
            f"transformer MLP block, gelu, {tokens:,} tokens x {block['features']}, adam",
            "gelu",
            tokens,
            lambda f: block_step(f, **block),
        )
    ]
    for name in ("tanh",) if quick else MLP_STEP_ACTIVATIONS:
        gain = math.sqrt(2.0) if name == "relu" else 1.0  # He for relu, LeCun otherwise
        cases.append(
            (
                f"MLP depth {mlp['depth']}, width {mlp['width']}, {name}, sgd",
                name,
                mlp["batch"],
                lambda f, gain=gain: mlp_step(f, **mlp, gain=gain),
            )
        )
    out = []
    for case, name, size, make in cases:
        ours, theirs = jaxact.get(name), getattr(jax.nn, jaxact.info(name).jax_nn)
        contenders = dict(
            zip(STEP_CONTENDERS, (make(ours), make(theirs), make(theirs)), strict=True)
        )
        results = compare(contenders, repeats=repeats)
        out += _measurements("training_step", case, "float32", size, results)
    return out


# --- the experiments' per-step program: scan against unrolled, the divergence guard ---

STRUCTURE_SHAPES = ((20, 64), (20, 128), (32, 64), (32, 128))
# contender -> (layers, divergence guard)
STRUCTURE_CONTENDERS = {
    "scan + guard": ("scan", True),
    "scan, no guard": ("scan", False),
    "unrolled + guard": ("unrolled", True),
}


class UnrolledMLP(nn.Module):
    """:class:`experiments.model.MLP` (no norm, no residual) with its hidden layers in a
    Python loop (``layer_0`` ... ``layer_{depth-1}``) instead of one ``nn.scan``."""

    depth: int
    width: int
    num_classes: int
    activation: Callable[[jax.Array], jax.Array]
    kernel_init: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        from experiments import model as model_lib

        h = x
        for i in range(self.depth):
            h, _ = model_lib.HiddenLayer(
                width=self.width, activation=self.activation, kernel_init=self.kernel_init,
                bias_init=nn.initializers.zeros, norm="none", residual=False, train=train,
                dtype=jnp.float32, name=f"layer_{i}",
            )(h)  # fmt: skip
        logits = nn.Dense(self.num_classes, kernel_init=self.kernel_init, name="readout")(h)
        return self.perturb("logits", logits)


def _layer_norms(tree: Any, names: tuple[str, ...]) -> jax.Array:
    """Per-layer norms of the arrays in a tree named one of ``names`` (a stacked array, from
    ``nn.scan``, gives one norm per layer)."""
    from experiments.numerics import safe_norm

    parts = [
        jax.vmap(safe_norm)(leaf) if leaf.ndim == 3 else safe_norm(leaf)[None]
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
        if getattr(path[-1], "key", None) in names
    ]
    return jnp.concatenate(parts)


def structure_program(mlp: nn.Module, *, guard: bool, steps: int):
    """The experiments' training step (as in ``experiments.train.train_step``: dLoss/dh from
    zero perturbations, clip + weight decay + SGD, per-layer weight and pre-activation
    gradient norms every step), ``steps`` of it in one ``lax.scan``.

    ``guard``: a diverged run keeps its state, ``jnp.where(keep, old, new)`` over the whole
    train state every step, as the experiments do; without it the update is taken as is.
    """

    from experiments import train

    def program(params, opt_state, hyper, x_train, y_train, batches):
        tx = train.make_optimizer("sgd", hyper)
        x_batch = x_train[: batches.shape[1]]
        perturbations = train._zero_perturbations(mlp, x_batch)

        def body(state, inputs):
            params, opt_state, diverged_step = state
            step, index = inputs
            x, y = x_train[index], y_train[index]

            def loss_fn(params, perturbations):
                logits = mlp.apply(
                    {"params": params, "perturbations": perturbations}, x, train=True
                )
                return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

            loss, (grads, preact_grads) = jax.value_and_grad(loss_fn, argnums=(0, 1))(
                params, perturbations
            )
            updates, new_opt_state = tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            records = {
                "weight_grad_norm": _layer_norms(grads, ("kernel",)),
                "preact_grad_norm": _layer_norms(preact_grads, ("preact", "logits")),
                "batch_loss": loss,
            }
            if not guard:
                return (new_params, new_opt_state, diverged_step), records
            newly = (diverged_step < 0) & ~jnp.isfinite(loss)
            diverged_step = jnp.where(newly, step, diverged_step)
            keep = diverged_step >= 0
            params, opt_state = jax.tree.map(
                lambda o, n: jnp.where(keep, o, n), (params, opt_state), (new_params, new_opt_state)
            )
            records = {k: jnp.where(keep, jnp.nan, v) for k, v in records.items()}
            return (params, opt_state, diverged_step), records

        state = (params, opt_state, jnp.int32(-1))
        return jax.lax.scan(body, state, (jnp.arange(steps, dtype=jnp.int32), batches))

    return program


def bench_program_structure(repeats, *, shapes=STRUCTURE_SHAPES, steps=10, batch=128):
    """The experiments' per-step program at each DEPTHxWIDTH: layers in ``nn.scan`` (as
    ``experiments.model`` has them) against an unrolled loop, and the divergence guard's cost.

    Times are per training step (one scanned program of ``steps`` steps, divided), tanh.
    """
    from experiments import data as data_lib
    from experiments import model as model_lib
    from experiments import train

    dataset = data_lib.load("digits")
    x_train, y_train = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    batches = jax.random.randint(jax.random.key(1), (steps, batch), 0, x_train.shape[0])
    hyper = {"lr": jnp.float32(0.01), "clip": jnp.float32(jnp.inf), "weight_decay": jnp.float32(0)}
    out = []
    for depth, width in shapes:
        kwargs = {
            "depth": depth,
            "width": width,
            "num_classes": dataset.num_classes,
            "activation": jaxact.tanh,
            "kernel_init": nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
        }
        models = {"scan": model_lib.MLP(**kwargs), "unrolled": UnrolledMLP(**kwargs)}
        contenders = {}
        for name, (layers, guard) in STRUCTURE_CONTENDERS.items():
            mlp = models[layers]
            params = mlp.init(jax.random.key(0), x_train[:1], train=True)["params"]
            opt_state = train.make_optimizer("sgd", hyper).init(params)
            program = structure_program(mlp, guard=guard, steps=steps)
            contenders[name] = (program, (params, opt_state, hyper, x_train, y_train, batches))
        results = compare(contenders, repeats=repeats, min_sample_s=0.0)
        results = {k: ([t / steps for t in times], c) for k, (times, c) in results.items()}
        case = f"depth {depth}, width {width}, batch {batch}"
        out += _measurements("program_structure", case, "float32", batch, results)
    return out


# --- reporting -------------------------------------------------------------------


def _median(rows, benchmark, case, dtype, size, contender) -> float:
    for r in rows:
        key = (r.benchmark, r.case, r.dtype, r.size, r.contender)
        if key == (benchmark, case, dtype, size, contender):
            return r.median_s
    return math.nan


def activation_ratios(rows: Sequence[Measurement], benchmark: str, dtype: str, size: int):
    """name -> jaxact/jax.nn median-time ratio and fraction of the copy kernel's speed reached."""
    ratios = {}
    for case in sorted({r.case for r in rows if r.benchmark == benchmark}):
        ours = _median(rows, benchmark, case, dtype, size, "jaxact")
        theirs = _median(rows, benchmark, case, dtype, size, "jax.nn")
        copy = _median(rows, benchmark, case, dtype, size, "copy")
        if not math.isnan(ours):
            ratios[case] = (ours / theirs, copy / ours)
    return ratios


def _ratio(rows, benchmark, case, numerator, denominator) -> float:
    """Median-time ratio of two contenders at the smallest size measured for that benchmark."""
    size = min(r.size for r in rows if r.benchmark == benchmark)
    num = _median(rows, benchmark, case, "float32", size, numerator)
    return num / _median(rows, benchmark, case, "float32", size, denominator)


def targets(rows: Sequence[Measurement], size: int) -> list[tuple[str, str, bool]]:
    """The benchmark's targets as (target, measured, met); activations at ``size`` in float32."""
    forward = {k: v[0] for k, v in activation_ratios(rows, "forward", "float32", size).items()}
    gradient = {k: v[0] for k, v in activation_ratios(rows, "gradient", "float32", size).items()}
    checks = []
    if forward and gradient:
        mean_forward = geometric_mean(list(forward.values()))
        mean_gradient = geometric_mean(list(gradient.values()))
        worst = max(gradient, key=gradient.get)
        checks += [
            ("gradient geometric mean <= 1.0", f"{mean_gradient:.3f}", mean_gradient <= 1.0),
            ("forward geometric mean <= 1.05", f"{mean_forward:.3f}", mean_forward <= 1.05),
            ("no gradient above 1.5x", f"{worst} {gradient[worst]:.2f}", gradient[worst] <= 1.5),
        ]
        checks += [
            (f"{name} gradient <= 0.8x", f"{gradient[name]:.2f}", gradient[name] <= 0.8)
            for name in ("softplus", "log_sigmoid", "mish")
            if name in gradient
        ]
    for case in sorted({r.case for r in rows if r.benchmark == "vmap_rows"}):
        ratio = _ratio(rows, "vmap_rows", case, "vmap", "batched")
        checks.append((f"vmap over rows within 1.1x ({case})", f"{ratio:.2f}", ratio <= 1.1))
    for benchmark, wanted in (("vmap_hyperparameters", 10.0), ("ensemble_training", 3.0)):
        for case in sorted({r.case for r in rows if r.benchmark == benchmark}):
            speedup = _ratio(rows, benchmark, case, "loop", "vmap")
            target = f"vmap {case} >= {wanted:g}x faster than a loop"
            checks.append((target, f"{speedup:.1f}x", speedup >= wanted))
    for case, (ratio, control) in step_ratios(rows).items():
        target = f"training step, {case}: jaxact <= {STEP_TARGET:g}x jax.nn"
        checks.append((target, f"{ratio:.3f} (control {control:.3f})", ratio <= STEP_TARGET))
    return checks


def _cases(rows: Sequence[Measurement], benchmark: str) -> list[str]:
    """The cases of a benchmark in the order they were measured."""
    return list(dict.fromkeys(r.case for r in rows if r.benchmark == benchmark))


def step_ratios(rows: Sequence[Measurement]) -> dict[str, tuple[float, float]]:
    """case -> (jaxact / jax.nn, jax.nn control / jax.nn) median step-time ratios."""
    ratios = {}
    for case in _cases(rows, "training_step"):
        size = next(r.size for r in rows if r.benchmark == "training_step" and r.case == case)
        ours, theirs, control = (
            _median(rows, "training_step", case, "float32", size, c) for c in STEP_CONTENDERS
        )
        ratios[case] = (ours / theirs, control / theirs)
    return ratios


def _step_markdown(rows: Sequence[Measurement]) -> list[str]:
    lines = []
    steps = [r for r in rows if r.benchmark == "training_step"]
    if steps:
        repeats = steps[0].repeats
        lines += [
            "### Training steps: jaxact's activation against jax.nn's (one jitted step)",
            "",
            f"Median ms per step over {repeats} interleaved samples; the control is jax.nn's "
            "step compiled again, its ratio the noise floor.",
            "",
            "| case | jaxact | jax.nn | jax.nn control | jaxact / jax.nn | control / jax.nn |",
            "|---|---|---|---|---|---|",
        ]
        for case, (ratio, control) in step_ratios(rows).items():
            ms = {r.contender: 1000 * r.median_s for r in steps if r.case == case}
            lines.append(
                f"| {case} | {ms['jaxact']:.3g} | {ms['jax.nn']:.3g} "
                f"| {ms['jax.nn control']:.3g} | {ratio:.3f} | {control:.3f} |"
            )
        lines.append("")
    structure = [r for r in rows if r.benchmark == "program_structure"]
    if structure:
        repeats = structure[0].repeats
        lines += [
            "### The experiments' training step: nn.scan against unrolled layers, and the "
            "divergence guard",
            "",
            f"Median ms per step over {repeats} interleaved samples (a scanned program of "
            "steps, divided); compile seconds of that program. The last column takes each "
            "contender's fastest sample instead, less disturbed by other load.",
            "",
            "| case | " + " | ".join(STRUCTURE_CONTENDERS) + " | unrolled / scan "
            "| guard cost (scan) | the same from the fastest samples |",
            "|---|" + "---|" * (len(STRUCTURE_CONTENDERS) + 3),
        ]
        for case in _cases(rows, "program_structure"):
            by = {r.contender: r for r in structure if r.case == case}
            cells = [
                f"{1000 * by[c].median_s:.3g} ms, compile {by[c].compile_s:.1f} s"
                for c in STRUCTURE_CONTENDERS
            ]
            unrolled = by["unrolled + guard"].median_s / by["scan + guard"].median_s
            guard = by["scan + guard"].median_s / by["scan, no guard"].median_s - 1
            unrolled_min = by["unrolled + guard"].min_s / by["scan + guard"].min_s
            guard_min = by["scan + guard"].min_s / by["scan, no guard"].min_s - 1
            lines.append(
                f"| {case} | " + " | ".join(cells) + f" | {unrolled:.2f}x | {guard:+.1%} "
                f"| {unrolled_min:.2f}x, {guard_min:+.1%} |"
            )
        lines.append("")
    return lines


def write_csv(rows: Sequence[Measurement], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in dataclasses.fields(Measurement)])
    writer.writeheader()
    writer.writerows(dataclasses.asdict(r) for r in rows)
    atomic_write_text(path, buffer.getvalue())


def markdown(rows: Sequence[Measurement], header: str) -> str:
    """The report: per-activation ratios at the largest size, the vmap tables and the targets."""
    lines = [header, ""]
    sizes = sorted({r.size for r in rows if r.benchmark == "forward"})
    for dtype in sorted({r.dtype for r in rows if r.benchmark == "forward"}):
        size = sizes[-1]
        fwd = activation_ratios(rows, "forward", dtype, size)
        grad = activation_ratios(rows, "gradient", dtype, size)
        both = activation_ratios(rows, "value_and_gradient", dtype, size)
        lines += [
            f"### jaxact / jax.nn time, {dtype}, {size:,} elements",
            "",
            "The value and gradient column is one program returning both, as a training "
            "step needs them.",
            "",
            "| activation | forward ratio | gradient ratio | value and gradient ratio "
            "| forward, % of copy speed | gradient, % of copy speed |",
            "|---|---|---|---|---|---|",
        ]
        for name in fwd:
            lines.append(
                f"| {name} | {fwd[name][0]:.2f} | {grad[name][0]:.2f} "
                f"| {both[name][0]:.2f} | {100 * fwd[name][1]:.0f}% | {100 * grad[name][1]:.0f}% |"
            )
        lines += [
            f"| geometric mean | {geometric_mean([v[0] for v in fwd.values()]):.3f} "
            f"| {geometric_mean([v[0] for v in grad.values()]):.3f} "
            f"| {geometric_mean([v[0] for v in both.values()]):.3f} | | |",
            "",
        ]
    own_tables = ("forward", "gradient", "value_and_gradient", "training_step", "program_structure")
    other = [r for r in rows if r.benchmark not in own_tables]
    if other:
        lines += [
            "### Batching with jax.vmap (median seconds per call; compile seconds apart)",
            "",
            "| benchmark | case | size | contender | median | min | max | compile |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in other:
            lines.append(
                f"| {r.benchmark} | {r.case} | {r.size:,} | {r.contender} | {r.median_s:.3g} s "
                f"| {r.min_s:.3g} s | {r.max_s:.3g} s | {r.compile_s:.2f} s |"
            )
        lines.append("")
    lines += _step_markdown(rows)
    float32 = [r for r in rows if r.benchmark == "forward" and r.dtype == "float32"]
    checks = targets(rows, max((r.size for r in float32), default=0))
    if checks:
        lines += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
        for target, measured, met in checks:
            lines.append(f"| {target} | {measured} | {'yes' if met else 'NO'} |")
    compile_rows = [
        r
        for r in rows
        if r.benchmark in ("forward", "gradient", "value_and_gradient") and r.contender != "copy"
    ]
    if compile_rows:
        by = {}
        for r in compile_rows:
            by.setdefault((r.benchmark, r.contender), []).append(r.compile_s)
        lines += ["", "### Compile time (median over activations and sizes)", ""]
        lines += ["| benchmark | contender | compile |", "|---|---|---|"]
        for (bench, contender), values in sorted(by.items()):
            lines.append(f"| {bench} | {contender} | {1000 * statistics.median(values):.0f} ms |")
    return "\n".join(lines) + "\n"


def plot_ratios(rows: Sequence[Measurement], path: Path) -> None:
    """Bar chart of jaxact/jax.nn time per activation at the largest size (3 benchmarks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(r.size for r in rows if r.benchmark == "forward")
    dtype = "float32" if any(r.dtype == "float32" for r in rows) else rows[0].dtype
    fwd = activation_ratios(rows, "forward", dtype, size)
    grad = activation_ratios(rows, "gradient", dtype, size)
    names = list(fwd)
    positions = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 4.5), layout="constrained")
    both = activation_ratios(rows, "value_and_gradient", dtype, size)
    ax.bar(positions - 0.27, [fwd[n][0] for n in names], 0.27, label="forward")
    ax.bar(positions, [grad[n][0] for n in names], 0.27, label="forward + backward")
    ax.bar(positions + 0.27, [both[n][0] for n in names], 0.27, label="value and gradient")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(positions, names, rotation=60, ha="right")
    ax.set_ylabel("jaxact time / jax.nn time")
    ax.set_title(f"{dtype}, {size:,} elements, {jax.devices()[0].device_kind}")
    ax.legend()
    save_figure(fig, path, dpi=100)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and a few activations")
    parser.add_argument("--sizes", help="comma-separated element counts, e.g. 1000,1e6")
    parser.add_argument("--activations", help="comma-separated names (default: all jax.nn has)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated dtypes")
    parser.add_argument("--repeats", type=int, help="samples per contender (default 7, quick 3)")
    parser.add_argument("--out", default="results/benchmark", help="output folder")
    parser.add_argument("--skip-ensemble", action="store_true", help="skip the training benchmark")
    parser.add_argument(
        "--skip-training-steps",
        action="store_true",
        help="skip the training steps (jaxact's activations against jax.nn's)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--main-job",
        action="store_true",
        help="only the main job against PyTorch eager (experiments.main_job_benchmark)",
    )
    only.add_argument(
        "--training-steps",
        action="store_true",
        help="only the training steps: a transformer MLP block and the experiments' MLP, "
        "jaxact's activation against jax.nn's",
    )
    only.add_argument(
        "--program-structure",
        action="store_true",
        help="only the experiments' training step: nn.scan against unrolled layers, with and "
        "without the divergence guard (not part of the default run: 12 compilations)",
    )
    parser.add_argument(
        "--cpu-devices",
        type=positive_int,
        metavar="N",
        help="--main-job: CPU devices the seeds spread over (default: one per core, at most 8)",
    )
    parser.add_argument(
        "--shapes",
        help="--main-job and --program-structure: comma-separated DEPTHxWIDTH "
        "(default 32x128,20x64 and 20x64,20x128,32x64,32x128)",
    )
    args = parser.parse_args(argv)
    if args.shapes is None:
        structure = ",".join(f"{d}x{w}" for d, w in STRUCTURE_SHAPES)
        args.shapes = structure if args.program_structure else "32x128,20x64"
    try:
        args.shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        if any(len(s) != 2 or min(s) < 1 for s in args.shapes):
            raise ValueError
    except ValueError:
        parser.error(f"--shapes takes DEPTHxWIDTH pairs such as 32x128, got {args.shapes!r}")
    try:
        args.sizes = (
            tuple(int(float(s)) for s in args.sizes.split(","))
            if args.sizes
            else (QUICK_SIZES if args.quick else DEFAULT_SIZES)
        )
    except ValueError:
        parser.error(f"--sizes must be comma-separated numbers, got {args.sizes!r}")
    if args.activations:
        names = []
        for raw in args.activations.split(","):
            try:
                name = jaxact.resolve(raw)
            except ValueError as e:
                parser.error(str(e))
            if jaxact.info(name).jax_nn is None:
                parser.error(f"{name} has no jax.nn counterpart to compare with")
            names.append(name)
        args.activations = tuple(names)
    else:
        all_names = [n for n in jaxact.names() if jaxact.info(n).jax_nn and n not in _SKIP]
        args.activations = QUICK_ACTIVATIONS if args.quick else tuple(all_names)
    floats = ("float32", "bfloat16", "float16", "float64")
    unknown = [d for d in args.dtypes.split(",") if d.strip() not in floats]
    if unknown:
        parser.error(f"--dtypes: unknown {', '.join(unknown)}; choose from {', '.join(floats)}")
    args.dtypes = tuple(jnp.dtype(d.strip()) for d in args.dtypes.split(","))
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    args.repeats = args.repeats or (3 if args.quick else 7)
    return args


def _main_job(args: argparse.Namespace, out: Path) -> int:
    """The main job against PyTorch eager: prints the table and writes ``main_job.md``."""
    from experiments import devices, main_job_benchmark

    devices.use_cpu_cores(args.cpu_devices)  # as the gradient-flow CLI does
    if not main_job_benchmark.torch_available():
        print(
            "note: PyTorch is not installed (pip install -e '.[benchmark]'); its column is empty",
            file=sys.stderr,
        )
    repeats = args.repeats or (1 if args.quick else 3)
    if args.quick:
        from experiments import train

        train.enable_compilation_cache()  # a smoke test: compiled programs may be reused
    rows, work, threads = main_job_benchmark.run(args.shapes, repeats=repeats, quick=args.quick)
    report = main_job_benchmark.report(rows, work, threads)
    atomic_write_text(out / "main_job.md", report)
    print(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError
    except OSError:
        print(f"error: cannot write to output folder {out}", file=sys.stderr)
        return 2
    if args.main_job:
        return _main_job(args, out)
    device = jax.devices()[0]
    header = (
        f"## Benchmark: {device.platform} ({device.device_kind}), {len(jax.devices())} device(s), "
        f"jax {jax.__version__}, {os.cpu_count()} CPU cores"
    )
    print(header, flush=True)
    if args.training_steps or args.program_structure:
        if args.training_steps:
            name, rows = "training_steps", bench_training_steps(args.repeats, quick=args.quick)
        else:
            steps = 2 if args.quick else 10
            rows = bench_program_structure(args.repeats, shapes=args.shapes, steps=steps)
            name = "program_structure"
        write_csv(rows, out / f"{name}.csv")
        report = markdown(rows, header)
        atomic_write_text(out / f"{name}.md", report)
        print(report.removeprefix(header).lstrip("\n"))
        return 0
    rows = bench_activations(args.activations, args.sizes, args.dtypes, args.repeats)
    vmap_size = min(max(args.sizes), 1_048_576)
    vmap_size -= vmap_size % 25_600  # rows of 256, softmax rows of 100
    vmap_size = max(vmap_size, 25_600)
    rows += bench_vmap_rows(("relu", "gelu", "softmax"), vmap_size, args.repeats)
    # Small inputs are where a Python loop pays most (one dispatch per value); large ones
    # show what is left once the arithmetic dominates.
    for size in sorted({1_000, min(vmap_size, 102_400)}):
        rows += bench_vmap_hyperparameters(size, args.repeats)
    rows += bench_per_example_gradients(args.repeats)
    if not args.skip_ensemble:
        rows += bench_ensemble(args.repeats, seeds=4 if args.quick else 8, quick=args.quick)
    if not args.skip_training_steps:
        rows += bench_training_steps(args.repeats, quick=args.quick)
    write_csv(rows, out / "benchmark.csv")
    report = markdown(rows, header)
    atomic_write_text(out / "benchmark.md", report)
    plot_ratios(rows, out / "activation_ratios.png")
    print(report.removeprefix(header).lstrip("\n"))  # the header is printed above
    return 0


if __name__ == "__main__":
    sys.exit(main())
