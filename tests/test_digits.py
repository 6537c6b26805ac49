"""tl.data.digits: a fixed, disjoint split of all 1797 rows, standardized with the training statistics
(checked against scikit-learn's own StandardScaler), images in NHWC layout, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import raises

import taylorlib as tl

sklearn = pytest.importorskip("sklearn")


def test_split_is_fixed_disjoint_and_complete():
    from sklearn.datasets import load_digits

    a, b = tl.data.digits(), tl.data.digits()
    np.testing.assert_array_equal(np.asarray(a.x_train), np.asarray(b.x_train))
    raw = load_digits()
    assert a.x_train.shape == (1297, 64)
    assert a.x_test.shape == (500, 64)
    labels = np.sort(np.concatenate([np.asarray(a.y_train), np.asarray(a.y_test)]))
    np.testing.assert_array_equal(labels, np.sort(raw.target))
    other = tl.data.digits(seed=1)
    assert not np.array_equal(np.asarray(other.y_test), np.asarray(a.y_test))


def test_standardization_matches_standard_scaler():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    d = tl.data.digits(n_test=300)
    raw = load_digits()
    perm = np.random.default_rng(0).permutation(raw.data.shape[0])
    x = raw.data[perm]
    scaler = StandardScaler().fit(x[:-300])
    np.testing.assert_allclose(np.asarray(d.x_train), scaler.transform(x[:-300]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(d.x_test), scaler.transform(x[-300:]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(d.y_test), raw.target[perm][-300:])


def test_images_are_the_vectors_reshaped():
    v, im = tl.data.digits(), tl.data.digits(images=True)
    assert im.x_train.shape == (1297, 8, 8, 1)
    np.testing.assert_array_equal(np.asarray(im.x_test).reshape(500, 64), np.asarray(v.x_test))


def test_bad_input():
    with raises(ValueError, match="n_test must be <= 1796"):
        tl.data.digits(1797)
    with raises(ValueError, match="n_test must be >= 1"):
        tl.data.digits(0)
    with raises(TypeError, match="images must be a bool"):
        tl.data.digits(images=1)
