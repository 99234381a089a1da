"""Every figure of the gradient-flow experiment, drawn from the written tables only.

``plot_all(out)`` reads ``gradient_norms.csv``, ``metrics.csv`` and
``meanfield.csv`` from ``out`` and writes:

- ``preact_grad_by_layer.png``: |dL/dh| against layer (log axis), one line per
  configuration (geometric mean over seeds), at initialisation and at the end;
- ``heatmaps.png``: log10 |dL/dh| over layer x step, one panel per configuration;
- ``loss_curves.png``: train loss and test accuracy against step;
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

from experiments import recording


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _log_mean(values) -> float:
    """Geometric mean of the positive finite values (NaN if none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.mean(np.log(values)))) if values.size else math.nan


def _grid(out: Path):
    """config -> {(step, layer): [preact norms over seeds]} for the hidden layers."""
    grid = defaultdict(lambda: defaultdict(list))
    for row in recording.read_csv(out / "gradient_norms.csv"):
        if row["kind"] == "hidden":
            grid[row["config"]][(int(row["step"]), int(row["layer"]))].append(
                _float(row["preact_grad_norm"])
            )
    return grid


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


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


def plot_by_layer(out: Path, grid) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    styles = _styles(grid)
    for label, cells in grid.items():
        steps = sorted({s for s, _ in cells})
        for ax, step in zip(axes, (steps[0], steps[-1]), strict=True):
            layers = sorted(layer for s, layer in cells if s == step)
            values = [_log_mean(cells[(step, layer)]) for layer in layers]
            ax.plot(layers, values, ms=3, mfc="none", lw=1.2, label=label, **styles[label])
    for ax, title in zip(axes, ("at initialisation (step 0)", "at the end"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer (0 = nearest the input)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("|dLoss/dh| (pre-activation gradient)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, out / "preact_grad_by_layer.png")


def plot_heatmaps(out: Path, grid) -> None:
    n = len(grid)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, (label, cells) in zip(axes.flat, grid.items(), strict=False):
        steps = sorted({s for s, _ in cells})
        layers = sorted({layer for _, layer in cells})
        image = np.full((len(layers), len(steps)), np.nan)
        for i, layer in enumerate(layers):
            for j, step in enumerate(steps):
                value = _log_mean(cells[(step, layer)])
                image[i, j] = np.log10(value) if value > 0 else np.nan
        mesh = ax.imshow(
            image, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
            extent=(steps[0], steps[-1], layers[0] - 0.5, layers[-1] + 0.5),
        )  # fmt: skip
        fig.colorbar(mesh, ax=ax, label="log10 |dL/dh|")
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "heatmaps.png")


def plot_loss_curves(out: Path) -> None:
    curves = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for row in recording.read_csv(out / "metrics.csv"):
        for metric in ("train_loss", "test_accuracy"):
            curves[metric][row["config"]][int(row["step"])].append(_float(row[metric]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = list(curves["train_loss"])
    styles = _styles(labels)
    for label in labels:
        style = dict(styles[label], marker=None)  # markers only clutter a curve over steps
        for ax, metric in zip(axes, ("train_loss", "test_accuracy"), strict=True):
            by_step = curves[metric][label]
            steps = sorted(by_step)
            values = [np.nanmedian(by_step[s]) if np.isfinite(by_step[s]).any() else np.nan
                      for s in steps]  # fmt: skip
            ax.plot(steps, values, lw=1.2, label=label, **style)
    axes[0].set_ylabel("train loss (median over seeds)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("test accuracy (median over seeds)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, out / "loss_curves.png")


def plot_meanfield(out: Path, grid) -> None:
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
                _log_mean(cells.get((0, layer), [])),
                _log_mean(cells.get((0, layer + 1), [])),
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
    ax.set_title("per-layer gradient slope against mean-field theory")
    ax.grid(True, alpha=0.3)
    _save(fig, out / "meanfield_slopes.png")


def plot_all(out: str | Path) -> list[Path]:
    """Draws every figure from the tables in ``out``; returns their paths."""
    out = Path(out)
    grid = _grid(out)
    plot_by_layer(out, grid)
    plot_heatmaps(out, grid)
    plot_loss_curves(out)
    plot_meanfield(out, grid)
    names = ("preact_grad_by_layer", "heatmaps", "loss_curves", "meanfield_slopes")
    return [out / f"{name}.png" for name in names]
