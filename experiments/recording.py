"""Recording: tidy tables, atomic writes and resumable runs.

Each finished configuration is written to ``OUT/runs/<label>-<hash>/`` (its
tables, then ``done.json`` last, each file atomically), so a re-run skips it and
an interrupted sweep loses at most the configuration in flight. The top-level
tables are the concatenation of the sweep's runs, rewritten at the end.
"""

import csv
import io
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import records
from experiments.atomic_files import atomic_write_text


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
    writer = csv.DictWriter(
        buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
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


def _texts(values: Any) -> list[str] | str:
    """A column as CSV cells (a scalar as one cell)."""
    array = np.asarray(values)
    if array.ndim == 0:
        return str(_cell(array.item()))
    if array.dtype.kind == "f":
        return [format(v, ".9g") for v in array.tolist()]
    if array.dtype.kind == "b":
        return [str(int(v)) for v in array.tolist()]
    return [str(v) for v in array.tolist()]


def write_columns(
    path: str | os.PathLike, fields: Sequence[str], columns: Mapping[str, Any]
) -> None:
    """Writes a tidy table given as columns (scalars repeat on every row), atomically.

    Floats are written to 9 significant digits (NaN as ``nan``), booleans as 0/1; the same
    cells as :func:`write_csv`, much faster for long tables.
    """
    cells = [_texts(columns[f]) for f in fields]
    lengths = {len(c) for c in cells if isinstance(c, list)}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths {sorted(lengths)} for {path}")
    n = lengths.pop() if lengths else 1
    # Scalar columns become one repeated cell; a run of them at the front, one prefix.
    rows = zip(*[c if isinstance(c, list) else itertools.repeat(c, n) for c in cells], strict=False)
    body = "\n".join(map(",".join, rows))
    atomic_write_text(path, ",".join(fields) + "\n" + (body + "\n" if body else ""))


def write_tables(
    directory: Path,
    identity: Mapping[str, Any],
    seeds: Sequence[int],
    schedule: Any,
    outputs: Mapping[str, np.ndarray],
) -> None:
    """Writes every table of :data:`experiments.records.TABLES` for one configuration.

    Args:
        directory: the run's folder.
        identity: the identity columns' values.
        seeds: the seeds, in the order of the outputs' first axis.
        schedule: the configuration's :class:`experiments.train.Schedule` (its steps).
        outputs: the training program's arrays as numpy.
    """
    steps = {"log": schedule.log_steps(), "eval": schedule.eval_steps()}
    for table in records.TABLES:
        cols = records.columns(table, identity, seeds, steps[table.steps], outputs)
        write_columns(directory / table.file, table.columns, cols)


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
    write: Callable[[Path], None],
    meanfield_rows: list[dict],
    seconds: float,
) -> None:
    """Writes one configuration's tables (``write(directory)``, then the mean-field rows),
    then its ``done.json`` marker (last, so a crash before it leaves the run to be
    recomputed)."""
    write(directory)
    write_csv(directory / "meanfield.csv", records.MEANFIELD_COLUMNS, meanfield_rows)
    write_json(directory / "done.json", {"key": key, "config": config, "seconds": seconds})


def collect(out: str | os.PathLike, directories: Sequence[Path]) -> None:
    """Concatenates the runs' tables (:data:`experiments.records.TABLES` and
    ``meanfield.csv``) into ``OUT``."""
    tables = [(t.file, t.columns) for t in records.TABLES]
    for name, fields in [*tables, ("meanfield.csv", records.MEANFIELD_COLUMNS)]:
        parts = [",".join(fields) + "\n"]
        for directory in directories:
            header, _, body = (directory / name).read_text().partition("\n")
            if header.rstrip("\r").split(",") != list(fields):
                raise ValueError(f"{directory / name} has other columns than {name}: re-run it")
            parts.append(body)
        atomic_write_text(Path(out) / name, "".join(parts))


def read_columns(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A CSV table as columns of strings (convert with ``.astype(float)`` and the like)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    if not rows:
        return {name: np.empty(0, dtype=str) for name in header}
    table = np.asarray(rows, dtype=str)
    return {name: table[:, i] for i, name in enumerate(header)}
