"""Root pytest configuration: JAX is strict for every test and doctest (STYLE.md principle 9)."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
