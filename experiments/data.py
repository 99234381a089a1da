"""Datasets for the gradient-flow experiments, all in memory and nothing downloaded.

``digits`` is scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10
classes), standardised per pixel with the training split's statistics.
``spirals`` is two interleaved spirals in the plane (2 classes); ``teacher``
labels Gaussian inputs with the arg-max of a fixed random tanh network (4
classes), so a student of enough capacity can fit it exactly.

``load(name, input_norm="unit", q0=...)`` then rescales every example (train and test) to
the same squared length, ``mean(x**2) = q0`` over its features: the mean-field theory's
``q^0`` is then the same for every input, instead of one average over inputs whose own
``q`` ranges over two decades (0.33 to 32 on standardised digits).

>>> data = load("spirals")
>>> data.x_train.shape[1], data.num_classes
(2, 2)
>>> unit = load("spirals", input_norm="unit", q0=2.0)
>>> bool(np.allclose(np.mean(unit.x_test**2, axis=1), 2.0))
True
"""

import dataclasses
import difflib
import math

import numpy as np

NAMES = ("digits", "spirals", "teacher")
INPUT_NORMS = ("none", "unit")
# The datasets are fixed (their own seed), so that the training seed varies only
# the initialisation and the batch order.
_DATA_SEED = 1234
_TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split as float32 inputs and int32 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_norm: str = "none"

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


def _split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> Dataset:
    rng = np.random.default_rng(_DATA_SEED)
    order = rng.permutation(len(x))
    n_test = round(_TEST_FRACTION * len(x))
    test, train = order[:n_test], order[n_test:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    # Constant pixels (digits' border) carry no information; leave them at zero, not NaN.
    std = np.where(std > 0, std, 1.0)
    x = (x - mean) / std
    return Dataset(
        name,
        x[train].astype(np.float32),
        y[train].astype(np.int32),
        x[test].astype(np.float32),
        y[test].astype(np.int32),
        num_classes,
    )


def digits() -> Dataset:
    """scikit-learn's bundled digits: 64 pixel features, 10 classes."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _split("digits", bunch.data.astype(np.float64), bunch.target, 10)


def spirals(n_per_class: int = 1000, noise: float = 0.2) -> Dataset:
    """Two interleaved spirals, each making 1.5 turns, with Gaussian noise."""
    rng = np.random.default_rng(_DATA_SEED)
    t = np.sqrt(rng.uniform(0.0, 1.0, n_per_class)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.normal(size=(2 * n_per_class, 2)) / 3
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)])
    return _split("spirals", x, y, 2)


def teacher(n: int = 2000, input_dim: int = 16, hidden: int = 32, num_classes: int = 4) -> Dataset:
    """Gaussian inputs labelled by the arg-max of a random two-layer tanh network."""
    rng = np.random.default_rng(_DATA_SEED)
    x = rng.normal(size=(n, input_dim))
    w1 = rng.normal(size=(input_dim, hidden)) / np.sqrt(input_dim)
    w2 = rng.normal(size=(hidden, num_classes)) / np.sqrt(hidden)
    y = np.argmax(np.tanh(2.0 * x @ w1) @ w2, axis=1)
    return _split("teacher", x, y, num_classes)


def _closest(name: object, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(name), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unit_length(x: np.ndarray, q0: float = 1.0) -> np.ndarray:
    r"""Every row of ``x`` rescaled to the mean square ``q0`` over its features.

    .. math:: x_i \mapsto x_i \sqrt{q_0 / \bar{q}_i}, \qquad
        \bar{q}_i = \frac{1}{d} \sum_{j=1}^{d} x_{ij}^2

    A row of zeros (nothing to rescale) stays zero.

    Args:
        x: inputs, one example per row.
        q0: the mean square each row gets, positive and finite.

    Returns:
        The rescaled rows, in ``x``'s dtype.

    Raises:
        ValueError: for ``q0`` not positive and finite.

    >>> unit_length(np.array([[3.0, 4.0], [0.0, 0.0]]), q0=2.0)
    array([[1.2, 1.6],
           [0. , 0. ]])
    """
    try:
        valid = not isinstance(q0, bool) and math.isfinite(float(q0)) and float(q0) > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"q0 (the inputs' squared length) must be positive and finite, got {q0!r}")
    q0 = float(q0)
    wide = np.asarray(x, dtype=np.float64)
    q = np.mean(wide**2, axis=1, keepdims=True)
    scale = np.sqrt(q0 / np.where(q > 0, q, 1.0))
    return (wide * scale).astype(np.asarray(x).dtype)


def load(name: str, *, input_norm: str = "none", q0: float = 1.0) -> Dataset:
    """The dataset called ``name`` (one of :data:`NAMES`).

    Args:
        name: the dataset.
        input_norm: ``"none"`` (each feature standardised over the training split) or
            ``"unit"`` (then every example rescaled by :func:`unit_length` to ``mean(x**2) = q0``).
        q0: the squared length per feature of every example under ``"unit"``; ignored under
            ``"none"``.

    Raises:
        ValueError: for an unknown name or input norm (naming the closest), or a ``q0`` that
            is not positive and finite.
    """
    loaders = {"digits": digits, "spirals": spirals, "teacher": teacher}
    if name not in loaders:
        raise ValueError(
            f"unknown dataset {name!r}{_closest(name, NAMES)}; choose one of {', '.join(NAMES)}"
        )
    if input_norm not in INPUT_NORMS:
        raise ValueError(
            f"unknown input norm {input_norm!r}{_closest(input_norm, INPUT_NORMS)}; "
            f"choose one of {', '.join(INPUT_NORMS)}"
        )
    data = loaders[name]()
    if input_norm == "none":
        return data
    return dataclasses.replace(
        data,
        x_train=unit_length(data.x_train, q0),
        x_test=unit_length(data.x_test, q0),
        input_norm=input_norm,
    )
