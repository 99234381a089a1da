"""Daemon-thread work and leaving the process after an interruption."""

import subprocess
import sys
from pathlib import Path

import pytest

from experiments import background

ROOT = Path(__file__).resolve().parents[1]


def test_in_background_returns_the_result_or_the_exception():
    assert background.in_background(divmod, 7, 2).result(timeout=10) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        background.in_background(divmod, 1, 0).result(timeout=10)


def test_exit_process_exits_with_the_status():
    with pytest.raises(SystemExit) as exit_info:
        background.exit_process(2)
    assert exit_info.value.code == 2
    # 130 leaves at once (os._exit), with what was printed flushed.
    code = "from experiments import background; print('bye'); background.exit_process(130)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (130, "bye\n")
