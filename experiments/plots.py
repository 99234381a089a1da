"""Every figure of the gradient-flow experiment, drawn from the written tables only.

``plot_all(out)`` reads the tables of :mod:`experiments.records` (gradient norms
and metrics) and ``meanfield.csv`` from ``out`` and writes:

- ``preact_grad_by_layer.png``: |dL/dh| against layer (log axis), one line per
  configuration (geometric mean over seeds, shaded: its 95% interval over the seeds), at
  initialisation and at the end;
- ``heatmaps.png``: log10 |dL/dh| over layer x step, one panel per configuration;
- ``loss_curves.png``: train loss and test accuracy against step (median over seeds), a
  cross where a seed diverged;
- ``meanfield_slopes.png``: measured per-layer log-ratio log(|dL/dh^l| / |dL/dh^{l+1}|)
  at step 0 against the mean-field prediction 0.5 log chi(q^l).
"""

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from experiments import recording, records, stats
from experiments.atomic_files import save_figure


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _describe(out: Path) -> str:
    """``depth D, width W, N seeds`` of the sweep in ``out`` (for figure titles)."""
    columns = recording.read_columns(out / records.METRICS.file)
    grads = recording.read_columns(out / records.GRADIENTS.file)
    seeds = len(set(columns["seed"].tolist()))
    depths = "/".join(sorted(set(grads["depth"].tolist()), key=int))
    widths = "/".join(sorted(set(grads["width"].tolist()), key=int))
    return f"depth {depths}, width {widths}, {seeds} seed{'s' if seeds != 1 else ''}"


def _grid(out: Path):
    """config -> {(step, layer): [preact norms over seeds]} for the hidden layers."""
    grid = defaultdict(lambda: defaultdict(list))
    columns = recording.read_columns(out / records.GRADIENTS.file)
    hidden = columns["kind"] == "hidden"
    keys = zip(
        columns["config"][hidden].tolist(),
        columns["step"][hidden].astype(int).tolist(),
        columns["layer"][hidden].astype(int).tolist(),
        columns["preact_grad_norm"][hidden].astype(float).tolist(),
        strict=True,
    )
    for config, step, layer, value in keys:
        grid[config][(step, layer)].append(value)
    return grid


def _save(fig, path: Path) -> None:
    save_figure(fig, path, dpi=110, bbox_inches="tight")


_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "x", "^", "s", "v", "D", "+", "*")


def _styles(labels) -> dict[str, dict]:
    """Colour by activation, line style by init, marker by the rest of the label.

    A sweep has up to a few dozen configurations; one colour each would repeat, so every
    part of ``activation/init/extras`` gets its own visual channel instead.
    """
    labels = list(labels)
    parts = []
    for label in labels:
        activation, init, *extras = [*label.split("/"), ""]
        parts.append((activation, init, "/".join(e for e in extras if e)))
    activations = list(dict.fromkeys(p[0] for p in parts))
    inits = list(dict.fromkeys(p[1] for p in parts))
    extras = list(dict.fromkeys(p[2] for p in parts))
    cmap = plt.get_cmap("tab10" if len(activations) <= 10 else "tab20")
    return {
        label: {
            "color": cmap(activations.index(a) % cmap.N),
            "linestyle": _LINESTYLES[inits.index(i) % len(_LINESTYLES)],
            "marker": _MARKERS[extras.index(e) % len(_MARKERS)],
        }
        for label, (a, i, e) in zip(labels, parts, strict=True)
    }


def plot_by_layer(out: Path, grid, title: str = "") -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    styles = _styles(grid)
    for label, cells in grid.items():
        steps = sorted({s for s, _ in cells})
        for ax, step in zip(axes, (steps[0], steps[-1]), strict=True):
            layers = sorted(layer for s, layer in cells if s == step)
            spread = [stats.interval(cells[(step, layer)], log=True) for layer in layers]
            values = [iv.centre for iv in spread]
            ax.plot(layers, values, ms=3, mfc="none", lw=1.2, label=label, **styles[label])
            ax.fill_between(layers, [iv.low for iv in spread], [iv.high for iv in spread],
                            color=styles[label]["color"], alpha=0.12, lw=0)  # fmt: skip
    for ax, when in zip(axes, ("at initialisation (step 0)", "at the end"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer (0 = nearest the input)")
        ax.set_title(when)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("|dLoss/dh| (pre-activation gradient)")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{title}; line: geometric mean over seeds, band: its 95% interval",
                 fontsize=9)  # fmt: skip
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, out / "preact_grad_by_layer.png")


def plot_heatmaps(out: Path, grid, title: str = "") -> None:
    """One panel per configuration, all on one colour scale (so decades compare)."""
    n = len(grid)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    images = {}
    for label, cells in grid.items():
        steps = sorted({s for s, _ in cells})
        layers = sorted({layer for _, layer in cells})
        image = np.full((len(layers), len(steps)), np.nan)
        for i, layer in enumerate(layers):
            for j, step in enumerate(steps):
                value = stats.geometric_mean(cells[(step, layer)])
                image[i, j] = np.log10(value) if value > 0 else np.nan
        images[label] = (image, steps, layers)
    finite = [im[np.isfinite(im)] for im, _, _ in images.values()]
    finite = np.concatenate(finite) if finite else np.empty(0)
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (None, None)
    height = 2.8 * rows + 0.5
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, height), squeeze=False)
    diverged = _diverged(out)
    mesh = None
    for ax, (label, (image, steps, layers)) in zip(axes.flat, images.items(), strict=False):
        mesh = ax.imshow(
            image, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
            extent=(steps[0], steps[-1], layers[0] - 0.5, layers[-1] + 0.5), vmin=vmin,
            vmax=vmax,
        )  # fmt: skip
        if label in diverged:  # blank after a divergence: say why
            ax.set_title(f"{label}\ndiverged {diverged[label]}", fontsize=8, color="tab:red")
            if not np.isfinite(image[:, len(steps) // 2 :]).any():
                ax.text(0.5, 0.5, "diverged", transform=ax.transAxes, ha="center",
                        va="center", color="tab:red")  # fmt: skip
        else:
            ax.set_title(label, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"log10 |dL/dh| (geometric mean over seeds); {title}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / height))  # room for the title
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label="log10 |dL/dh| (one scale for every panel)")
    _save(fig, out / "heatmaps.png")


def plot_loss_curves(out: Path, title: str = "") -> None:
    curves = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in recording.read_csv(out / records.METRICS.file):
        for metric in ("train_loss", "test_accuracy"):
            curves[metric][row["config"]][int(row["step"])].append(_float(row[metric]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = list(curves["train_loss"])
    styles = _styles(labels)
    diverged_steps = _diverged_steps(out)
    for label in labels:
        style = dict(styles[label], markevery=0.2, ms=4, mfc="none")  # a few markers each
        for ax, metric in zip(axes, ("train_loss", "test_accuracy"), strict=True):
            by_step = curves[metric][label]
            steps = sorted(by_step)
            values = [np.nanmedian(by_step[s]) if np.isfinite(by_step[s]).any() else np.nan
                      for s in steps]  # fmt: skip
            ax.plot(steps, values, lw=1.2, label=label, **style)
            # A cross in the configuration's colour at each divergence, on the curve's last
            # value before it (the curve of a seed ends there).
            for step in diverged_steps.get(label, ()):
                before = [v for s, v in zip(steps, values, strict=True) if s <= step]
                finite = [v for v in before if np.isfinite(v)]
                if finite:
                    ax.plot(step, finite[-1], "X", ms=8, color=style["color"], mec="k", mew=0.5)
    axes[0].set_ylabel("train loss (median over seeds)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("test accuracy (median over seeds)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    # A diverged seed has no curve after it (NaN): the legend says so.
    diverged = _diverged(out)
    handles, names = axes[1].get_legend_handles_labels()
    names = [n + (f" — diverged {diverged[n]}" if n in diverged else "") for n in names]
    axes[1].legend(handles, names, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{title}; X: a seed diverged (its curve ends)" if diverged else title,
                 fontsize=9)  # fmt: skip
    _save(fig, out / "loss_curves.png")


def _diverged_steps(out: Path) -> dict[str, list[int]]:
    """config -> the training steps at which its seeds diverged (one per diverged seed)."""
    columns = recording.read_columns(out / records.METRICS.file)
    bad = columns["diverged"] == "1"
    steps = defaultdict(set)
    labels, at = columns["config"][bad].tolist(), columns["diverged_step"][bad].astype(int)
    for label, step in zip(labels, at.tolist(), strict=True):
        steps[label].add(step)
    return {label: sorted(found) for label, found in steps.items()}


def _diverged(out: Path) -> dict[str, str]:
    """config -> "k/n seeds" for the configurations with a diverged seed."""
    columns = recording.read_columns(out / records.METRICS.file)
    result = {}
    for label in dict.fromkeys(columns["config"].tolist()):
        here = columns["config"] == label
        seeds = set(columns["seed"][here].tolist())
        bad = set(columns["seed"][here & (columns["diverged"] == "1")].tolist())
        if bad:
            result[label] = f"{len(bad)}/{len(seeds)} seeds"
    return result


def plot_meanfield(out: Path, grid, title: str = "") -> None:
    path = out / "meanfield.csv"
    predictions = recording.read_csv(path) if path.exists() else []
    fig, ax = plt.subplots(figsize=(6.5, 5))
    by_config = defaultdict(dict)
    for row in predictions:
        by_config[row["config"]][int(row["layer"])] = _float(row["predicted_log_ratio"])
    styles = _styles(by_config)
    lo, hi = math.inf, -math.inf
    for label, predicted in by_config.items():
        cells = grid.get(label, {})
        xs, ys = [], []
        for layer, prediction in sorted(predicted.items()):
            here, above = (
                stats.geometric_mean(cells.get((0, layer), [])),
                stats.geometric_mean(cells.get((0, layer + 1), [])),
            )
            if here > 0 and above > 0:
                xs.append(prediction)
                ys.append(math.log(here / above))
        if xs:
            # marker by init here: a scatter has no line style
            init_marker = _MARKERS[_LINESTYLES.index(styles[label]["linestyle"])]
            ax.scatter(xs, ys, s=14, color=styles[label]["color"], marker=init_marker,
                       label=label)  # fmt: skip
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
    if math.isfinite(lo):
        pad = 0.05 * (hi - lo) + 1e-3
        ax.plot(
            [lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="measured = predicted"
        )
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.text(0.5, 0.5, "no configuration with a mean-field prediction\n(norm or residual)",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
    ax.set_xlabel("predicted 0.5 log chi(q^l)")
    ax.set_ylabel("measured log(|dL/dh^l| / |dL/dh^(l+1)|) at step 0")
    ax.set_title(f"per-layer gradient slope against mean-field theory\n{title}", fontsize=9)
    ax.grid(True, alpha=0.3)
    _save(fig, out / "meanfield_slopes.png")


def plot_all(out: str | Path) -> list[Path]:
    """Draws every figure from the tables in ``out``; returns their paths."""
    out = Path(out)
    grid = _grid(out)
    title = _describe(out)
    plot_by_layer(out, grid, title)
    plot_heatmaps(out, grid, title)
    plot_loss_curves(out, title)
    plot_meanfield(out, grid, title)
    names = ("preact_grad_by_layer", "heatmaps", "loss_curves", "meanfield_slopes")
    return [out / f"{name}.png" for name in names]
