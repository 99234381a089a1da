"""Test configuration: strict dtype promotion, so no test passes by silent up-casting."""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
