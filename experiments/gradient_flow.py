"""Gradient flow in deep MLPs: why sigmoid and tanh nets stop learning and what fixes it.

Trains a sweep of deep Flax MLPs (the product of the activations, inits, norms,
clip thresholds and init scales given) and records per-layer gradient norms::

    python -m experiments.gradient_flow --out results/default
    python -m experiments.gradient_flow --preset vanishing --out results/vanishing
    python -m experiments.gradient_flow --activations tanh,leaky_relu:negative_slope=0.2 \\
        --init xavier,he --depth 32 --steps 500 --seeds 4 --out results/mine

Writes ``gradient_norms.csv``, ``metrics.csv``, ``meanfield.csv``,
``config.json``, the figures and ``summary.md`` to ``--out``. Finished
configurations are kept in ``OUT/runs/`` and not recomputed when the same
command runs again. Compiled programs are kept on disk (``--compilation-cache``),
so a re-run or a resumed sweep does not compile again.

Beyond one machine: with ``--distributed`` every process (one per host) runs the
same command and calls ``jax.distributed.initialize()`` first; the seed axis is
sharded over all processes' devices and process 0 writes the files. The
coordinator, the process count and this process's index come from
``--coordinator HOST:PORT --num-processes N --process-id I`` (or
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, or a
cluster JAX detects, such as SLURM)::

    # on host i of N (i = 0 on the coordinator host):
    python -m experiments.gradient_flow --preset vanishing --seeds 16 --out results/v \\
        --distributed --coordinator host0:8476 --num-processes N --process-id i
"""

import argparse
import contextlib
import dataclasses
import itertools
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxact
from experiments import atomic_files, background, devices, recording, records, stats, train
from experiments import data as data_lib
from experiments import model as model_lib
from experiments.arguments import positive_int

# A critical init needs a bias variance for most activations (tanh: q* = 0 at sigma_b = 0);
# ``--sigma-b auto`` takes the first of these with a critical point.
AUTO_SIGMA_B = (0.0, 0.3, 0.42)

PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "description": "Sigmoid and tanh against ReLU and GELU at depth 20, Xavier against He.",
        "activations": "sigmoid,tanh,relu,gelu",
        "init": "xavier,he",
        "depth": 20,
        "width": 64,
        "steps": 600,
        "seeds": 4,
        "optimizer": "momentum",
        "lr": 0.01,
        "log_every": 10,
    },
    "vanishing": {
        "description": "Depth 32: saturating sigmoid/tanh against relu/selu/gelu; Xavier, He and "
        "critical init; with and without BatchNorm.",
        "activations": "sigmoid,tanh,relu,selu,gelu",
        "init": "xavier,he,critical",
        "norm": "none,batch",
        "sigma_b": "auto",
        "input_norm": "unit",
        "depth": 32,
        "width": 64,
        "steps": 600,
        "seeds": 16,
        "seed_offset": 0,
        "optimizer": "momentum",
        "lr": 0.01,
        "log_every": 10,
    },
    "exploding": {
        "description": "Depth 20 with too-large weights (init scale 2: sigma_w doubled) "
        "under plain SGD, with and without gradient clipping at global norm 1.",
        "activations": "relu,tanh",
        "init": "he",
        "init_scale": "1,2",
        "clip": "0,1",
        "depth": 20,
        "width": 64,
        "steps": 600,
        "seeds": 3,
        "seed_offset": 0,
        "optimizer": "sgd",
        "lr": 0.05,
        "log_every": 10,
    },
}

# The study's own settings; every training setting's default is train.Config's (one source).
_TRAIN_DEFAULTS = train.defaults()
DEFAULTS: dict[str, Any] = {
    "activations": _TRAIN_DEFAULTS["activation"],
    "init": _TRAIN_DEFAULTS["init"],
    "norm": _TRAIN_DEFAULTS["norm"],
    "clip": str(_TRAIN_DEFAULTS["clip"]),
    "init_scale": str(_TRAIN_DEFAULTS["init_scale"]),
    "sigma_b": str(_TRAIN_DEFAULTS["sigma_b"]),
    "seeds": 3,
    "seed_offset": 0,
    **{
        k: _TRAIN_DEFAULTS[k]
        for k in (
            "residual", "depth", "width", "steps", "batch_size", "lr", "optimizer",
            "weight_decay", "dataset", "input_norm", "q0", "log_every", "eval_every", "dtype",
        )
    },
}  # fmt: skip


def parse_activation(spec: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``name`` or ``name:param=value,param=value`` -> (canonical name, sorted params).

    Raises:
        ValueError: for an unknown name or parameter (naming the closest valid ones).
    """
    name, _, args = spec.partition(":")
    canonical = jaxact.resolve(name)
    params: dict[str, Any] = {}
    for item in filter(None, args.split(",") if args else []):
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"activation parameter {item!r} in {spec!r} must be written key=value")
        if key.strip() in params:
            raise ValueError(f"activation parameter {key.strip()!r} given twice in {spec!r}")
        params[key.strip()] = _parse_value(text.strip())
    jaxact.registry.check_params(canonical, params)
    return canonical, tuple(sorted(params.items()))


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _split_activations(text: str) -> list[str]:
    """Splits ``a,b:p=1,q=2,c`` at the commas that start a new activation (not ``k=v``)."""
    specs: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if specs and "=" in part and ":" not in part and ":" in specs[-1]:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs


def _floats(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes numbers separated by commas, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.gradient_flow",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Presets: "
        + "; ".join(f"{k}: {v['description']}" for k, v in PRESETS.items())
        + " Flags given with a preset override its settings.",
    )
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), help="a ready-made study; the flags below override "
        "its settings (default: 'default')")  # fmt: skip
    add("--activations", help="comma list of jaxact names, 'name:param=value' for parameters")
    add("--init", help=f"comma list of {', '.join(model_lib.INITS)}")
    add("--norm", help=f"comma list of {', '.join(model_lib.NORMS)}")
    add("--clip", help="comma list of global-norm clip thresholds (0: no clipping)")
    add("--init-scale", dest="init_scale", help="comma list of kernel std multipliers")
    add("--sigma-b", dest="sigma_b", help="bias std of the critical init, or 'auto'")
    add("--residual", action="store_true", default=None, help="residual connections")
    add("--depth", type=int, help="hidden layers")
    add("--width", type=int, help="units per hidden layer")
    add("--steps", type=int, help="optimiser steps")
    add("--seeds", type=int, help="number of seeds (0, 1, ..., N-1), trained at once by vmap")
    add("--batch-size", dest="batch_size", type=int, help="examples per step")
    add("--lr", type=float, help="learning rate")
    add("--optimizer", choices=train.OPTIMIZERS)
    add("--weight-decay", dest="weight_decay", type=float, help="weight decay (0: none)")
    add("--dataset", choices=data_lib.NAMES)
    add(
        "--input-norm",
        dest="input_norm",
        choices=data_lib.INPUT_NORMS,
        help="'unit': every example (train and test) rescaled to the squared length q0 per "
        "feature, so the mean-field prediction's input length holds for every example",
    )
    add("--q0", type=float, help="the inputs' squared length per feature with --input-norm unit")
    add("--dtype", choices=train.DTYPES)
    add(
        "--log-every",
        dest="log_every",
        type=int,
        help="steps between gradient records, "
        "taken from the training step's own backward pass (1: every step)",
    )
    add(
        "--eval-every",
        dest="eval_every",
        type=int,
        help="steps between evaluations (probe batch, train and test sets); 0: steps // 20",
    )
    add(
        "--compilation-cache",
        dest="compilation_cache",
        metavar="DIR",
        help=f"keep compiled programs in DIR ('none': off; default {train.default_cache_dir()})",
    )
    add(
        "--cpu-devices",
        dest="cpu_devices",
        type=positive_int,
        metavar="N",
        help="CPU devices to spread the seeds over, run side by side (default: one per core, "
        "at most 8); other N can change the last bits of the numbers",
    )
    add(
        "--seed-offset",
        dest="seed_offset",
        type=int,
        help="the first seed (seeds are OFFSET, ..., OFFSET + N - 1)",
    )
    add("--out", default="results/gradient_flow", help="output directory")
    add("--list-activations", action="store_true", help="list the activations and exit")
    add("--no-plots", dest="plots", action="store_false", help="tables and summary only")
    add(
        "--distributed",
        action="store_true",
        help="one of several processes: call "
        "jax.distributed.initialize() first (seeds sharded over every process's devices)",
    )
    add(
        "--coordinator",
        help="HOST:PORT of process 0 (default $JAX_COORDINATOR_ADDRESS or the cluster's)",
    )
    add(
        "--num-processes",
        dest="num_processes",
        type=int,
        help="processes in all (default $JAX_NUM_PROCESSES or the cluster's)",
    )
    add(
        "--process-id",
        dest="process_id",
        type=int,
        help="this process's index, 0 to N-1 (default $JAX_PROCESS_ID or the cluster's)",
    )
    for action in parser._actions:  # the defaults in --help, from the one source
        if action.dest in DEFAULTS and action.help:
            action.help += f" (default: {DEFAULTS[action.dest]})"
    return parser


@dataclasses.dataclass
class Sweep:
    """The resolved sweep: its settings, configurations, and what was left out and why."""

    name: str
    settings: dict[str, Any]
    configs: list[train.Config]
    seeds: list[int]
    skipped: list[str]


def _critical_sigma_b(activation: str, params: dict[str, Any]) -> float | None:
    for sigma_b in AUTO_SIGMA_B:
        try:
            from jaxact import theory

            theory.critical_gain(activation, sigma_b=sigma_b, **params)
            return sigma_b
        except ValueError:
            continue
    return None


def resolve(args: argparse.Namespace) -> Sweep:
    """Merges defaults, preset and flags into configurations, validating each.

    Raises:
        ValueError: for anything that cannot run, with a message for the user. Within a
            preset, a critical init that does not exist is left out (and listed) instead.
    """
    explicit = {k: v for k, v in vars(args).items() if v is not None and k in DEFAULTS}
    preset_name = args.preset or "default"
    preset = {k: v for k, v in PRESETS[preset_name].items() if k != "description"}
    settings = {**DEFAULTS, **preset, **explicit}
    activations = [parse_activation(s) for s in _split_activations(settings["activations"])]
    if not activations:
        raise ValueError("--activations is empty")
    inits = [s.strip() for s in str(settings["init"]).split(",") if s.strip()]
    norms = [s.strip() for s in str(settings["norm"]).split(",") if s.strip()]
    clips = _floats(settings["clip"], "--clip")
    init_scales = _floats(settings["init_scale"], "--init-scale")
    auto_sigma_b = str(settings["sigma_b"]).strip() == "auto"
    sigma_b_value = 0.0 if auto_sigma_b else _floats(settings["sigma_b"], "--sigma-b")[0]
    if settings["seeds"] < 1:
        raise ValueError(f"--seeds must be at least 1, got {settings['seeds']}")
    configs, skipped = [], []
    for (name, params), init, norm, clip, scale in itertools.product(
        activations, inits, norms, clips, init_scales
    ):
        sigma_b = sigma_b_value
        if init == "critical" and auto_sigma_b:
            found = _critical_sigma_b(name, dict(params))
            if found is None:
                message = (
                    f"{name}/critical: no critical initialisation at sigma_b in {AUTO_SIGMA_B}"
                )
                if args.preset is None:
                    raise ValueError(message)
                if message not in skipped:  # one line per activation, not per norm/clip
                    skipped.append(message)
                continue
            sigma_b = found
        config = train.Config.create(
            activation=name, activation_params=params, init=init, init_scale=scale,
            sigma_b=sigma_b, depth=settings["depth"], width=settings["width"], norm=norm,
            residual=bool(settings["residual"]), dtype=settings["dtype"],
            optimizer=settings["optimizer"], lr=settings["lr"], clip=clip,
            weight_decay=settings["weight_decay"], steps=settings["steps"],
            batch_size=settings["batch_size"], log_every=settings["log_every"],
            eval_every=settings["eval_every"], dataset=settings["dataset"],
            input_norm=settings["input_norm"], q0=settings["q0"],
        )  # fmt: skip
        config.validate()
        configs.append(config)
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError("the sweep lists the same configuration twice")
    seeds = list(range(settings["seed_offset"], settings["seed_offset"] + settings["seeds"]))
    # A sweep changed by flags is not the preset any more: the summary says so.
    name = (
        preset_name
        if not explicit
        else f"{preset_name} preset with "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in explicit.items())
    )
    return Sweep(name, settings, configs, seeds, skipped)


def _identity(config: train.Config) -> dict[str, Any]:
    """The identity columns of :mod:`experiments.records`."""
    identity = {"config": config.label, "activation": config.activation_spec}
    return identity | {k: getattr(config, k) for k in records.IDENTITY if k not in identity}


def meanfield_rows(config: train.Config) -> list[dict[str, Any]]:
    """Per-layer mean-field prediction of the step-0 gradient slope, where the theory applies
    (no normalisation, no residual connections); empty elsewhere."""
    if config.norm != "none" or config.residual:
        return []
    data = data_lib.load(config.dataset, input_norm=config.input_norm, q0=config.q0)
    # The mean squared input per feature (q0 itself under input_norm="unit", where every
    # example has it; else the average over examples of different lengths).
    q_input = float(np.mean(np.square(data.x_train.astype(np.float64))))
    try:
        profile = model_lib.mean_field_profile(
            config.activation, config.params, config.init, depth=config.depth,
            width=config.width, input_dim=data.input_dim, q_input=q_input,
            sigma_b=config.sigma_b, init_scale=config.init_scale,
        )  # fmt: skip
    except (ValueError, ArithmeticError) as e:
        print(f"note: no mean-field prediction for {config.label}: {e}", file=sys.stderr)
        return []
    identity = _identity(config)
    return [
        {"config": identity["config"], "activation": identity["activation"],
         "init": config.init, **row}
        for row in profile
    ]  # fmt: skip


def _trained_as(config: train.Config) -> tuple:
    """What training ``config`` computes: its compiled program and numeric arguments (float32
    scalars, compared as such)."""
    return config.program(), tuple(sorted(config.hyper().items()))


def same_configurations(configs: Sequence[train.Config]) -> list[list[train.Config]]:
    """``configs`` grouped by what training them computes, in order of first appearance.

    Configurations with equal :meth:`train.Config.program` and :meth:`train.Config.hyper`
    (same model, optimiser rule, schedule, and equal scales, learning rate, clip and weight
    decay) train identically for the same seeds, whatever their labels: relu/critical at
    sigma_b = 0 is relu/he (the critical gain of relu is sqrt 2). Each group is trained once.
    """
    groups: dict[tuple, list[train.Config]] = {}
    for config in configs:
        groups.setdefault(_trained_as(config), []).append(config)
    return list(groups.values())


def run_sweep(sweep: Sweep, out: Path, *, progress: bool = True) -> list[Path]:
    """Trains every configuration not already finished in ``out``; returns the run directories.

    The unfinished configurations that share a compiled program (same network, optimiser
    rule and schedule) are trained together, one call per activation; configurations that
    are the same training under other labels (see :func:`same_configurations`) are trained
    once and the result is saved under each label.
    """
    from tqdm import tqdm

    writer = jax.process_index() == 0
    directories, todo = [], []
    for config in sweep.configs:
        key = config.key(sweep.seeds)
        directory = recording.run_dir(out, config.label, key)
        directories.append(directory)
        if not recording.is_done(directory, key):
            todo.append((config, key, directory))
    done = len(sweep.configs) - len(todo)
    if done and progress:
        print(f"{done} of {len(sweep.configs)} configurations already done in {out}",
              file=sys.stderr)  # fmt: skip
    bar = tqdm(total=len(todo), desc="gradient flow", unit="config", disable=not progress)
    # One representative per distinct training; its result goes to every label of its group.
    same = {id(group[0]): group for group in same_configurations([c for c, _, _ in todo])}
    groups = train.group_by_program([same[k][0] for k in same])
    start = time.perf_counter()
    where = {id(config): (key, directory) for config, key, directory in todo}
    for group, outputs in train.train_groups(groups, sweep.seeds):
        seconds = (time.perf_counter() - start) / len(group)
        bar.set_postfix_str(", ".join(c.label for c in group))
        for trained, records_ in zip(group, outputs, strict=True):
            for config in same[id(trained)]:
                key, directory = where[id(config)]
                if writer:
                    recording.save_run(
                        directory, key, config.to_dict(),
                        lambda d, c=config, r=records_: recording.write_tables(
                            d, _identity(c), sweep.seeds, c.schedule, r
                        ),
                        meanfield_rows(config), seconds,
                    )  # fmt: skip
                bar.update()
        start = time.perf_counter()
    bar.close()
    return directories


# --- summary ------------------------------------------------------------------------

# The columns of summary.csv: per statistic its centre and 95% interval (see summarise).
SUMMARY_STATISTICS = ("ratio_init", "ratio_end", "train_loss", "test_accuracy")
SUMMARY_COLUMNS = (
    "config", "activation", "init", "norm", "seeds",
    *(f"{name}{part}" for name in SUMMARY_STATISTICS for part in ("", "_low", "_high", "_n")),
    "ratio_meanfield", "diverged",
)  # fmt: skip


def summarise(out: Path) -> list[dict[str, Any]]:
    """One row per configuration, from the written tables.

    Per configuration: the first/last hidden layer ratio of ``|dL/dh|`` at the first and the
    last recorded step (geometric mean over seeds, with a 95% t interval on the log scale),
    the mean-field prediction of the first, final train loss and test accuracy (mean over
    seeds with a 95% t interval; a diverged seed is left out and counted), and the diverged
    seeds. ``row[name]`` is the centre, ``row[name + "_interval"]`` the
    :class:`experiments.stats.Interval`, for every name in :data:`SUMMARY_STATISTICS`.
    """
    grads = recording.read_columns(out / records.GRADIENTS.file)
    metrics = recording.read_columns(out / records.METRICS.file)
    meanfield_path = out / "meanfield.csv"
    predicted = defaultdict(dict)  # config -> {layer: 0.5 log chi(q^l)}
    for row in recording.read_csv(meanfield_path) if meanfield_path.exists() else []:
        predicted[row["config"]][int(row["layer"])] = float(row["predicted_log_ratio"])
    hidden = grads["kind"] == "hidden"
    g_config, g_step = grads["config"][hidden], grads["step"][hidden].astype(int)
    g_seed, g_layer = grads["seed"][hidden].astype(int), grads["layer"][hidden].astype(int)
    g_norm = grads["preact_grad_norm"][hidden].astype(float)
    m_step = metrics["step"].astype(int)
    rows = []
    for label in dict.fromkeys(grads["config"]):
        here = g_config == label
        first = int(np.flatnonzero(here)[0])
        depth = int(grads["depth"][hidden][first])

        def ratios(step, here=here, depth=depth):
            at = here & (g_step == step)
            top = {s: v for s, v in zip(g_seed[at & (g_layer == 0)], g_norm[at & (g_layer == 0)],
                                       strict=True)}  # fmt: skip
            low = g_layer == depth - 1
            bottom = dict(zip(g_seed[at & low], g_norm[at & low], strict=True))
            # Every seed, NaN where one norm is missing (diverged): stats counts them.
            return [top[s] / bottom[s] if s in bottom else math.nan for s in top]

        steps = g_step[here]
        in_metrics = metrics["config"] == label
        end = m_step[in_metrics].max()
        finals = in_metrics & (m_step == end)
        diverged = finals & (metrics["diverged"] == "1")
        steps_diverged = sorted({int(v) for v in metrics["diverged_step"][diverged]})
        n_diverged = int(diverged.sum())
        intervals = {
            "ratio_init": stats.interval(ratios(steps.min()), log=True),
            "ratio_end": stats.interval(ratios(steps.max()), log=True),
            "train_loss": _within(
                stats.interval(metrics["train_loss"][finals].astype(float)), 0.0, math.inf
            ),
            "test_accuracy": _within(
                stats.interval(metrics["test_accuracy"][finals].astype(float)), 0.0, 1.0
            ),
        }
        row = {
            "config": label,
            "activation": grads["activation"][hidden][first],
            "init": grads["init"][hidden][first],
            "norm": grads["norm"][hidden][first],
            "seeds": int(finals.sum()),
            # The product of the per-layer predictions from the first to the last layer.
            "ratio_meanfield": math.exp(
                sum(predicted[label].get(layer, math.nan) for layer in range(depth - 1))
            )
            if label in predicted
            else math.nan,
            "diverged": f"{n_diverged}/{int(finals.sum())}"
            + (f" (step {', '.join(map(str, steps_diverged))})" if n_diverged else ""),
        }
        for name, iv in intervals.items():
            row[name] = iv.centre
            row[f"{name}_interval"] = iv
        rows.append(row)
    return rows


def _within(iv: stats.Interval, low: float, high: float) -> stats.Interval:
    """The interval cut to the values the quantity can take (a t interval over a few seeds
    of which one failed can reach below 0 or above 1)."""
    return dataclasses.replace(iv, low=max(iv.low, low), high=min(iv.high, high))


def summary_csv_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``summary.csv`` (:data:`SUMMARY_COLUMNS`): centre, interval ends and n."""
    table = []
    for r in rows:
        flat = {k: r[k] for k in SUMMARY_COLUMNS if k in r}
        for name in SUMMARY_STATISTICS:
            iv = r[f"{name}_interval"]
            flat |= {f"{name}_low": iv.low, f"{name}_high": iv.high, f"{name}_n": iv.n}
        table.append(flat)
    return table


def _fmt(value: float, spec: str) -> str:
    return "—" if not math.isfinite(value) else format(value, spec)


def _cell(iv: stats.Interval, spec: str, seeds: int) -> str:
    """``centre [low, high]``, with ``(n=...)`` only where seeds were left out."""
    text = stats.format_interval(iv, spec)
    return text.replace(f" (n={iv.n})", "") if iv.n == seeds and not iv.left_out else text


def summary_markdown(sweep: Sweep, rows: Sequence[dict[str, Any]]) -> str:
    """The summary table (and what was left out) as Markdown."""
    s = sweep.settings
    n = len(sweep.seeds)
    inputs = (
        f"every input rescaled to mean square {s['q0']:g} per feature"
        if s["input_norm"] == "unit"
        else "inputs as loaded"
    )
    seed_range = "-".join(str(v) for v in dict.fromkeys((sweep.seeds[0], sweep.seeds[-1])))
    lines = [
        f"# Gradient flow: {sweep.name}",
        "",
        f"Depth {s['depth']}, width {s['width']}, {s['optimizer']} lr {s['lr']}, "
        f"{s['steps']} steps, batch {s['batch_size']}, n = {n} seed{'s' if n != 1 else ''} "
        f"({seed_range}), dataset {s['dataset']} ({inputs}).",
        "",
        "Every cell is `centre [95% interval]` over the seeds: for the gradient ratios the "
        "geometric mean and a t interval on the log scale, for loss and accuracy the mean and "
        "a t interval (cut to the possible range). `(n=k, j left out)` marks a cell that "
        "leaves seeds out (diverged, or a norm that underflowed to 0). "
        "End-of-training numbers (end ratio, loss, accuracy) are bit-identical from run to run "
        "on one machine but differ between machines: "
        "compare intervals, not single runs.",
        "",
        "Gradient ratio = |dL/dh| of the first hidden layer / |dL/dh| of the last, from the "
        "training step's own backward pass at the first step (init) and the last (end): "
        "<< 1 is vanishing, >> 1 exploding toward the input.",
        "",
        "Mean-field = the same ratio at init as predicted by `jaxact.theory` (the product of "
        "sqrt(chi(q^l)) over the layers, from the inputs' mean square q^0; — with "
        "normalisation or residuals). It is the infinite-width limit: at width "
        f"{s['width']} the measured ratio is expected to scatter around it by seed.",
        "",
        "| configuration | grad ratio first/last (init) | mean-field | "
        "grad ratio first/last (end) | final train loss | test accuracy | diverged |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        seeds = r["seeds"]
        lines.append(
            f"| {r['config']} | {_cell(r['ratio_init_interval'], '.3g', seeds)} "
            f"| {_fmt(r['ratio_meanfield'], '.3g')} "
            f"| {_cell(r['ratio_end_interval'], '.3g', seeds)} "
            f"| {_cell(r['train_loss_interval'], '.3f', seeds)} "
            f"| {_cell(r['test_accuracy_interval'], '.3f', seeds)} | {r['diverged']} |"
        )
    critical = {
        f"{c.activation_spec} sigma_b = {c.sigma_b:g}"
        for c in sweep.configs
        if c.init == "critical"
    }
    if critical:
        lines += ["", "Critical init at (chosen by `--sigma-b auto`): " + "; ".join(
            sorted(critical)) + "."]  # fmt: skip
    same = [g for g in same_configurations(sweep.configs) if len(g) > 1]
    if same:
        lines += ["", "The same configuration under several labels (equal program and scales): "
                  "trained once, reported under each label:"]  # fmt: skip
        for first, *others in same:
            names = ", ".join(c.label for c in others)
            verb = "is" if len(others) == 1 else "are"
            lines.append(f"- {names} {verb} {first.label} (equal scales): trained once")
    if sweep.skipped:
        lines += ["", "Left out:", *[f"- {m}" for m in sweep.skipped]]
    return "\n".join(lines) + "\n"


def write_config(sweep: Sweep, out: Path, argv: Sequence[str]) -> None:
    import flax

    recording.write_json(
        out / "config.json",
        {
            "preset": sweep.name,
            "argv": list(argv),
            "settings": sweep.settings,
            "seeds": sweep.seeds,
            "configs": [c.to_dict() | {"label": c.label} for c in sweep.configs],
            "skipped": sweep.skipped,
            "versions": {"jax": jax.__version__, "flax": flax.__version__,
                         "jaxact": jaxact.__version__, "python": sys.version.split()[0]},
            "devices": [str(d) for d in jax.devices()],
            "process_count": jax.process_count(),
        },
    )  # fmt: skip


def initialize_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` from the flags, else the environment, else the cluster."""

    def setting(value, variable):
        if value is not None:
            return value
        text = os.environ.get(variable)
        return int(text) if text else None

    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=setting(args.num_processes, "JAX_NUM_PROCESSES"),
        process_id=setting(args.process_id, "JAX_PROCESS_ID"),
    )


def _check_out(out: Path) -> str | None:
    """Why ``out`` cannot take the results (None if it can)."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: cannot write in {existing}"
    return None


def main(argv: Sequence[str] | None = None, *, progress: bool = True) -> int:
    """Runs the CLI; returns the exit status (2 for a bad command line, 130 on Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_activations:
        names = [n for n in jaxact.names() if jaxact.info(n).elementwise]
        print("\n".join(names))
        return 0
    out = Path(args.out)
    if (problem := _check_out(out)) is not None:
        parser.error(problem)
    # Before anything touches a JAX device (resolve may).
    devices.use_cpu_cores(args.cpu_devices)
    if args.distributed:
        initialize_distributed(args)
    writer = jax.process_index() == 0
    try:
        # Locked before resolve, which may take seconds (a critical init's sigma_b).
        with atomic_files.output_lock(out) if writer else contextlib.nullcontext():
            try:
                sweep = resolve(args)
            except ValueError as e:
                parser.error(str(e))
            train.enable_compilation_cache(args.compilation_cache)
            for message in sweep.skipped:
                print(f"note: left out {message}", file=sys.stderr)
            start = time.perf_counter()
            directories = run_sweep(sweep, out, progress=progress)
            if not writer:
                return 0
            write_config(sweep, out, argv)
            recording.collect(out, directories)
            if args.plots:
                from experiments import plots

                plots.plot_all(out)
            rows = summarise(out)
            recording.write_csv(out / "summary.csv", SUMMARY_COLUMNS, summary_csv_rows(rows))
            summary = summary_markdown(sweep, rows)
            atomic_files.atomic_write_text(out / "summary.md", summary)
    except atomic_files.OutputLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished configurations are kept in {out / 'runs'}; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(summary)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    background.exit_process(main())
