"""Output files: atomic writes of text, bytes and matplotlib figures, and the output folder.

Each write goes to a temporary file beside the target, then is renamed into place, so a
reader (or a re-run after an interruption) sees the old file or the new one, never half of one.
:func:`output_lock` keeps two runs from writing into one output folder at once.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "sub" / "a.txt", "one\\n")
>>> (folder / "sub" / "a.txt").read_text(), sorted(p.name for p in (folder / "sub").iterdir())
('one\\n', ['a.txt'])
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
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


LOCK_NAME = ".lock"


class OutputLocked(RuntimeError):
    """Another run holds the lock of the output folder (see :func:`output_lock`)."""


def _lock_holder(text: str) -> tuple[int, str] | None:
    """(pid, host) from a lock file's text, or None where it cannot be read."""
    pid, _, rest = text.strip().partition(" ")
    host = rest.partition(" ")[0]
    try:
        return int(pid), host
    except ValueError:
        return None


def _is_stale(text: str) -> bool:
    """Whether the run that wrote ``text`` is known to be gone (this host, no such process)."""
    holder = _lock_holder(text)
    if holder is None or holder[1] not in ("", socket.gethostname()):
        return False  # unreadable, or another machine's: only a person can tell
    try:
        os.kill(holder[0], 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: a process of another user has the pid
        pass
    return False


@contextlib.contextmanager
def output_lock(out: str | os.PathLike) -> Iterator[Path]:
    """Holds the output folder ``out`` for one run: ``OUT/.lock`` exists while it writes.

    The lock file holds ``PID HOST TOKEN`` and is created whole and exclusively (a hard link
    to a finished temporary file), so two runs started at once cannot both take it. A lock
    left by a run that is gone (its pid no longer exists on this host) is taken over; one
    from another host, or of a live process, is respected. On leaving, the file is removed
    if it is still this run's.

    Take it before any work, so that a second run into the same folder refuses at once::

        try:
            with output_lock(out):
                ...  # compute and write the results
        except OutputLocked as error:
            print(f"error: {error}", file=sys.stderr)  # one line
            return 1

    Args:
        out: the output folder; created if needed.

    Yields:
        The lock file's path.

    Raises:
        OutputLocked: where another run holds the lock; its message is one line naming the
            folder, the holder and the lock file, and saying how to proceed if it is stale.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with output_lock(folder) as lock:
    ...     try:
    ...         with output_lock(folder):
    ...             pass
    ...     except OutputLocked as error:
    ...         print(lock.name, "|", str(error).split(" (")[0])
    .lock | another run
    >>> lock.exists()
    False
    >>> folder.rmdir()
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    mine = f"{os.getpid()} {socket.gethostname()} {uuid.uuid4().hex}\n"
    tmp = out / f".lock.{uuid.uuid4().hex}.tmp"
    tmp.write_text(mine)
    try:
        for _ in range(3):
            try:
                os.link(tmp, path)  # atomic, fails where the lock exists
                break
            except FileExistsError:
                pass
            try:
                theirs = path.read_text()
            except FileNotFoundError:
                continue  # released meanwhile
            if not _is_stale(theirs):
                pid, host = _lock_holder(theirs) or ("?", "?")
                raise OutputLocked(
                    f"another run (pid {pid} on {host}) is writing to {out} (lock file "
                    f"{path}): wait for it to finish, or, if no such run is going, delete "
                    f"{path} and run again"
                )
            # Stale: move it aside, and put it back if another run took it over meanwhile.
            aside = out / f".lock.{uuid.uuid4().hex}.stale"
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            if aside.read_text() != theirs:
                with contextlib.suppress(FileExistsError):
                    os.link(aside, path)
            aside.unlink()
        else:
            raise OutputLocked(f"cannot take the lock file {path} of {out}: try again")
    finally:
        tmp.unlink(missing_ok=True)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == mine:
                path.unlink()
