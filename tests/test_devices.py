"""One CPU device per core: asked for before JAX starts, left alone after."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from experiments import devices

ROOT = Path(__file__).resolve().parents[1]


def test_devices_are_made_before_jax_starts():
    code = (
        "from experiments import devices; devices.use_cpu_cores(3); import jax; "
        "print(jax.device_count(), devices.use_cpu_cores(1), jax.device_count())"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # 3 devices; asking again once JAX runs changes nothing.
    assert result.stdout.split() == ["3", "1", "3"]


def test_after_jax_started_the_devices_stay():
    before = jax.device_count()  # the root conftest started the backends
    assert devices.use_cpu_cores(before + 1) == min(before + 1, devices.MAX_DEVICES)
    assert jax.device_count() == before


def test_default_is_one_per_available_core_capped():
    cores = devices.available_cores()
    assert cores >= 1
    assert devices.use_cpu_cores() == min(cores, devices.MAX_DEVICES)


def test_padded_repeats_the_last_value_to_a_multiple_of_the_devices():
    np.testing.assert_array_equal(devices.padded([3, 1, 4], 2), [3, 1, 4, 4])
    np.testing.assert_array_equal(devices.padded([3, 1, 4, 1], 2), [3, 1, 4, 1])
    np.testing.assert_array_equal(devices.padded([0.5], 3), [0.5, 0.5, 0.5])


def test_a_count_set_in_the_environment_stands_unless_one_is_asked_for():
    code = (
        "import sys; from experiments import devices; "
        "devices.use_cpu_cores(None if sys.argv[1] == '-' else int(sys.argv[1])); "
        "import jax; print(jax.device_count())"
    )
    for variable, value in (
        ("JAX_NUM_CPU_DEVICES", "3"),
        ("XLA_FLAGS", "--xla_force_host_platform_device_count=3"),
    ):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", variable: value}
        for asked, expected in (("-", "3"), ("1", "1")):
            result = subprocess.run(
                [sys.executable, "-c", code, asked], cwd=ROOT, env=env, capture_output=True,
                text=True,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert result.stdout.split() == [expected], (variable, asked)
