"""Datasets for the gradient-flow experiments, all in memory and nothing downloaded.

``digits`` is scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10
classes), standardised per pixel with the training split's statistics.
``spirals`` is two interleaved spirals in the plane (2 classes); ``teacher``
labels Gaussian inputs with the arg-max of a fixed random tanh network (4
classes), so a student of enough capacity can fit it exactly.

>>> data = load("spirals")
>>> data.x_train.shape[1], data.num_classes
(2, 2)
"""

import dataclasses

import numpy as np

NAMES = ("digits", "spirals", "teacher")
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


def load(name: str) -> Dataset:
    """The dataset called ``name`` (one of :data:`NAMES`).

    Raises:
        ValueError: for an unknown name.
    """
    loaders = {"digits": digits, "spirals": spirals, "teacher": teacher}
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return loaders[name]()
