"""taylorlib._checks: the device-side finiteness reduction agrees with the host check."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from taylorlib import _checks


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_device_reduction_agrees_with_the_host_check(bad):
    x = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    if bad is not None:
        x[2, 1] = bad
    host = bool(np.all(np.isfinite(x)))
    assert bool(_checks._all_finite(jnp.asarray(x))) == host == (bad is None)
    if host:
        _checks.check_finite(jnp.asarray(x), "x")
    else:
        with pytest.raises(ValueError, match="x contains NaN or inf"):
            _checks.check_finite(jnp.asarray(x), "x")
