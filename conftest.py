"""Root pytest configuration: JAX is strict for every test and doctest (CONTRIBUTING.md, "Conventions the code follows")."""

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")
