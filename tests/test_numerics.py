"""experiments.numerics: norms that neither underflow nor overflow."""

import math

import jax.numpy as jnp
import pytest

from experiments import numerics


def test_norms_do_not_underflow_or_overflow():
    tiny = jnp.full((32, 64), 1e-25, jnp.float32)
    assert float(jnp.sqrt(jnp.sum(tiny**2))) == 0.0  # the naive way
    assert float(numerics.safe_norm(tiny)) == pytest.approx(1e-25 * math.sqrt(32 * 64), rel=1e-5)
    assert float(numerics.safe_norm(jnp.full((4,), 1e25, jnp.float32))) == pytest.approx(2e25)
    assert float(numerics.safe_norm(jnp.zeros(3, jnp.float32))) == 0.0
