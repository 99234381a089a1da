"""Fixtures shared by the test modules.

Strict dtype promotion is set for tests and doctests alike by the repository's root
``conftest.py``; these fixtures add what several test modules need:

- ``activation``: a registry function by name, with parameters bound.
- ``digits``: a small classification set (scikit-learn's bundled copy of the digits).
- ``repo_root``: the repository's folder, for the README and the command-line tests.
- ``png_size``: the pixel size of a PNG file, read from its header.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import jaxact


def _registry_function(name: str, **params: Any) -> Callable[..., jax.Array]:
    """The registry function ``name`` with ``params`` bound; logsumexp reduces the last axis.

    With no parameters to bind, the function itself (so ``f is jaxact.info(name).fn``).
    """
    if jaxact.info(name).name == "logsumexp":
        params = {"axis": -1, **params}  # a row, as for the other row-wise functions
    fn = jaxact.info(name).fn
    return functools.partial(fn, **params) if params else fn


@pytest.fixture(scope="session")
def activation() -> Callable[..., Callable[..., jax.Array]]:
    """``activation(name, **params)``: the registry function, logsumexp over the last axis."""
    return _registry_function


@pytest.fixture(scope="session")
def digits() -> tuple[jax.Array, jax.Array]:
    """The first 256 digits as float32 pixels in [0, 1] (shape ``(256, 64)``) and int labels."""
    datasets = pytest.importorskip("sklearn.datasets")
    data = datasets.load_digits()
    x = jnp.asarray(data.data[:256] / 16.0, jnp.float32)
    return x, jnp.asarray(data.target[:256])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (where README.md and pyproject.toml are)."""
    return Path(__file__).resolve().parents[1]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="session")
def png_size() -> Callable[[Path], tuple[int, int]]:
    """``png_size(path)``: (width, height) in pixels of the PNG at ``path``."""
    return _png_size
