"""Comparison plots: every activation and its derivative, the textbook families, and accuracy.

Run it headless (matplotlib's Agg backend, no display needed)::

    python -m experiments.plot_activations --out results/gallery
    python -m experiments.plot_activations --out /tmp/g --activations relu,swish --range -3,3

It writes into the output folder:

- ``activation_<name>.<fmt>``: one page per registry activation, the function beside its
  derivative (``jax.grad``, so the library's custom rules), the parameters in the title, the
  output range and the kinks marked. The non-elementwise functions are drawn on a two-element
  input: ``softmax``, ``log_softmax``, ``softmin`` and ``sparsemax`` as the first entry of
  ``f([x, 0])`` (the two-class case), ``logsumexp`` as ``logsumexp([x, 0])`` and ``glu`` as
  ``glu([x, x]) = x sigmoid(x)``; softmax of a longer vector has its own page.
- ``family_<key>.<fmt>``: the textbook groups drawn together, function and derivative side by side.
- ``grid.<fmt>``: small multiples of every selected activation.
- ``softmax.<fmt>``: softmax of ``[1, 2, 3, 4, 5, 6]``, and the same vector at several temperatures.
- ``accuracy.<fmt>``: relative error (float32 eps) of value and derivative, jaxact beside
  ``jax.nn``, over ``x`` in ``[-1e4, 1e4]``, against the mpmath reference of
  :mod:`experiments.accuracy`; ``accuracy.json`` holds the numbers summarised on the page.
- ``gallery.md``: embeds all of the above with relative paths.

``--activations`` filters every page: per-function pages and the grid show only the selection,
family pages only their selected members (a family with none is skipped), the softmax page is
drawn when ``softmax`` is selected and the accuracy page covers the selected functions of its list.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxact

# --- what is drawn ------------------------------------------------------------------------------

#: The parameters that describe an input's layout, not the curve's shape; left out of titles.
_STRUCTURAL_PARAMS = ("axis", "where", "key", "b", "keepdims", "return_sign")

#: How each non-elementwise activation is reduced to a curve of one variable.
TWO_ELEMENT_FORMS = {
    "softmax": "softmax([x, 0])[0]",
    "log_softmax": "log_softmax([x, 0])[0]",
    "softmin": "softmin([x, 0])[0]",
    "sparsemax": "sparsemax([x, 0])[0]",
    "logsumexp": "logsumexp([x, 0])",
    "glu": "glu([x, x]) = x sigmoid(x)",
}

#: The functions on the accuracy page (all have a ``jax.nn`` counterpart).
ACCURACY_NAMES = (
    "sigmoid",
    "tanh",
    "softplus",
    "log_sigmoid",
    "silu",
    "gelu",
    "mish",
    "elu",
    "selu",
    "soft_sign",
    "squareplus",
)

#: Temperatures on the softmax page.
SOFTMAX_VECTOR = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
SOFTMAX_TEMPERATURES = (0.5, 1.0, 2.0, 5.0)


@dataclasses.dataclass(frozen=True)
class Curve:
    """One activation with bound parameters, as drawn in a family page.

    Attributes:
        name: canonical registry name.
        params: hyperparameters passed to ``jaxact.get``.
        label: the legend text.
    """

    name: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""

    @property
    def text(self) -> str:
        """The legend text: the label, or the name with its non-default parameters."""
        if self.label:
            return self.label
        shown = ", ".join(
            f"{k}={v:g}" if _is_number(v) else f"{k}={v}" for k, v in self.params.items()
        )
        return f"{self.name}({shown})" if shown else self.name


@dataclasses.dataclass(frozen=True)
class Family:
    """A textbook group of activations drawn on one pair of axes.

    Attributes:
        key: the file-name stem.
        title: the page title.
        curves: the members.
    """

    key: str
    title: str
    curves: tuple[Curve, ...]


FAMILIES = (
    Family(
        "classic",
        "Classic: sigmoid, tanh, ReLU, Leaky ReLU",
        (
            Curve("sigmoid"),
            Curve("tanh"),
            Curve("relu"),
            Curve("leaky_relu", {"negative_slope": 0.1}),
        ),
    ),
    Family(
        "rectifiers",
        "Rectifiers and self-gated: ReLU, ReLU6, swish, h-swish",
        (
            Curve("relu"),
            Curve("relu6"),
            Curve("silu", label="swish (silu)"),
            Curve("hard_silu", label="h-swish (hard_silu)"),
        ),
    ),
    Family(
        "smooth",
        "ELU, SELU, softplus, softsign, hard sigmoid, linear",
        (
            Curve("elu"),
            Curve("selu"),
            Curve("softplus"),
            Curve("soft_sign", label="softsign"),
            Curve("hard_sigmoid"),
            Curve("identity", label="linear (identity)"),
        ),
    ),
    Family(
        "step",
        "Step and its surrogate gradients (k = sharpness)",
        (
            Curve("step", {"surrogate": "sigmoid", "sharpness": 1.0}, "sigmoid surrogate, k=1"),
            Curve("step", {"surrogate": "sigmoid", "sharpness": 4.0}, "sigmoid surrogate, k=4"),
            Curve(
                "step",
                {"surrogate": "straight_through", "sharpness": 1.0},
                "straight-through, k=1",
            ),
            Curve("step", {"surrogate": "none"}, "none (true derivative, 0)"),
        ),
    ),
)

# --- evaluation ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters worth printing in a title: defaults merged with ``params``, minus layout ones.

    >>> shown_params("leaky_relu", {"negative_slope": 0.2})
    {'negative_slope': 0.2}
    >>> shown_params("softmax")
    {'temperature': 1.0}
    """
    merged = {**jaxact.info(name).params, **(params or {})}
    return {k: v for k, v in merged.items() if k not in _STRUCTURAL_PARAMS and v is not None}


def _format_params(params: dict[str, Any]) -> str:
    if not params:
        return "no parameters"
    return ", ".join(f"{k}={v:.4g}" if _is_number(v) else f"{k}={v}" for k, v in params.items())


def scalar_function(name: str, params: dict[str, Any] | None = None) -> Callable[[Any], Any]:
    """The activation as a function of one scalar, the form ``jax.grad`` differentiates.

    Non-elementwise activations are reduced as :data:`TWO_ELEMENT_FORMS` says.

    >>> float(scalar_function("softmax")(0.0))
    0.5
    """
    entry = jaxact.info(name)
    fn = jaxact.get(entry.name, **(params or {}))
    if entry.elementwise:
        return fn
    if entry.name == "glu":
        return lambda t: fn(jnp.stack([t, t]))[0]
    if entry.name == "logsumexp":
        return lambda t: fn(jnp.stack([t, jnp.zeros_like(t)]))
    return lambda t: fn(jnp.stack([t, jnp.zeros_like(t)]))[0]


def evaluate(
    name: str, x: np.ndarray, params: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The activation and its ``jax.grad`` derivative at the float32 points ``x``.

    Returns:
        ``(values, derivatives)`` as float64 NumPy arrays (from float32 results).
    """
    both = _compiled(name, tuple(sorted((params or {}).items())))
    y, dy = both(jnp.asarray(x, dtype=jnp.float32))
    return np.asarray(y, dtype=np.float64), np.asarray(dy, dtype=np.float64)


@functools.lru_cache(maxsize=128)
def _compiled(name: str, params: tuple) -> Callable[[Any], Any]:
    """``x -> (f(x), f'(x))``, jitted once per activation and parameters."""
    f = scalar_function(name, dict(params))
    return jax.jit(jax.vmap(lambda t: (f(t), jax.grad(f)(t))))


def plot_grid(
    xmin: float, xmax: float, breakpoints: Sequence[float] = (), n: int = 801
) -> np.ndarray:
    """Points on ``[xmin, xmax]`` for drawing, with the kinks set apart by NaN gaps.

    Around each kink the segments end and start a millionth of the range away from it, and the kink
    itself stands alone between two NaNs (a line skips it; a marker can show the value there).
    So a jump in the function or its derivative shows as a gap, not as a vertical line, and
    a continuous curve shows no gap at all.

    >>> g = plot_grid(-1.0, 1.0, (0.0,), n=5)
    >>> int(np.isnan(g).sum()), float(g[-1]), 0.0 in g
    (2, 1.0, True)
    >>> g = plot_grid(-1.0, 1.0, (1.0,), n=5)  # a kink at the end: the line stops short of it
    >>> int(np.isnan(g).sum()), float(g[-2]), round(float(g[-4]), 6)
    (2, 1.0, 0.999998)
    """
    xs = np.linspace(xmin, xmax, n, dtype=np.float32)
    cuts = sorted({np.float32(b) for b in breakpoints if xmin <= b <= xmax})
    gap = [np.nan]
    pieces, low = [], np.float32(xmin)
    # Far enough from the kink that computing x - kink in float32 cannot land on it (and
    # that a subnormal x, which XLA flushes to zero, is never used), close enough to look exact.
    offset = np.float32((xmax - xmin) * 1e-6)
    for b in cuts:
        if b > xmin:  # the piece on the left, ending just short of the kink
            pieces += [xs[(xs >= low) & (xs < b - offset)], [b - offset]]
        pieces += [gap, [b], gap]
        low = b + offset
        if b < xmax:
            pieces.append([low])
    pieces.append(xs[(xs > low) & (xs <= xmax)] if cuts else xs)
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in pieces])


def _curve(name: str, x: np.ndarray, params: dict[str, Any] | None = None):
    """Values and derivatives on a NaN-gapped grid (NaN stays NaN)."""
    finite = ~np.isnan(x)
    y = np.full(x.shape, np.nan)
    dy = np.full(x.shape, np.nan)
    y[finite], dy[finite] = evaluate(name, x[finite], params)
    return y, dy


def _breakpoints(name: str, params: dict[str, Any] | None = None) -> tuple[float, ...]:
    try:
        return jaxact.info(name).breakpoints(**(params or {}))
    except (KeyError, TypeError, ValueError):
        return ()


# --- accuracy -----------------------------------------------------------------------------------


def accuracy_grid(limit: float = 1e4, n: int = 1200) -> np.ndarray:
    """Float32 points on ``[-limit, limit]``, spread evenly on a symlog scale.

    Linear on ``[-1, 1]`` (a quarter of the points, 0 among them), logarithmic beyond.

    >>> g = accuracy_grid(1e4, n=40)
    >>> g.dtype, float(g.min()), float(g.max())
    (dtype('float32'), -10000.0, 10000.0)
    """
    quarter = max(n // 4, 2) | 1  # odd, so 0 is on the grid
    side = max((n - quarter) // 2, 2)
    outer = np.logspace(0.0, math.log10(limit), side)
    x = np.concatenate([-outer[::-1], np.linspace(-1.0, 1.0, quarter), outer])
    return np.unique(x.astype(np.float32))


def jax_nn_function(name: str) -> Callable[[Any], Any]:
    """The ``jax.nn`` function that ``name`` is compared with (the registry's ``jax_nn`` name)."""
    entry = jaxact.info(name)
    if entry.jax_nn is None:
        raise ValueError(f"{entry.name} has no jax.nn counterpart")
    return getattr(jax.nn, entry.jax_nn)


def _worst(errors: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """The largest error (NaN counts as infinite) and where it is."""
    e = np.where(np.isnan(errors), np.inf, np.abs(np.asarray(errors, dtype=np.float64)))
    i = int(np.argmax(e))
    return {"max": float(e[i]), "at": float(x[i])}


def accuracy_data(names: Sequence[str] = ACCURACY_NAMES, x: np.ndarray | None = None) -> dict:
    """The numbers behind the accuracy page, from :func:`experiments.accuracy.errors`.

    Args:
        names: activations to compare (each needs a ``jax.nn`` counterpart).
        x: float32 points; defaults to :func:`accuracy_grid`. The kinks of the chosen
            functions (``accuracy.KINKS``: 0 for elu and selu) are left out.

    Returns:
        ``{"x": x, "functions": {name: {"jaxact": errs, "jax.nn": errs}}, "summary": ...}``
        where ``errs`` is what ``errors`` returns (relative errors in float32 eps for value and
        derivative) and ``summary[name][impl][kind]`` is ``{"max": eps, "at": x}``.
    """
    from experiments import accuracy  # the shared mpmath reference; imported late, it is slow

    canonicals = [jaxact.resolve(name) for name in names]
    x = accuracy_grid() if x is None else np.asarray(x, dtype=np.float32)
    kinks = [k for name in canonicals for k in accuracy.KINKS.get(name, ())]
    x = x[~np.isin(x, np.asarray(kinks, dtype=np.float32))]  # no derivative at a kink
    functions, summary = {}, {}
    for canonical in canonicals:
        impls = {"jaxact": jaxact.info(canonical).fn, "jax.nn": jax_nn_function(canonical)}
        functions[canonical] = {
            impl: {k: np.asarray(accuracy.errors(fn, canonical, x)[k]) for k in ERROR_KINDS}
            for impl, fn in impls.items()
        }
        summary[canonical] = {
            impl: {kind: _worst(errs[kind], x) for kind in ERROR_KINDS}
            for impl, errs in functions[canonical].items()
        }
    return {"x": x, "functions": functions, "summary": summary}


#: The keys of :func:`experiments.accuracy.errors`' result that the page draws.
ERROR_KINDS = ("value", "derivative")


# --- pages --------------------------------------------------------------------------------------

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
    title = f"{entry.name}  ({_format_params(shown_params(name, params))})"
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
    kinks = _breakpoints(name, params)
    x = plot_grid(xmin, xmax, kinks)
    y, dy = _curve(name, x, params)
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
    return _save(fig, path, dpi)


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
        x = plot_grid(xmin, xmax, _breakpoints(curve.name, curve.params))
        y, dy = _curve(curve.name, x, curve.params)
        colour, style = f"C{i}", styles[i % len(styles)]
        ax_f.plot(x, y, color=colour, ls=style, lw=2, label=curve.text)
        ax_d.plot(x, dy, color=colour, ls=style, lw=2, label=curve.text)
    _style_axes(ax_f, "x", "f(x)")
    _style_axes(ax_d, "x", "f'(x) (jax.grad)")
    ax_f.set_title("functions", fontsize=10)
    ax_d.set_title("derivatives", fontsize=10)
    handles, labels = ax_f.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9)
    return _save(fig, path, dpi)


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
        x = plot_grid(xmin, xmax, _breakpoints(name))
        y, dy = _curve(name, x)
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
    return _save(fig, path, dpi)


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

    p = np.asarray(jaxact.softmax(v))
    bars = ax_1.bar(idx, p, color="tab:blue")
    ax_1.bar_label(bars, labels=[f"{q:.3f}" for q in p], fontsize=8)
    ax_1.set_title("temperature 1", fontsize=10)
    ax_1.set_ylim(0, max(p) * 1.15)

    width = 0.8 / len(SOFTMAX_TEMPERATURES)
    for i, t in enumerate(SOFTMAX_TEMPERATURES):
        q = np.asarray(jaxact.softmax(v, temperature=t))
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
    return _save(fig, path, dpi)


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
                f"{name}: {kind}    max: jaxact {_format_eps(worst['jaxact'])}, "
                f"jax.nn {_format_eps(worst['jax.nn'])}",
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
    return _save(fig, path, dpi)


def _format_eps(e: float) -> str:
    if not math.isfinite(e):
        return "inf/NaN"
    return f"{e:.3g} eps" if e < 1e4 else f"{e:.2e} eps"


def _save(fig, path: Path, dpi: int) -> Path:
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# --- gallery ------------------------------------------------------------------------------------


def write_gallery(
    out: Path, pages: dict[str, list[tuple[str, Path]]], summary: dict | None
) -> Path:
    """Writes ``gallery.md`` in ``out``, embedding each page by its path relative to ``out``."""
    lines = [
        "# jaxact activation gallery",
        "",
        "Generated by `python -m experiments.plot_activations`. Derivatives are `jax.grad` of the",
        "jaxact functions, so they show the library's custom rules (kinks dotted, the value",
        "`jax.grad` returns at a kink as a dot). Non-elementwise functions are drawn on a",
        "two-element input: " + "; ".join(f"`{v}`" for v in TWO_ELEMENT_FORMS.values()) + ".",
        "",
    ]
    sections = {
        "families": "Families",
        "softmax": "Softmax and temperature",
        "accuracy": "Accuracy: jaxact beside jax.nn",
        "grid": "All activations",
        "activations": "Every activation and its derivative",
    }
    for key, heading in sections.items():
        if not pages.get(key):
            continue
        lines += [f"## {heading}", ""]
        if key == "accuracy" and summary:
            lines += _summary_table(summary)
        for caption, page in pages[key]:
            rel = os.path.relpath(page, out).replace(os.sep, "/")
            lines += [f"![{caption}]({rel})", ""]
    path = out / "gallery.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _summary_table(summary: dict) -> list[str]:
    lines = [
        "Largest relative error over the grid, in float32 eps (at which x). 8.39e+06 eps is",
        "2^23 eps, a relative error of 1: the result is 0 (underflow or cancellation) where",
        "the truth is not; more than that means the result is off by more than the truth.",
        "",
        "| function | value, jaxact | value, jax.nn | derivative, jaxact | derivative, jax.nn |",
        "|---|---|---|---|---|",
    ]
    for name, impls in summary.items():
        cells = []
        for kind in ERROR_KINDS:
            for impl in ("jaxact", "jax.nn"):
                w = impls[impl][kind]
                cells.append(f"{_format_eps(w['max'])} (x={w['at']:.4g})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


# --- command line -------------------------------------------------------------------------------


class UsageError(Exception):
    """Bad command-line input; the message says what and how to fix it."""


def parse_activations(text: str | None) -> list[str]:
    """Canonical names from ``"a,b"`` (aliases allowed), or every registry name for ``None``.

    Raises:
        UsageError: for an unknown name, with ``jaxact.resolve``'s closest matches.
    """
    if text is None:
        return list(jaxact.names())
    out = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        try:
            name = jaxact.resolve(word)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if name not in out:
            out.append(name)
    if not out:
        raise UsageError("--activations names no activation")
    return out


def parse_range(text: str | None, xmin: float | None, xmax: float | None) -> tuple[float, float]:
    """The x range from ``--range LO,HI`` or ``--xmin``/``--xmax`` (default ``-6, 6``).

    >>> parse_range("-3,3", None, None)
    (-3.0, 3.0)
    >>> parse_range(None, None, 2)
    (-6.0, 2.0)
    """
    low, high = -6.0, 6.0
    if text is not None:
        if xmin is not None or xmax is not None:
            raise UsageError("give either --range or --xmin/--xmax, not both")
        parts = text.split(",")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise UsageError(
                f"--range takes two numbers LO,HI such as -6,6; got {text!r}"
            ) from None
    if xmin is not None:
        low = float(xmin)
    if xmax is not None:
        high = float(xmax)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"the x range must be finite with min < max; got {low:g} to {high:g}")
    return low, high


def check_writable(out: Path) -> None:
    """Creates ``out`` if needed and checks that a file can be written in it.

    Raises:
        UsageError: naming the folder, if it cannot be created or written to.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {str(out)!r}: {err.strerror}") from None
    if not out.is_dir():
        raise UsageError(f"the output path {str(out)!r} exists and is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise UsageError(
            f"the output folder {str(out)!r} is not writable: {err.strerror}"
        ) from None


_VALUE_OPTIONS = ("--range", "--xmin", "--xmax")


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--range -6,6`` as ``--range=-6,6``: argparse would take ``-6,6`` for an option."""
    out, it = [], iter(argv)
    for arg in it:
        if arg in _VALUE_OPTIONS:
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.plot_activations",
        description="Plot every activation and its derivative, families, softmax and accuracy.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument(
        "--activations", help="comma-separated names or aliases (default: all registry names)"
    )
    parser.add_argument("--range", help="x range LO,HI for the curves (default -6,6)")
    parser.add_argument("--xmin", type=float, help="x minimum (instead of --range)")
    parser.add_argument("--xmax", type=float, help="x maximum (instead of --range)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    parser.add_argument("--format", choices=("png", "svg"), default="png", help="image format")
    parser.add_argument(
        "--accuracy-points",
        type=int,
        default=1200,
        help="points on the accuracy page's x grid over [-1e4, 1e4] (default 1200)",
    )
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy page")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit status (2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        names = parse_activations(args.activations)
        xmin, xmax = parse_range(args.range, args.xmin, args.xmax)
        if args.dpi <= 0:
            raise UsageError(f"--dpi must be positive; got {args.dpi}")
        if args.accuracy_points < 8:
            raise UsageError(f"--accuracy-points must be at least 8; got {args.accuracy_points}")
        check_writable(args.out)
    except UsageError as err:
        parser.error(str(err))  # exits with status 2

    out, ext, dpi = args.out, args.format, args.dpi
    window = {"xmin": xmin, "xmax": xmax, "dpi": dpi}
    pages: dict[str, list[tuple[str, Path]]] = {}

    for family in FAMILIES:
        members = tuple(c for c in family.curves if c.name in names)
        if members:
            chosen = dataclasses.replace(family, curves=members)
            path = plot_family_page(chosen, out / f"family_{family.key}.{ext}", **window)
            pages.setdefault("families", []).append((family.title, path))
    if "softmax" in names:
        path = plot_softmax_page(out / f"softmax.{ext}", dpi=dpi)
        pages["softmax"] = [("softmax at several temperatures", path)]
    summary = None
    accuracy_names = [n for n in ACCURACY_NAMES if n in names]
    if accuracy_names and not args.no_accuracy:
        data = accuracy_data(accuracy_names, accuracy_grid(n=args.accuracy_points))
        path = plot_accuracy_page(data, out / f"accuracy.{ext}", dpi=dpi)
        summary = data["summary"]
        (out / "accuracy.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        pages["accuracy"] = [("relative error, jaxact and jax.nn", path)]
    path = plot_grid_page(names, out / f"grid.{ext}", **window)
    pages["grid"] = [("all activations", path)]
    for name in names:
        path = plot_activation_page(name, out / f"activation_{name}.{ext}", **window)
        pages.setdefault("activations", []).append((name, path))

    gallery = write_gallery(out, pages, summary)
    count = sum(len(v) for v in pages.values())
    print(f"wrote {count} images and {gallery}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
