"""The one definition of what the gradient-flow experiment records and of its tables.

The training program (:mod:`experiments.train`) returns arrays named as the
columns below; each :class:`Table` says on which steps (the training steps with
gradient records, or the evaluations) and over which layers its values lie, and
:func:`columns` turns one configuration's arrays into the table's columns
without renaming anything. :mod:`experiments.recording` writes and reads them;
the plots and the summary read the columns named here.

>>> GRADIENTS.columns[-2:]
('weight_grad_norm', 'preact_grad_norm')
>>> [t.file for t in TABLES]
['gradient_norms.csv', 'batch_loss.csv', 'activations.csv', 'metrics.csv']
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# The columns that name a configuration, first in every table.
IDENTITY = (
    "config", "activation", "init", "norm", "residual", "init_scale", "sigma_b", "clip", "lr",
    "depth", "width",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Table:
    """One tidy table of the training program's outputs.

    Attributes:
        file: its file name.
        steps: ``"log"`` (the training steps whose gradients are recorded, the gradient norms
            come from that step's own backward pass) or ``"eval"`` (the evaluations; the step
            is the number of updates made before).
        layers: ``None`` (one row per seed and step), ``"hidden"`` (one per hidden layer) or
            ``"all"`` (the hidden layers, then the read-out, with a ``kind`` column).
        values: the program outputs, which are also the column names.
    """

    file: str
    steps: str
    layers: str | None
    values: tuple[str, ...]

    @property
    def index(self) -> tuple[str, ...]:
        """The columns that locate a row within a configuration."""
        layer = {None: (), "hidden": ("layer",), "all": ("layer", "kind")}[self.layers]
        return ("seed", "step", *layer)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*IDENTITY, *self.index, *self.values)


GRADIENTS = Table("gradient_norms.csv", "log", "all", ("weight_grad_norm", "preact_grad_norm"))
BATCH_LOSS = Table("batch_loss.csv", "log", None, ("batch_loss",))
ACTIVATIONS = Table(
    "activations.csv", "eval", "hidden", ("act_mean", "act_std", "saturated_fraction")
)
METRICS = Table(
    "metrics.csv",
    "eval",
    None,
    (
        "train_loss", "train_accuracy", "test_loss", "test_accuracy", "probe_loss", "diverged",
        "diverged_step",
    ),
)  # fmt: skip
TABLES = (GRADIENTS, BATCH_LOSS, ACTIVATIONS, METRICS)
# Not from the program: the mean-field prediction per hidden layer (see gradient_flow).
MEANFIELD_COLUMNS = ("config", "activation", "init", "layer", "q", "chi", "predicted_log_ratio")


def columns(
    table: Table,
    identity: Mapping[str, Any],
    seeds: Sequence[int],
    steps: Sequence[int],
    outputs: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """One configuration's rows of ``table`` as columns (seed-major, then step, then layer).

    Args:
        table: which table.
        identity: the :data:`IDENTITY` columns' values for this configuration.
        seeds: the seeds, in the order of the outputs' first axis.
        steps: the table's steps (``Schedule.log_steps()`` or ``eval_steps()``), in the order
            of the outputs' second axis.
        outputs: the program's arrays as numpy, ``(seeds, steps[, layers])``.

    Returns:
        Column name -> array; the identity columns are scalars, to be repeated.
    """
    n_seeds, n_steps = len(seeds), len(steps)
    values = {name: np.asarray(outputs[name]) for name in table.values}
    n_layers = values[table.values[0]].shape[2] if table.layers else 1
    shape = (n_seeds, n_steps, n_layers)
    out: dict[str, np.ndarray] = {k: np.asarray(identity[k]) for k in IDENTITY}
    out["seed"] = np.broadcast_to(np.asarray(seeds)[:, None, None], shape).ravel()
    out["step"] = np.broadcast_to(np.asarray(steps)[None, :, None], shape).ravel()
    if table.layers:
        layer = np.broadcast_to(np.arange(n_layers)[None, None, :], shape).ravel()
        out["layer"] = layer
        if table.layers == "all":
            out["kind"] = np.where(layer < n_layers - 1, "hidden", "readout")
    for name, array in values.items():
        out[name] = np.broadcast_to(array.reshape(n_seeds, n_steps, -1), shape).ravel()
    if "diverged_step" in out:
        # One value per seed: the first training step with a non-finite loss ("" if none).
        diverged = values["diverged"].reshape(n_seeds, n_steps)
        first = np.where(diverged, values["diverged_step"].reshape(n_seeds, n_steps), 2**31 - 1)
        first = first.min(axis=1)
        per_seed = np.where(first < 2**31 - 1, first.astype(str), "")
        out["diverged_step"] = np.repeat(per_seed, n_steps * n_layers)
    return out
