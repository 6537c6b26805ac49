"""Test fixtures. Strict JAX settings live in the root conftest.py; x64 only where a test asks for it."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture
def x64():
    """Run a test in float64 (exactness tests)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def key():
    return jax.random.key(0)


def _hypothesis_outside_the_repository() -> None:
    """Property tests keep no example database, and hypothesis's cache (``constants/``) goes to a temp dir,
    so running the suite never writes ``.hypothesis/`` into the checkout."""
    import tempfile
    from pathlib import Path

    from hypothesis import settings
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "taylorlib-hypothesis")
    settings.register_profile("taylorlib", database=None, deadline=None)
    settings.load_profile("taylorlib")


_hypothesis_outside_the_repository()
