"""Numerics the experiments share: norms that survive the vanishing and exploding regimes.

>>> import jax.numpy as jnp
>>> float(safe_norm(jnp.full((4,), 1e-25, jnp.float32)))  # a plain sum of squares gives 0
2e-25
"""

import jax
import jax.numpy as jnp


def safe_norm(x: jax.Array) -> jax.Array:
    """Frobenius norm in float32 that neither underflows nor overflows.

    The entries are scaled by the power of two that brings the largest magnitude into
    [0.5, 1) before squaring (exactly: no rounding), so norms of 1e-25 (real at depth 32
    with sigmoid) or 1e25 come out right where a plain sum of squares returns 0 or inf.
    A multiply, not a divide, per entry: this runs on every layer at every training step.
    """
    x = jnp.asarray(x).astype(jnp.float32)
    _, exponent = jnp.frexp(jnp.max(jnp.abs(x)))
    # Clipped so that the scale and its inverse are normal float32 numbers.
    scale = jnp.ldexp(jnp.float32(1.0), -jnp.clip(exponent, -125, 125))
    return jnp.sqrt(jnp.sum(jnp.square(x * scale))) / scale
