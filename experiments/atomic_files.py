"""Output files: atomic writes of text, bytes and matplotlib figures, and the output folder.

Each write goes to a temporary file beside the target, then is renamed into place, so a
reader (or a re-run after an interruption) sees the old file or the new one, never half of one.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "sub" / "a.txt", "one\\n")
>>> (folder / "sub" / "a.txt").read_text(), sorted(p.name for p in (folder / "sub").iterdir())
('one\\n', ['a.txt'])
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any


def prepare_output_folder(out: str | os.PathLike) -> Path:
    """Creates the folder ``out`` if needed and checks that a file can be written in it.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        ValueError: naming the folder, where it cannot be created, is a file, or is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output path {str(out)!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the output folder {str(out)!r}: {err.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ValueError(
            f"the output folder {str(out)!r} is not writable: {err.strerror}"
        ) from None
    return out


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it into place.

    The folder is created if needed. On any error the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" (not mkstemp, which makes 0600): the file gets the
    # mode the umask gives any other file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` as UTF-8, atomically (see :func:`atomic_write_bytes`), newlines as given."""
    atomic_write_bytes(path, text.encode("utf-8"))


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: float, **savefig_kwargs: Any) -> Path:
    """Saves a matplotlib figure atomically, in the format the suffix names, and closes it.

    Args:
        fig: the ``matplotlib.figure.Figure``.
        path: the target; its suffix (``.png``, ``.svg``, ...) picks the format.
        dpi: the resolution.
        **savefig_kwargs: passed on to ``Figure.savefig`` (e.g. ``bbox_inches="tight"``).

    Returns:
        ``path`` as a ``Path``.
    """
    import matplotlib.pyplot as plt  # only the callers that draw pay for pyplot

    path = Path(path)
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".").lower() or None  # None: matplotlib's default format
    try:
        fig.savefig(buffer, format=fmt, dpi=dpi, **savefig_kwargs)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
