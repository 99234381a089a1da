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
command runs again. With ``--distributed`` it calls ``jax.distributed.initialize()``
first (coordinator from the environment, e.g. SLURM or ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``): every process runs the same command,
the seed axis is sharded over all processes' devices and process 0 writes the files.
"""

import argparse
import dataclasses
import itertools
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jaxact
from experiments import data as data_lib
from experiments import model as model_lib
from experiments import recording, train

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
        "log_every": 50,
    },
    "vanishing": {
        "description": "Depth 32: saturating sigmoid/tanh against relu/selu/gelu; Xavier, He and "
        "critical init; with and without BatchNorm.",
        "activations": "sigmoid,tanh,relu,selu,gelu",
        "init": "xavier,he,critical",
        "norm": "none,batch",
        "sigma_b": "auto",
        "depth": 32,
        "width": 64,
        "steps": 600,
        "seeds": 3,
        "optimizer": "momentum",
        "lr": 0.01,
        "log_every": 50,
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
        "optimizer": "sgd",
        "lr": 0.05,
        "log_every": 50,
    },
}

DEFAULTS: dict[str, Any] = {
    "activations": "tanh",
    "init": "xavier",
    "norm": "none",
    "clip": "0",
    "init_scale": "1",
    "sigma_b": "0",
    "residual": False,
    "depth": 16,
    "width": 64,
    "steps": 500,
    "seeds": 3,
    "batch_size": 64,
    "lr": 0.05,
    "optimizer": "sgd",
    "weight_decay": 0.0,
    "dataset": "digits",
    "log_every": 50,
    "dtype": "float32",
}


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
    add("--dtype", choices=train.DTYPES)
    add("--log-every", dest="log_every", type=int, help="steps between records")
    add("--out", default="results/gradient_flow", help="output directory")
    add("--no-plots", dest="plots", action="store_false", help="tables and summary only")
    add("--distributed", action="store_true", help="call jax.distributed.initialize() first")
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

            theory.gain(activation, sigma_b=sigma_b, **params)
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
        config = train.Config(
            activation=name, activation_params=params, init=init, init_scale=scale,
            sigma_b=sigma_b, depth=settings["depth"], width=settings["width"], norm=norm,
            residual=bool(settings["residual"]), dtype=settings["dtype"],
            optimizer=settings["optimizer"], lr=settings["lr"], clip=clip,
            weight_decay=settings["weight_decay"], steps=settings["steps"],
            batch_size=settings["batch_size"], log_every=settings["log_every"],
            dataset=settings["dataset"],
        )  # fmt: skip
        config.validate()
        configs.append(config)
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError("the sweep lists the same configuration twice")
    return Sweep(preset_name, settings, configs, list(range(settings["seeds"])), skipped)


def _identity(config: train.Config) -> dict[str, Any]:
    return {
        "config": config.label,
        "activation": config.activation_spec,
        "init": config.init,
        "norm": config.norm,
        "residual": config.residual,
        "init_scale": config.init_scale,
        "clip": config.clip,
        "depth": config.depth,
        "width": config.width,
    }


def meanfield_rows(config: train.Config) -> list[dict[str, Any]]:
    """Per-layer mean-field prediction of the step-0 gradient slope, where the theory applies
    (no normalisation, no residual connections); empty elsewhere."""
    if config.norm != "none" or config.residual:
        return []
    data = data_lib.load(config.dataset)
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


def run_sweep(sweep: Sweep, out: Path, *, progress: bool = True) -> list[Path]:
    """Trains every configuration not already finished in ``out``; returns the run directories."""
    from tqdm import tqdm

    writer = jax.process_index() == 0
    directories = []
    bar = tqdm(sweep.configs, desc="gradient flow", unit="config", disable=not progress)
    for config in bar:
        key = config.key(sweep.seeds)
        directory = recording.run_dir(out, config.label, key)
        directories.append(directory)
        bar.set_postfix_str(config.label)
        if recording.is_done(directory, key):
            continue
        start = time.perf_counter()
        records = train.to_numpy(train.train_seeds(config, sweep.seeds))
        seconds = time.perf_counter() - start
        gradient_rows, metric_rows = recording.tidy_rows(
            _identity(config), sweep.seeds, config.record_steps(), records
        )
        if writer:
            recording.save_run(
                directory, key, config.to_dict(), gradient_rows, metric_rows,
                meanfield_rows(config), seconds,
            )  # fmt: skip
    return directories


# --- summary ------------------------------------------------------------------------


def _geometric_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v) and v > 0]
    if not finite:
        return math.nan
    return math.exp(statistics.fmean(math.log(v) for v in finite))


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def summarise(out: Path) -> list[dict[str, Any]]:
    """One row per configuration, from the written tables: the first/last hidden layer
    ratio of ``|dL/dh|`` at init and at the end (geometric mean over seeds), final train loss
    and test accuracy (median over the seeds that did not diverge), diverged seeds."""
    gradients = recording.read_csv(out / "gradient_norms.csv")
    metrics = recording.read_csv(out / "metrics.csv")
    meanfield_path = out / "meanfield.csv"
    predicted = defaultdict(dict)  # config -> {layer: 0.5 log chi(q^l)}
    for row in recording.read_csv(meanfield_path) if meanfield_path.exists() else []:
        predicted[row["config"]][int(row["layer"])] = float(row["predicted_log_ratio"])
    by_config: dict[str, dict] = {}
    norms = defaultdict(dict)  # (config, seed, step) -> {layer: norm}
    for row in gradients:
        if row["kind"] != "hidden":
            continue
        by_config.setdefault(row["config"], row)
        key = (row["config"], int(row["seed"]), int(row["step"]))
        norms[key][int(row["layer"])] = float(row["preact_grad_norm"])
    final_step = defaultdict(int)
    for row in metrics:
        final_step[row["config"]] = max(final_step[row["config"]], int(row["step"]))
    rows = []
    for label, first in by_config.items():
        depth = int(first["depth"])
        end = final_step[label]

        def ratios(step, label=label, depth=depth):
            out_ = []
            for (config, _, s), layers in norms.items():
                if config == label and s == step:
                    out_.append(layers.get(0, math.nan) / layers.get(depth - 1, math.nan))
            return out_

        finals = [r for r in metrics if r["config"] == label and int(r["step"]) == end]
        diverged = [r for r in finals if r["diverged"] == "1"]
        steps_diverged = sorted({int(r["diverged_step"]) for r in diverged})
        rows.append(
            {
                "config": label,
                "activation": first["activation"],
                "init": first["init"],
                "norm": first["norm"],
                "ratio_init": _geometric_mean(ratios(0)),
                # The product of the per-layer predictions from the first to the last layer.
                "ratio_meanfield": math.exp(
                    sum(predicted[label].get(layer, math.nan) for layer in range(depth - 1))
                )
                if label in predicted
                else math.nan,
                "ratio_end": _geometric_mean(ratios(end)),
                "train_loss": _median([float(r["train_loss"]) for r in finals]),
                "test_accuracy": _median([float(r["test_accuracy"]) for r in finals]),
                "diverged": f"{len(diverged)}/{len(finals)}"
                + (f" (step {', '.join(map(str, steps_diverged))})" if diverged else ""),
            }
        )
    return rows


def _fmt(value: float, spec: str) -> str:
    return "—" if not math.isfinite(value) else format(value, spec)


def summary_markdown(sweep: Sweep, rows: Sequence[dict[str, Any]]) -> str:
    """The summary table (and what was left out) as Markdown."""
    s = sweep.settings
    lines = [
        f"# Gradient flow: {sweep.name}",
        "",
        f"Depth {s['depth']}, width {s['width']}, {s['optimizer']} lr {s['lr']}, "
        f"{s['steps']} steps, batch {s['batch_size']}, {len(sweep.seeds)} seeds, "
        f"dataset {s['dataset']}.",
        "",
        "Gradient ratio = |dL/dh| of the first hidden layer / |dL/dh| of the last "
        "(geometric mean over seeds): << 1 is vanishing, >> 1 exploding toward the input.",
        "",
        "Mean-field = the same ratio at init as predicted by `jaxact.theory` (the product of "
        "sqrt(chi(q^l)) over the layers; — with normalisation or residuals).",
        "",
        "| configuration | grad ratio first/last (init) | mean-field | "
        "grad ratio first/last (end) | final train loss | test accuracy | diverged |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {_fmt(r['ratio_init'], '.3g')} "
            f"| {_fmt(r['ratio_meanfield'], '.3g')} | {_fmt(r['ratio_end'], '.3g')} "
            f"| {_fmt(r['train_loss'], '.3f')} | {_fmt(r['test_accuracy'], '.3f')} "
            f"| {r['diverged']} |"
        )
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


def main(argv: Sequence[str] | None = None, *, progress: bool = True) -> int:
    """Runs the CLI; returns the exit status (2 for a bad command line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sweep = resolve(args)
    except ValueError as e:
        parser.error(str(e))
    if args.distributed:
        jax.distributed.initialize()
    out = Path(args.out)
    for message in sweep.skipped:
        print(f"note: left out {message}", file=sys.stderr)
    start = time.perf_counter()
    directories = run_sweep(sweep, out, progress=progress)
    if jax.process_index() != 0:
        return 0
    write_config(sweep, out, argv)
    recording.collect(out, directories)
    if args.plots:
        from experiments import plots

        plots.plot_all(out)
    summary = summary_markdown(sweep, summarise(out))
    recording.atomic_write_text(out / "summary.md", summary)
    print(summary)
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
