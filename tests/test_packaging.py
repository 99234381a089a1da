"""The built wheel: only the library, typed, licensed, one version."""

import email.parser
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import jaxact

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools", minversion="77")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(out), str(ROOT)],
        check=True, capture_output=True, cwd=out,
    )  # fmt: skip
    (path,) = out.glob("jaxact-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_only_the_library(wheel):
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"jaxact", f"jaxact-{jaxact.__version__}.dist-info"}


def test_wheel_is_typed_and_licensed(wheel):
    names = set(wheel.namelist())
    assert "jaxact/py.typed" in names
    info = f"jaxact-{jaxact.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def test_version_has_one_source():
    assert importlib.metadata.version("jaxact") == jaxact.__version__
