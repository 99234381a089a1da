"""Recording: underflow-safe norms, tidy tables, atomic writes and resumable runs.

Each finished configuration is written to ``OUT/runs/<label>-<hash>/`` (its
tables, then ``done.json`` last, each file atomically), so a re-run skips it and
an interrupted sweep loses at most the configuration in flight. The top-level
tables are the concatenation of the sweep's runs, rewritten at the end.

>>> import jax.numpy as jnp
>>> float(safe_norm(jnp.full((4,), 1e-25, jnp.float32)))  # a plain sum of squares gives 0
2e-25
"""

import csv
import io
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

GRADIENT_FIELDS = (
    "config", "activation", "init", "norm", "residual", "init_scale", "clip", "depth", "width",
    "seed", "step", "layer", "kind", "weight_grad_norm", "preact_grad_norm", "act_mean",
    "act_std", "saturated_fraction",
)  # fmt: skip
METRIC_FIELDS = (
    "config", "activation", "init", "norm", "residual", "init_scale", "clip", "seed", "step",
    "train_loss", "train_accuracy", "test_loss", "test_accuracy", "probe_loss", "diverged",
    "diverged_step",
)  # fmt: skip
MEANFIELD_FIELDS = ("config", "activation", "init", "layer", "q", "chi", "predicted_log_ratio")


def safe_norm(x: jax.Array) -> jax.Array:
    """Frobenius norm in float32 that neither underflows nor overflows.

    The entries are divided by the largest magnitude before squaring, so norms of
    1e-25 (real at depth 32 with sigmoid) or 1e25 come out right where a plain
    sum of squares returns 0 or inf.
    """
    x = jnp.asarray(x).astype(jnp.float32)
    largest = jnp.max(jnp.abs(x))
    divisor = jnp.where(largest > 0, largest, jnp.float32(1.0))
    return largest * jnp.sqrt(jnp.sum(jnp.square(x / divisor)))


# --- atomic files ----------------------------------------------------------------


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" (not mkstemp, which makes 0600): the file gets the
    # mode the umask gives any other file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _cell(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return format(float(value), ".9g")
    if isinstance(value, bool | np.bool_):
        return int(value)
    return value


def write_csv(
    path: str | os.PathLike, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    """Writes a tidy table atomically (floats to 9 significant digits, NaN as ``nan``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# --- one configuration's tables ------------------------------------------------------


def tidy_rows(
    identity: Mapping[str, Any],
    seeds: Sequence[int],
    steps: Sequence[int],
    outputs: Mapping[str, np.ndarray],
) -> tuple[list[dict], list[dict]]:
    """Gradient and metric rows from one configuration's training outputs.

    Args:
        identity: the columns naming the configuration (config label, activation, ...).
        seeds: the seeds, in the order of the outputs' first axis.
        steps: the recorded steps, in the order of the outputs' second axis.
        outputs: arrays from :func:`experiments.train.train_seeds` as numpy.

    Returns:
        (gradient rows, one per seed, step and layer; metric rows, one per seed and step).
    """
    gradient_rows, metric_rows = [], []
    depth = outputs["act_mean"].shape[-1]
    for s, seed in enumerate(seeds):
        flags = outputs["diverged"][s]
        diverged_step = int(outputs["diverged_step"][s][flags].min()) if flags.any() else ""
        for r, step in enumerate(steps):
            base = {**identity, "seed": int(seed), "step": int(step)}
            for layer in range(depth + 1):
                hidden = layer < depth
                gradient_rows.append(
                    {
                        **base,
                        "layer": layer,
                        "kind": "hidden" if hidden else "readout",
                        "weight_grad_norm": float(outputs["weight_grad_norm"][s, r, layer]),
                        "preact_grad_norm": float(outputs["preact_grad_norm"][s, r, layer]),
                        "act_mean": float(outputs["act_mean"][s, r, layer]) if hidden else "",
                        "act_std": float(outputs["act_std"][s, r, layer]) if hidden else "",
                        "saturated_fraction": (
                            float(outputs["saturated"][s, r, layer]) if hidden else ""
                        ),
                    }
                )
            metric_rows.append(
                {
                    **base,
                    "train_loss": float(outputs["train_loss"][s, r]),
                    "train_accuracy": float(outputs["train_accuracy"][s, r]),
                    "test_loss": float(outputs["test_loss"][s, r]),
                    "test_accuracy": float(outputs["test_accuracy"][s, r]),
                    "probe_loss": float(outputs["probe_loss"][s, r]),
                    "diverged": bool(flags[r]),
                    "diverged_step": diverged_step,
                }
            )
    return gradient_rows, metric_rows


# --- resumable runs -----------------------------------------------------------------


def run_dir(out: str | os.PathLike, label: str, key: str) -> Path:
    """The directory of one configuration's results."""
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)
    return Path(out) / "runs" / f"{safe}-{key}"


def is_done(directory: Path, key: str) -> bool:
    """Whether ``directory`` holds a finished run of the configuration with this key."""
    marker = directory / "done.json"
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text()).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def save_run(
    directory: Path,
    key: str,
    config: Mapping[str, Any],
    gradient_rows: list[dict],
    metric_rows: list[dict],
    meanfield_rows: list[dict],
    seconds: float,
) -> None:
    """Writes one configuration's tables, then its ``done.json`` marker (last, so a crash
    before it leaves the run to be recomputed)."""
    write_csv(directory / "gradient_norms.csv", GRADIENT_FIELDS, gradient_rows)
    write_csv(directory / "metrics.csv", METRIC_FIELDS, metric_rows)
    write_csv(directory / "meanfield.csv", MEANFIELD_FIELDS, meanfield_rows)
    write_json(directory / "done.json", {"key": key, "config": config, "seconds": seconds})


def collect(out: str | os.PathLike, directories: Sequence[Path]) -> None:
    """Concatenates the runs' tables into ``OUT/gradient_norms.csv``, ``metrics.csv`` and
    ``meanfield.csv``."""
    for name, fields in (
        ("gradient_norms.csv", GRADIENT_FIELDS),
        ("metrics.csv", METRIC_FIELDS),
        ("meanfield.csv", MEANFIELD_FIELDS),
    ):
        rows = []
        for directory in directories:
            rows.extend(read_csv(directory / name))
        write_csv(Path(out) / name, fields, rows)
