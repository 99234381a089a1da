"""Test configuration for tests and doctests.

Strict dtype promotion, so no test passes by silent up-casting.

With only the ``test`` extra installed (no Flax, optax, scikit-learn or matplotlib) the
library's own tests still run: the experiments (apart from ``experiments.accuracy``, the
mpmath reference the library's accuracy tests use), the Flax layers and every test module
that imports them are not collected. With every extra installed nothing is left out.
"""

import importlib.util
import re
from pathlib import Path

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
# The backends start here, so the study CLIs called in-process leave the device count as it
# is (they ask for one CPU device per core only where JAX has not started): every test sees
# the same devices whatever ran before it.
jax.devices()

_ROOT = Path(__file__).parent
_EXTRAS = ("flax", "optax", "sklearn", "matplotlib")
_EXTRAS_MISSING = any(importlib.util.find_spec(name) is None for name in _EXTRAS)
_LIBRARY_ONLY = {"experiments/__init__.py", "experiments/accuracy.py"}
_NEEDS_EXTRAS = re.compile(
    r"^\s*(?:import|from) (?:flax|optax|sklearn|matplotlib|torch|jaxact\.(?:linen|nnx))\b"
    r"|^\s*from experiments\.(?!accuracy\b)\w+",
    re.MULTILINE,
)
_FROM_EXPERIMENTS = re.compile(
    r"^\s*from experiments import (?:\(([^)]*)\)|([^\n(]+))", re.MULTILINE
)


def _needs_extras(source: str) -> bool:
    """Whether a test module imports an extra, a Flax layer module or an experiment."""
    if _NEEDS_EXTRAS.search(source):
        return True
    names = (
        n.split(" as ")[0].strip()
        for match in _FROM_EXPERIMENTS.findall(source)
        for n in "".join(match).split(",")
        if n.strip()
    )
    return any(name != "accuracy" for name in names)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Leaves out what needs an optional extra, when one is not installed."""
    if not _EXTRAS_MISSING or collection_path.suffix != ".py":
        return None
    relative = collection_path.resolve().relative_to(_ROOT).as_posix()
    if relative.startswith("experiments/"):
        return relative not in _LIBRARY_ONLY or None
    if relative in ("jaxact/linen.py", "jaxact/nnx.py"):
        return True
    if relative.startswith("tests/") and _needs_extras(collection_path.read_text()):
        return True
    return None
