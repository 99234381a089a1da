"""The activation gallery's figures, one function a page.

- :func:`plot_activation_page`: one activation, the function beside its ``jax.grad`` derivative.
- :func:`plot_family_page`: a textbook family drawn together.
- :func:`plot_grid_page`: small multiples of many activations.
- :func:`plot_softmax_page`: softmax of a vector, and at several temperatures.
- :func:`plot_accuracy_page`: relative error of jaxact beside ``jax.nn``, from
  :func:`experiments.accuracy.accuracy_data`.
- :func:`plot_tails_page`: ``|f'(x)|`` far into the tail, jaxact beside ``jax.nn`` and the
  mpmath truth, from :func:`experiments.gallery_data.tail_data`.

Each returns the path it wrote, atomically (:func:`experiments.atomic_files.save_figure`); the
numbers come from :mod:`experiments.gallery_data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxact
from experiments.accuracy import ERROR_KINDS
from experiments.atomic_files import save_figure
from experiments.gallery_data import (
    SOFTMAX_TEMPERATURES,
    SOFTMAX_VECTOR,
    TWO_ELEMENT_FORMS,
    Family,
    evaluate_on_grid,
    format_params,
    kinks_of,
    plot_grid,
    shown_params,
)

_FUNCTION_COLOUR = "tab:blue"
_DERIVATIVE_COLOUR = "tab:red"


def _style_axes(ax, xlabel: str, ylabel: str) -> None:
    ax.axhline(0.0, color="0.55", lw=0.8, zorder=0)
    ax.axvline(0.0, color="0.55", lw=0.8, zorder=0)
    ax.grid(True, color="0.9", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _format_bound(b: float) -> str:
    if math.isinf(b):
        return "∞" if b > 0 else "−∞"
    return f"{b:.4g}"


def _mark_range(ax, output_range: tuple[float, float]) -> None:
    """Dashed lines at the finite output bounds, a shaded band between them, and a legend entry."""
    low, high = output_range
    label = f"output range {_format_bound(low)} to {_format_bound(high)}"
    band_low = low if math.isfinite(low) else -1e30
    band_high = high if math.isfinite(high) else 1e30
    ylim = ax.get_ylim()
    ax.axhspan(band_low, band_high, color="tab:green", alpha=0.08, lw=0, label=label)
    for b in (low, high):
        if math.isfinite(b):
            ax.axhline(b, color="tab:green", ls="--", lw=1.0)
    ax.set_ylim(ylim)


def _mark_kinks(ax, kinks: Sequence[float], xmin: float, xmax: float) -> None:
    inside = [k for k in kinks if xmin <= k <= xmax]
    for i, k in enumerate(inside):
        ax.axvline(k, color="0.4", ls=":", lw=1.0, label="kink" if i == 0 else None)


def _page_title(name: str, params: dict[str, Any] | None) -> tuple[str, str]:
    entry = jaxact.info(name)
    form = TWO_ELEMENT_FORMS.get(entry.name)
    title = f"{entry.name}  ({format_params(shown_params(name, params))})"
    subtitle = f"f(x) = {form}" if form else f"f(x) = {entry.formula}"
    return title, subtitle


def plot_activation_page(
    name: str,
    path: Path,
    *,
    xmin: float = -6.0,
    xmax: float = 6.0,
    dpi: int = 100,
    params: dict[str, Any] | None = None,
) -> Path:
    """One activation: the function (left) and its ``jax.grad`` derivative (right).

    The title carries the parameters, the subtitle the formula; zero lines, the output range
    (shaded, dashed at finite bounds) and the kinks (dotted) are marked. At a kink the
    derivative is drawn as two one-sided pieces and the value ``jax.grad`` returns there is a dot.

    Returns:
        ``path``.
    """
    entry = jaxact.info(name)
    kinks = kinks_of(name, params)
    x = plot_grid(xmin, xmax, kinks)
    y, dy = evaluate_on_grid(name, x, params)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    title, subtitle = _page_title(name, params)
    fig.suptitle(f"{title}\n{subtitle}", fontsize=11)

    ax_f.plot(x, y, color=_FUNCTION_COLOUR, lw=2, label="f(x)")
    _style_axes(ax_f, "x", "f(x)")
    _mark_range(ax_f, entry.output_range)
    _mark_kinks(ax_f, kinks, xmin, xmax)
    ax_f.set_title("function", fontsize=10)
    ax_f.legend(loc="best", fontsize=8, framealpha=0.9)

    ax_d.plot(x, dy, color=_DERIVATIVE_COLOUR, lw=2, label="f'(x) from jax.grad")
    at_kink = np.isin(x, np.array(kinks, dtype=np.float32))  # each kink starts a segment
    if at_kink.any():
        ax_d.plot(
            x[at_kink], dy[at_kink], "o", color=_DERIVATIVE_COLOUR, ms=5, label="jax.grad at kink"
        )
    _style_axes(ax_d, "x", "f'(x)")
    _mark_kinks(ax_d, kinks, xmin, xmax)
    _pad_flat(ax_d, dy)
    ax_d.set_title("derivative (jax.grad: the custom rules)", fontsize=10)
    ax_d.legend(loc="best", fontsize=8, framealpha=0.9)
    return save_figure(fig, path, dpi=dpi)


def _pad_flat(ax, values: np.ndarray) -> None:
    """Gives a constant curve some room, so it is not drawn on the frame."""
    finite = values[np.isfinite(values)]
    if finite.size and np.ptp(finite) < 1e-6:
        c = float(finite[0])
        ax.set_ylim(c - 1.0, c + 1.0)


def plot_family_page(
    family: Family, path: Path, *, xmin: float = -6.0, xmax: float = 6.0, dpi: int = 100
) -> Path:
    """A family drawn together: all functions on the left axes, all derivatives on the right."""
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    fig.suptitle(family.title, fontsize=12)
    styles = ("-", "--", "-.", ":")
    for i, curve in enumerate(family.curves):
        x = plot_grid(xmin, xmax, kinks_of(curve.name, curve.params))
        y, dy = evaluate_on_grid(curve.name, x, curve.params)
        colour, style = f"C{i}", styles[i % len(styles)]
        ax_f.plot(x, y, color=colour, ls=style, lw=2, label=curve.text)
        ax_d.plot(x, dy, color=colour, ls=style, lw=2, label=curve.text)
    _style_axes(ax_f, "x", "f(x)")
    _style_axes(ax_d, "x", "f'(x) (jax.grad)")
    ax_f.set_title("functions", fontsize=10)
    ax_d.set_title("derivatives", fontsize=10)
    handles, labels = ax_f.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def plot_grid_page(
    names: Sequence[str], path: Path, *, xmin: float = -6.0, xmax: float = 6.0, dpi: int = 100
) -> Path:
    """Small multiples: each activation (solid) and its derivative (dashed) in its own cell."""
    ncols = min(6, max(len(names), 1))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.6 * ncols, 2.3 * nrows + 0.6), layout="constrained", squeeze=False
    )
    fig.suptitle("Every activation: f (solid) and f' from jax.grad (dashed)", fontsize=12)
    for ax, name in zip(axes.flat, names, strict=False):
        x = plot_grid(xmin, xmax, kinks_of(name))
        y, dy = evaluate_on_grid(name, x)
        ax.plot(x, y, color=_FUNCTION_COLOUR, lw=1.6)
        ax.plot(x, dy, color=_DERIVATIVE_COLOUR, lw=1.2, ls="--")
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
        ax.axvline(0.0, color="0.6", lw=0.6, zorder=0)
        _clip_tall(ax, y, dy)
        title = name if jaxact.info(name).elementwise else f"{name} ([x, 0] form)"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    return save_figure(fig, path, dpi=dpi)


def _clip_tall(ax, *curves: np.ndarray) -> None:
    """Keeps a fast-growing curve (exponential) from flattening the other one in the cell."""
    values = np.concatenate([c[np.isfinite(c)] for c in curves])
    if values.size and values.max() > 10:
        ax.set_ylim(max(values.min(), -10) - 0.5, 10)


def plot_softmax_page(path: Path, *, dpi: int = 100) -> Path:
    """Softmax of ``[1, 2, 3, 4, 5, 6]`` (left) and the same vector at several temperatures."""
    v = jnp.asarray(SOFTMAX_VECTOR, dtype=jnp.float32)
    idx = np.arange(len(SOFTMAX_VECTOR))
    fig, (ax_1, ax_t) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    fig.suptitle("softmax of x = [1, 2, 3, 4, 5, 6]", fontsize=12)

    # One compiled call for every temperature (eager calls would compile op by op).
    temperatures = jnp.asarray((1.0, *SOFTMAX_TEMPERATURES), dtype=jnp.float32)
    probabilities = np.asarray(
        jax.jit(jax.vmap(lambda t: jaxact.softmax(v, temperature=t)))(temperatures)
    )
    p = probabilities[0]
    bars = ax_1.bar(idx, p, color="tab:blue")
    ax_1.bar_label(bars, labels=[f"{q:.3f}" for q in p], fontsize=8)
    ax_1.set_title("temperature 1", fontsize=10)
    ax_1.set_ylim(0, max(p) * 1.15)

    width = 0.8 / len(SOFTMAX_TEMPERATURES)
    for i, (t, q) in enumerate(zip(SOFTMAX_TEMPERATURES, probabilities[1:], strict=True)):
        offset = (i - (len(SOFTMAX_TEMPERATURES) - 1) / 2) * width
        ax_t.bar(idx + offset, q, width, label=f"T = {t:g}", color=f"C{i}")
    ax_t.axhline(1 / len(SOFTMAX_VECTOR), color="0.4", ls=":", lw=1, label="uniform 1/6")
    ax_t.set_title("softmax(x / T): high T flattens, low T sharpens", fontsize=10)
    ax_t.legend(fontsize=8, loc="upper left")
    for ax in (ax_1, ax_t):
        ax.set_xticks(idx, [f"x{i + 1}={x:g}" for i, x in enumerate(SOFTMAX_VECTOR)], fontsize=8)
        ax.set_xlabel("entry")
        ax.set_ylabel("probability")
        ax.grid(True, axis="y", color="0.9")
        ax.set_axisbelow(True)
    return save_figure(fig, path, dpi=dpi)


_ERROR_FLOOR = 0.1  # eps; exact results (0 eps) are drawn here on the log axis
_ERROR_CAP = 1e9  # eps; NaN and infinite errors are drawn here


def _plottable(errors: np.ndarray) -> np.ndarray:
    e = np.abs(np.asarray(errors, dtype=np.float64))
    e = np.where(np.isfinite(e), e, _ERROR_CAP)
    return np.clip(e, _ERROR_FLOOR, _ERROR_CAP)


def plot_accuracy_page(data: dict, path: Path, *, dpi: int = 100) -> Path:
    """Relative error in float32 eps of value and derivative, jaxact beside ``jax.nn``.

    One row per function, value on the left and derivative on the right; ``x`` on a symlog
    axis, error on a log axis (exact results drawn at 0.1 eps, NaN and inf at the top).
    """
    x, functions = data["x"], data["functions"]
    names = list(functions)
    fig, axes = plt.subplots(
        len(names),
        2,
        figsize=(11, 2.0 * len(names) + 1.0),
        layout="constrained",
        squeeze=False,
        sharex=True,
    )
    fig.suptitle("Relative error vs mpmath, float32, in eps = 2^-23 (lower is better)", fontsize=12)
    impls = (("jax.nn", "tab:orange", 2.2, 0.9), ("jaxact", "tab:blue", 1.2, 1.0))
    for row, name in zip(axes, names, strict=True):
        errs = functions[name]
        for ax, kind in zip(row, ERROR_KINDS, strict=True):
            for impl, colour, lw, alpha in impls:
                ax.plot(
                    x, _plottable(errs[impl][kind]), color=colour, lw=lw, alpha=alpha, label=impl
                )
            worst = {impl: data["summary"][name][impl][kind]["max"] for impl, *_ in impls}
            ax.set_title(
                f"{name}: {kind}    max: jaxact {format_eps(worst['jaxact'])}, "
                f"jax.nn {format_eps(worst['jax.nn'])}",
                fontsize=9,
                loc="left",
            )
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_yscale("log")
            ax.set_ylim(_ERROR_FLOOR / 2, _ERROR_CAP * 5)
            ax.set_yticks([1e-1, 1e1, 1e3, 1e5, 1e7, 1e9], ["0", "10", "1e3", "1e5", "1e7", "≥1e9"])
            ax.axhline(1.0, color="0.5", ls=":", lw=0.8)
            ax.grid(True, color="0.92")
            ax.set_ylabel("error (eps)", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside lower center", ncols=2, fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("x (symlog)")
    return save_figure(fig, path, dpi=dpi)


_TAIL_ZERO_ROW = 1e-42  # where a derivative of exactly 0 is drawn on the log axis
_TAIL_YMIN, _TAIL_YMAX = 1e-39, 30.0  # the log axis proper; the zero row sits below it


def first_zero(x: np.ndarray, derivative: np.ndarray, truth: np.ndarray) -> float | None:
    """The x closest to 0 at which ``derivative`` is exactly 0 while ``truth`` is not.

    >>> first_zero(np.array([-3.0, -2.0, -1.0]), np.array([0.0, 0.0, 1.0]), np.ones(3))
    -2.0
    """
    lost = (derivative == 0) & (truth != 0)
    if not lost.any():
        return None
    return float(x[lost][np.argmin(np.abs(x[lost]))])


def plot_tails_page(data: dict[str, dict[str, np.ndarray]], path: Path, *, dpi: int = 100) -> Path:
    """``|f'(x)|`` on a log axis far into a tail: mpmath, jaxact and ``jax.nn``.

    One panel per function of ``data`` (as :func:`experiments.gallery_data.tail_data` returns
    it), sharing the y axis. A derivative of exactly 0 cannot sit on a log axis: it is drawn
    as a row of crosses on the line marked "0" below the axis' range.

    Returns:
        ``path``.
    """
    names = list(data)
    fig, axes = plt.subplots(
        1, len(names), figsize=(9.0, 3.8), layout="constrained", sharey=True, squeeze=False
    )
    fig.suptitle(
        "Derivatives in float32 far into the tail: jaxact follows the truth, jax.nn drops to 0",
        fontsize=11,
        fontweight="bold",
    )
    for ax, name in zip(axes[0], names, strict=True):
        d = data[name]
        x, truth = d["x"], np.abs(d["truth"])
        ax.axhspan(_TAIL_ZERO_ROW / 30, _TAIL_YMIN / 3, color="0.94", lw=0, zorder=0)
        ax.plot(
            x, truth, color="0.6", lw=5, alpha=0.6, solid_capstyle="butt", label="mpmath (truth)"
        )
        ax.plot(x, np.abs(d["jaxact"]), color="tab:blue", lw=1.5, label="jaxact (jax.grad)")
        theirs = np.abs(d["jax.nn"])
        ax.plot(
            x,
            np.where(theirs > 0, theirs, np.nan),
            color="tab:orange",
            lw=1.5,
            ls="--",
            label="jax.nn (jax.grad)",
        )
        zeros = (theirs == 0) & (truth != 0)
        step = max(1, int(zeros.sum()) // 24)  # a readable row, not a smear
        ax.plot(
            x[zeros][::step],
            np.full(zeros.sum(), _TAIL_ZERO_ROW)[::step],
            "x",
            color="tab:orange",
            ms=5,
            mew=1.5,
            label="jax.nn: exactly 0",
        )
        where = first_zero(x, d["jax.nn"], d["truth"])
        if where is None:
            lost = "jax.nn never 0"
        else:
            lost = f"jax.nn 0 for x {'≤' if where < 0 else '≥'} {where:.3g}"
        ax.set_title(f"|{name}'(x)|    ({lost})", fontsize=9.5)
        ax.set_yscale("log")
        ax.set_ylim(_TAIL_ZERO_ROW / 30, _TAIL_YMAX)
        ax.set_xlim(float(x.min()), float(x.max()))
        ax.set_xlabel("x", fontsize=9)
        ax.grid(True, color="0.9", lw=0.6)
        ax.tick_params(labelsize=8)
    ticks = [1e-36, 1e-30, 1e-24, 1e-18, 1e-12, 1e-6, 1.0]
    axes[0, 0].set_yticks(
        [_TAIL_ZERO_ROW, *ticks], ["0", *(f"1e{round(math.log10(t))}" for t in ticks[:-1]), "1"]
    )
    axes[0, 0].minorticks_off()
    axes[0, 0].set_ylabel("|f'(x)|", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9)
    return save_figure(fig, path, dpi=dpi)


def format_eps(e: float) -> str:
    """An error in eps for a title or a table: 3 digits, scientific from 1e4, ``inf/NaN``.

    >>> format_eps(0.5), format_eps(8388608.0), format_eps(float("nan"))
    ('0.5 eps', '8.39e+06 eps', 'inf/NaN')
    """
    if not math.isfinite(e):
        return "inf/NaN"
    return f"{e:.3g} eps" if e < 1e4 else f"{e:.2e} eps"
