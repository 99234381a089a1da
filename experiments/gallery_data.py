"""What the activation gallery draws, and the numbers it draws.

The textbook families, the two-element forms that turn the non-elementwise functions into
curves of one variable, the x grid with its kinks set apart, and each activation's value and
``jax.grad`` derivative on it. The figures are in :mod:`experiments.gallery_plots`, the command
in :mod:`experiments.plot_activations`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxact

# --- what is drawn ------------------------------------------------------------------------------

#: The parameters that describe an input's layout, not the curve's shape; left out of titles.
_STRUCTURAL_PARAMS = ("axis", "where", "key", "keepdims", "return_sign")

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

#: The tails page: each function with the x range of the tail that is drawn (sigmoid's derivative
#: is lost on the right, 1 - sigmoid(x) cancelling, the others' on the left). Each range stops
#: before the true derivative leaves float32's normal range (XLA flushes subnormals to 0).
TAIL_RANGES = {"sigmoid": (0.0, 80.0), "gelu": (-10.0, 0.0), "elu": (-80.0, 0.0)}

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
            f"{k}={v:g}" if is_number(v) else f"{k}={v}" for k, v in self.params.items()
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


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool): a parameter shown with ``:g``."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown_params(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters worth printing in a title: defaults merged with ``params``, minus layout ones.

    >>> shown_params("leaky_relu", {"negative_slope": 0.2})
    {'negative_slope': 0.2}
    >>> shown_params("softmax")
    {'temperature': 1.0}
    >>> shown_params("squareplus"), shown_params("logsumexp")  # logsumexp's b is None: not shown
    ({'b': 4}, {})
    """
    merged = {**jaxact.info(name).params, **(params or {})}
    return {k: v for k, v in merged.items() if k not in _STRUCTURAL_PARAMS and v is not None}


def format_params(params: dict[str, Any]) -> str:
    """Parameters as ``"k=v, ..."`` (numbers to 4 significant digits).

    >>> format_params({"alpha": 1.6732632, "approximate": True}), format_params({})
    ('alpha=1.673, approximate=True', 'no parameters')
    """
    if not params:
        return "no parameters"
    return ", ".join(f"{k}={v:.4g}" if is_number(v) else f"{k}={v}" for k, v in params.items())


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


def plot_grid(xmin: float, xmax: float, kinks: Sequence[float] = (), n: int = 801) -> np.ndarray:
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
    cuts = sorted({np.float32(b) for b in kinks if xmin <= b <= xmax})
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


def evaluate_on_grid(
    name: str, x: np.ndarray, params: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`evaluate` on a grid from :func:`plot_grid`: the NaN gaps stay NaN."""
    finite = ~np.isnan(x)
    y = np.full(x.shape, np.nan)
    dy = np.full(x.shape, np.nan)
    y[finite], dy[finite] = evaluate(name, x[finite], params)
    return y, dy


def kinks_of(name: str, params: dict[str, Any] | None = None) -> tuple[float, ...]:
    """The registry's kinks of ``name`` with ``params``; none where they cannot be computed.

    >>> kinks_of("relu6"), kinks_of("sigmoid")
    ((0.0, 6.0), ())
    """
    try:
        return jaxact.info(name).breakpoints(**(params or {}))
    except (KeyError, TypeError, ValueError):
        return ()


# --- the tails page -----------------------------------------------------------------------------


def tail_data(
    ranges: dict[str, tuple[float, float]] | None = None, n: int = 321
) -> dict[str, dict[str, np.ndarray]]:
    r"""The derivative far into the tail: the mpmath truth, jaxact's and ``jax.nn``'s.

    Both derivatives are ``jax.vmap(jax.grad(f))`` in float32, jitted, as
    :func:`experiments.accuracy.errors` evaluates them; the truth is
    :func:`experiments.accuracy.reference`'s slope, rounded to float64.

    Args:
        ranges: ``{name: (xmin, xmax)}`` (default :data:`TAIL_RANGES`); each name needs a
            ``jax.nn`` counterpart and an mpmath reference.
        n: points per range, evenly spaced (the registry's kinks left out).

    Returns:
        ``{name: {"x", "truth", "jaxact", "jax.nn", "error_jaxact", "error_jax.nn"}}``: the float32
        points, :math:`f'(x)` from mpmath (float64) and from each implementation (float64 of
        the float32 results), and each implementation's error in float32 eps (relative; a
        result of 0 where the truth is not is :math:`2^{23}` eps).

    >>> d = tail_data({"tanh": (-20.0, -10.0)}, n=3)["tanh"]
    >>> d["x"].tolist(), float(d["jax.nn"][0]), bool(d["error_jaxact"].max() < 4)
    ([-20.0, -15.0, -10.0], 0.0, True)
    """
    from experiments.accuracy import errors, jax_nn_function  # mpmath only where it is used

    out = {}
    for name, (xmin, xmax) in (TAIL_RANGES if ranges is None else ranges).items():
        x = np.linspace(xmin, xmax, n, dtype=np.float32)
        x = x[~np.isin(x, np.asarray(kinks_of(name), dtype=np.float32))]
        counterpart = jax_nn_function(name)
        if counterpart is None:
            raise ValueError(f"{name} has no jax.nn counterpart to compare with")
        ours = errors(jaxact.info(name).fn, name, x)
        theirs = errors(counterpart, name, x)
        truth = reference_slope(name, x)
        out[name] = {
            "x": x,
            "truth": truth,
            "jaxact": np.asarray(ours["dy"], dtype=np.float64),
            "jax.nn": np.asarray(theirs["dy"], dtype=np.float64),
            "error_jaxact": ours["derivative"],
            "error_jax.nn": theirs["derivative"],
        }
    return out


def reference_slope(name: str, x: np.ndarray) -> np.ndarray:
    """The true derivative of ``name`` at ``x`` (mpmath, rounded to float64)."""
    from experiments.accuracy import reference

    _, _, slope_hi, slope_lo, *_ = reference(name, x)
    return slope_hi + slope_lo
