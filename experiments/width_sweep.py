r"""The first/last gradient ratio of random networks against the mean-field prediction, by width.

For the gradient-flow study's network (:mod:`experiments.model`: depth 32 as in its
``vanishing`` preset, a batch of 64 digits, cross-entropy of the read-out) at
initialisation, no training, this measures per hidden layer the norm of
:math:`\partial \mathrm{Loss} / \partial h^l` (the pre-activation gradient, over the batch)
and the ratio of the first hidden layer's to the last's,

.. math:: r = \frac{|\partial \mathrm{Loss} / \partial h^{0}|}
    {|\partial \mathrm{Loss} / \partial h^{L-1}|},

over seeds (each seed: fresh weights and a fresh batch; all seeds in one compiled program,
``jax.vmap``) at several widths. Beside it the mean-field prediction the gradient-flow
summaries use (:func:`experiments.model.mean_field_profile`),
:math:`\prod_{l=0}^{L-2} \sqrt{\chi(q^l)}`, from the inputs' mean squared component
:math:`q_{in}`. The theory holds at infinite width and for inputs of one length; with
``--input-norm unit`` (the default) every input has :math:`\mathrm{mean}(x^2) = q_0`, so
the only gap left is finite width, and the sweep shows it closing as the width grows.

Writes ``width_sweep.csv`` (one row per configuration, width and seed), ``width_sweep.png``
and ``summary.md`` (geometric mean over seeds with a 95% t interval on the log scale, see
:func:`experiments.stats.interval`) to ``--out``::

    python -m experiments.width_sweep --out results/width_sweep
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import data as data_lib
from experiments import model as model_lib
from experiments import stats
from experiments.arguments import positive_int
from experiments.atomic_files import (
    OutputLocked,
    atomic_write_text,
    output_lock,
    prepare_output_folder,
    save_figure,
)

# The gradient-flow study's "vanishing" preset: depth 32, batch 64 (train's default).
DEPTH = 32
# Bytes of weights one call of the measuring program may hold (see :func:`measure`).
MEMORY_BUDGET = 3 * 2**30
BATCH_SIZE = 64
WIDTHS = (64, 256, 1024)
# Seeds per width: the spread of log(ratio) over seeds shrinks with width (sd 2.5, 1.7, 0.46
# for gelu/He at 64, 256, 1024) while the cost grows as width^2, so the narrow widths get
# more seeds for intervals of about equal width (the summary states n for every row).
SEEDS = (128, 64, 8)
CONFIGS = ("gelu/he", "relu/he")
FIELDS = (
    "activation", "init", "sigma_b", "depth", "width", "batch_size", "dataset", "input_norm",
    "q_input", "seed", "ratio", "ratio_meanfield",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Settings:
    """One sweep: the configurations (``activation/init``) and what they share.

    ``seeds`` is one count for every width, or one count per width (seeds 0, 1, ..., n-1).
    """

    configs: tuple[str, ...] = CONFIGS
    widths: tuple[int, ...] = WIDTHS
    seeds: int | tuple[int, ...] = SEEDS
    depth: int = DEPTH
    batch_size: int = BATCH_SIZE
    dataset: str = "digits"
    input_norm: str = "unit"
    q0: float = 1.0
    sigma_b: float = 0.0


def parse_config(spec: str) -> tuple[str, str]:
    """``"gelu/he"`` -> ``("gelu", "he")``: a jaxact activation name and an init.

    Raises:
        ValueError: for a malformed spec, an unknown activation or init (naming the closest).

    >>> parse_config("gelu/he")
    ('gelu', 'he')
    """
    import jaxact

    name, slash, init = spec.strip().partition("/")
    if not slash or not name or not init:
        raise ValueError(f"configuration {spec!r}: expected ACTIVATION/INIT, e.g. 'gelu/he'")
    if init not in model_lib.INITS:
        close = difflib.get_close_matches(init, model_lib.INITS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"configuration {spec!r}: unknown init {init!r}{hint}; "
            f"choose one of {', '.join(model_lib.INITS)}"
        )
    try:
        canonical = jaxact.info(name).name
    except (KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        raise ValueError(f"configuration {spec!r}: {message}") from None
    return canonical, init


def meanfield_ratio(
    activation: str, init: str, *, depth: int, width: int, input_dim: int, q_input: float,
    sigma_b: float = 0.0,
) -> float:  # fmt: skip
    r"""The mean-field first/last ratio :math:`\prod_{l=0}^{L-2} \sqrt{\chi(q^l)}`, as in the
    gradient-flow summaries (:func:`experiments.model.mean_field_profile`)."""
    profile = model_lib.mean_field_profile(
        activation, {}, init, depth=depth, width=width, input_dim=input_dim,
        q_input=q_input, sigma_b=sigma_b,
    )  # fmt: skip
    return math.exp(math.fsum(row["predicted_log_ratio"] for row in profile))


@functools.cache
def _program(activation: str, depth: int, width: int, num_classes: int, batch_size: int):
    """The jitted ``(seeds, x_train, y_train, scales) -> per-layer |dLoss/dh|`` for all seeds."""
    import jax
    import jax.numpy as jnp
    import optax

    mlp = model_lib.build(
        activation=activation, params={}, depth=depth, width=width, num_classes=num_classes
    )

    def one_seed(seed, x_train, y_train, scales):
        key = jax.random.key(seed)
        init_key, batch_key = jax.random.split(key)
        idx = jax.random.randint(batch_key, (batch_size,), 0, x_train.shape[0])
        x, y = x_train[idx], y_train[idx]
        variables = mlp.init(init_key, x, train=False)
        params = model_lib.scale_parameters(variables["params"], scales)
        zeros = jax.tree.map(jnp.zeros_like, variables["perturbations"])

        def loss(perturbations):
            logits = mlp.apply({"params": params, "perturbations": perturbations}, x, train=True)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

        grads = jax.grad(loss)(zeros)
        first = jnp.sqrt(jnp.sum(grads["layer_0"]["preact"] ** 2))[None]
        if depth == 1:
            return first
        rest = jnp.sqrt(jnp.sum(grads["layers"]["preact"] ** 2, axis=(1, 2)))
        return jnp.concatenate([first, rest])

    return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None, None)))


def measure(
    activation: str, init: str, *, width: int, seeds: Sequence[int], data: data_lib.Dataset,
    depth: int = DEPTH, batch_size: int = BATCH_SIZE, sigma_b: float = 0.0,
) -> np.ndarray:  # fmt: skip
    """Per seed and hidden layer, ``|dLoss/dh^l|`` over one random batch at initialisation.

    The seeds run in one call where their weights fit in :data:`MEMORY_BUDGET` (all of them
    up to width 1,024 at depth 32), else in equal chunks (the last one padded), so that one
    compiled program serves every chunk.

    Returns:
        An array of shape ``(len(seeds), depth)``.
    """
    import jax
    import jax.numpy as jnp

    scales = model_lib.layer_scales(
        init, activation, {}, depth=depth, width=width, input_dim=data.input_dim,
        num_classes=data.num_classes, sigma_b=sigma_b,
    )  # fmt: skip
    program = _program(activation, depth, width, data.num_classes, batch_size)
    args = (
        jnp.asarray(data.x_train),
        jnp.asarray(data.y_train),
        {k: jnp.float32(v) for k, v in scales.items()},
    )
    seeds = np.asarray(seeds, dtype=np.int32)
    # Weights drawn, then scaled: about two float32 copies of every kernel per seed.
    per_seed = 2 * 4 * depth * width * (width + data.input_dim + data.num_classes)
    chunk = max(1, min(len(seeds), MEMORY_BUDGET // per_seed))
    padded = np.resize(seeds, -(-len(seeds) // chunk) * chunk)
    # Threefry's non-partitionable form: the same bits on every backend and under vmap (a
    # seed's weights do not depend on the other seeds), and half the compile time of the
    # partitionable form, which is most of this study's run time on a CPU.
    with jax.threefry_partitionable(False):
        norms = [
            np.asarray(program(jnp.asarray(padded[i : i + chunk]), *args), dtype=np.float64)
            for i in range(0, len(padded), chunk)
        ]
    return np.concatenate(norms)[: len(seeds)]


def seed_counts(settings: Settings) -> tuple[int, ...]:
    """The number of seeds at each width.

    Raises:
        ValueError: where a list of counts does not match the widths.

    >>> seed_counts(Settings(widths=(64, 256), seeds=(32, 8))), seed_counts(Settings(seeds=4))
    ((32, 8), (4, 4, 4))
    """
    if isinstance(settings.seeds, int):
        return (settings.seeds,) * len(settings.widths)
    if len(settings.seeds) == 1:
        return tuple(settings.seeds) * len(settings.widths)
    if len(settings.seeds) != len(settings.widths):
        raise ValueError(
            f"{len(settings.seeds)} seed counts for {len(settings.widths)} widths: "
            "give one count, or one per width"
        )
    return tuple(settings.seeds)


def run(settings: Settings, *, progress: bool = True) -> list[dict[str, Any]]:
    """Measures every configuration at every width; one row per configuration, width, seed."""
    data = data_lib.load(settings.dataset, input_norm=settings.input_norm, q0=settings.q0)
    q_input = float(np.mean(np.square(data.x_train.astype(np.float64))))
    rows = []
    for spec in settings.configs:
        activation, init = parse_config(spec)
        sigma_b = settings.sigma_b if init == "critical" else 0.0
        for width, n_seeds in zip(settings.widths, seed_counts(settings), strict=True):
            seeds = list(range(n_seeds))
            start = time.perf_counter()
            norms = measure(
                activation, init, width=width, seeds=seeds, data=data, depth=settings.depth,
                batch_size=settings.batch_size, sigma_b=sigma_b,
            )  # fmt: skip
            predicted = meanfield_ratio(
                activation, init, depth=settings.depth, width=width,
                input_dim=data.input_dim, q_input=q_input, sigma_b=sigma_b,
            )  # fmt: skip
            ratios = norms[:, 0] / norms[:, -1]
            for seed, ratio in zip(seeds, ratios, strict=True):
                rows.append(
                    {
                        "activation": activation, "init": init, "sigma_b": sigma_b,
                        "depth": settings.depth, "width": width,
                        "batch_size": settings.batch_size, "dataset": settings.dataset,
                        "input_norm": settings.input_norm, "q_input": q_input, "seed": seed,
                        "ratio": float(ratio), "ratio_meanfield": predicted,
                    }
                )  # fmt: skip
            if progress:
                print(
                    f"{activation}/{init} width {width}: "
                    f"{stats.interval(ratios, log=True)} (mean field {predicted:.3g}), "
                    f"{time.perf_counter() - start:.1f} s",
                    file=sys.stderr,
                )
    return rows


def summarise(rows: Sequence[dict[str, Any]], *, level: float = 0.95) -> list[dict[str, Any]]:
    """One row per configuration and width: the geometric mean over seeds with its t interval
    on the log scale (:func:`experiments.stats.interval`), the prediction, and measured over
    predicted."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["activation"], row["init"], int(row["width"])), []).append(row)
    out = []
    for (activation, init, width), members in groups.items():
        iv = stats.interval([float(r["ratio"]) for r in members], log=True, level=level)
        predicted = float(members[0]["ratio_meanfield"])
        out.append(
            {
                "config": f"{activation}/{init}", "width": width, "interval": iv,
                "ratio_meanfield": predicted, "measured_over_predicted": iv.centre / predicted,
            }
        )  # fmt: skip
    return out


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _seed_text(settings: Settings) -> str:
    counts = seed_counts(settings)
    if len(set(counts)) == 1:
        return f"{counts[0]} seeds per width"
    return "seeds " + ", ".join(
        f"{n} at width {w}" for w, n in zip(settings.widths, counts, strict=True)
    )


def summary_markdown(settings: Settings, summary: Sequence[dict[str, Any]], seconds: float) -> str:
    """The summary table as Markdown."""
    lines = [
        "# Width sweep: first/last gradient ratio at initialisation against mean field",
        "",
        f"Depth {settings.depth}, batch {settings.batch_size}, {_seed_text(settings)}, "
        f"dataset {settings.dataset}, input norm {settings.input_norm}"
        + (f" (q0 = {settings.q0:g})" if settings.input_norm == "unit" else "")
        + f"; random networks, no training; {seconds:.0f} s.",
        "",
        "Ratio = |dLoss/dh| of the first hidden layer / of the last, on one random batch per "
        "seed; geometric mean over seeds [95% t interval on the log scale] (n seeds). "
        "Mean field = prod_l sqrt(chi(q^l)) from `jaxact.theory`, as in the gradient-flow "
        "summaries.",
        "",
        "| configuration | width | measured ratio [95% interval] (n) | mean field "
        "| measured / mean field |",
        "|---|---:|---|---:|---:|",
    ]
    for r in summary:
        lines.append(
            f"| {r['config']} | {r['width']} | {stats.format_interval(r['interval'])} "
            f"| {r['ratio_meanfield']:.3g} | {r['measured_over_predicted']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def plot(settings: Settings, rows: Sequence[dict[str, Any]], path: Path, *, dpi: float = 100):
    """Ratio against width, one panel per configuration: every seed (dots), the geometric mean
    with its 95% interval, and the mean-field prediction (dashed line); log-log axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    summary = summarise(rows)
    configs = list(dict.fromkeys(r["config"] for r in summary))
    fig, axes = plt.subplots(
        1, len(configs), figsize=(3.6 * len(configs), 3.2), squeeze=False, layout="constrained"
    )
    rng = np.random.default_rng(0)  # horizontal jitter of the per-seed dots
    for ax, config in zip(axes[0], configs, strict=True):
        mine = [r for r in summary if r["config"] == config]
        widths = np.array([r["width"] for r in mine], dtype=float)
        seeds = [r for r in rows if f"{r['activation']}/{r['init']}" == config]
        seed_w = np.array([r["width"] for r in seeds], dtype=float)
        seed_r = np.array([r["ratio"] for r in seeds], dtype=float)
        ax.scatter(
            seed_w * np.exp(rng.uniform(-0.08, 0.08, seed_w.size)), seed_r, s=8,
            color="0.6", alpha=0.6, linewidths=0, label="one seed",
        )  # fmt: skip
        centre = np.array([r["interval"].centre for r in mine])
        low = np.array([r["interval"].low for r in mine])
        high = np.array([r["interval"].high for r in mine])
        ax.errorbar(
            widths, centre, yerr=[centre - low, high - centre], fmt="o-", color="C0",
            capsize=3, label="geometric mean, 95% CI",
        )  # fmt: skip
        ax.axhline(mine[0]["ratio_meanfield"], color="C3", ls="--", label="mean field")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(widths, [str(int(w)) for w in widths])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        low_y, high_y = ax.get_ylim()
        if high_y / low_y < 100:  # under two decades: label 1, 2, 5 x 10^k, not only 10^k
            ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("width")
        ax.set_title(config)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(r"$|\partial L/\partial h^{0}|\,/\,|\partial L/\partial h^{L-1}|$")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        f"depth {settings.depth}, batch {settings.batch_size}, {_seed_text(settings)}, "
        f"{settings.dataset} inputs ({settings.input_norm} norm)",
        fontsize=9,
    )
    return save_figure(fig, path, dpi=dpi)


def _positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.width_sweep",
        description="First/last pre-activation gradient ratio of random networks at several "
        "widths, against the mean-field prediction.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--out", default="results/width_sweep", help="output folder")
    add("--configs", default=",".join(CONFIGS), help="comma list of ACTIVATION/INIT "
        f"(inits: {', '.join(model_lib.INITS)})")  # fmt: skip
    add("--widths", type=_positive_ints, default=WIDTHS, help="comma list of widths")
    add("--seeds", type=_positive_ints, default=SEEDS, help="seeds per width (vmapped): one "
        "count for every width, or a comma list with one count per width")  # fmt: skip
    add("--depth", type=positive_int, default=DEPTH, help="hidden layers")
    add("--batch-size", type=positive_int, default=BATCH_SIZE, help="examples per batch")
    add("--dataset", choices=data_lib.NAMES, default="digits")
    add("--input-norm", choices=data_lib.INPUT_NORMS, default="unit",
        help="'unit': every input rescaled to mean(x^2) = q0")  # fmt: skip
    add("--q0", type=float, default=1.0, help="squared length per feature under unit norm")
    add("--sigma-b", type=float, default=0.0, help="bias std of a critical init")
    add("--no-plots", dest="plots", action="store_false", help="table and summary only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
        settings = Settings(
            configs=configs, widths=args.widths, seeds=args.seeds, depth=args.depth,
            batch_size=args.batch_size, dataset=args.dataset, input_norm=args.input_norm,
            q0=args.q0, sigma_b=args.sigma_b,
        )  # fmt: skip
        seed_counts(settings)
        data = data_lib.load(args.dataset, input_norm=args.input_norm, q0=args.q0)
        for spec in configs:  # an init the activation does not have (critical) fails here
            activation, init = parse_config(spec)
            model_lib.layer_scales(
                init, activation, {}, depth=args.depth, width=args.widths[0],
                input_dim=data.input_dim, num_classes=data.num_classes, sigma_b=args.sigma_b,
            )  # fmt: skip
        out = prepare_output_folder(args.out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with output_lock(out):
            start = time.perf_counter()
            rows = run(settings)
            seconds = time.perf_counter() - start
            write_csv(out / "width_sweep.csv", rows)
            summary = summary_markdown(settings, summarise(rows), seconds)
            atomic_write_text(out / "summary.md", summary)
            if args.plots:
                plot(settings, rows, out / "width_sweep.png")
    except OutputLocked as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; nothing written (the sweep takes seconds: run it again)", file=sys.stderr
        )
        return 130
    print(f"wrote {out} in {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
