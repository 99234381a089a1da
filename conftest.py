"""Test configuration for tests and doctests: strict dtype promotion, no silent up-casting."""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
