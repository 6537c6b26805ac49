"""The bad-input audit: one table of wrong shapes, dtypes, empty arrays, mismatched pytrees, non-finite
values, out-of-range sizes and unknown names across the public modules (issue 9).

Every case asserts the exception type *and* that the message names the offending argument. Cases marked
``# bug`` failed silently (nan or no error) or with an obscure JAX error before this audit.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import raises, typecheck_hook_active
from jaxtyping import TypeCheckError

import taylorlib as tl

KEY = jax.random.key(0)
D, M, N = 3, 4, 5
NET = tl.nets.two_layer(M, "softplus")
P0 = NET.init(KEY, D)
X = tl.data.sphere(jax.random.key(1), N, D)
DP = {"W": jnp.ones((M, D)), "a": jnp.zeros(M)}
W = 0.1 * jnp.ones((M, D))
Y = jnp.ones(N)
KMAT = jnp.eye(N) + 0.1
NAN_W = jnp.full((M, D), jnp.nan)
SEEDS = jax.random.split(KEY, 2)
SQ = lambda w: jnp.sum(w**2)  # noqa: E731
CNN = tl.nets.cnn((2,), "relu", out_dim=2)
CNN_P = CNN.init(KEY, 1)
IMAGES = jnp.ones((3, 4, 4, 1))
MLP_P = tl.nets.mlp((4,), "tanh", out_dim=2).init(KEY, D)


class Unhashable:
    """An elementwise activation that defines __eq__ without __hash__ (so it cannot be a static argument)."""

    def __call__(self, z):
        return jnp.tanh(z)

    def __eq__(self, other):
        return isinstance(other, Unhashable)

    __hash__ = None  # type: ignore[assignment]


def sweep_fn(key, n):
    return jnp.mean(jax.random.normal(key, (n,)))


# (id, thunk, exception type, regex that must appear in the message: it names the argument)
CASES = [
    # --- taylor
    (
        "taylor/x-1d",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, jnp.ones(D), 2),
        ValueError,
        r"x must be 2-D",
    ),
    (
        "taylor/x-wrong-d",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, jnp.ones((2, 4)), 2),
        ValueError,
        r"x has feature dimension 4",
    ),
    (
        "taylor/x-complex",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, X.astype(jnp.complex64), 2),
        TypeError,
        r"x must be real",
    ),
    (
        "taylor/x-nan",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, X.at[0, 0].set(jnp.nan), 2),
        ValueError,
        r"x contains NaN",
    ),  # bug
    (
        "taylor/x-empty",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, jnp.ones((0, D)), 2),
        ValueError,
        r"x must contain at least one sample",
    ),
    (
        "taylor/order-negative",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, X, -1),
        ValueError,
        r"order must be >= 0",
    ),
    (
        "taylor/order-float",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, X, 2.0),
        TypeError,
        r"order must be an int",
    ),
    (
        "taylor/method-unknown",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, DP, X, 2, method="fd"),
        ValueError,
        r"unknown method 'fd'",
    ),
    (
        "taylor/dparams-missing-leaf",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, {"W": W}, X, 2),
        ValueError,
        r"dparams must have the same pytree structure",
    ),
    (
        "taylor/dparams-leaf-shape",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, {"W": jnp.ones((M, 2)), "a": DP["a"]}, X, 2),
        ValueError,
        r"dparams leaf shape \(4, 2\)",
    ),
    (
        "taylor/dparams-nan",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, {"W": NAN_W, "a": DP["a"]}, X, 2),
        ValueError,
        r"dparams contains NaN",
    ),  # bug
    (
        "taylor/dparams-complex",
        lambda: tl.taylor.taylor_terms(NET.apply, P0, {"W": W.astype(jnp.complex64), "a": DP["a"]}, X, 2),
        TypeError,
        r"dparams must be real",
    ),  # bug
    (
        "taylor/params0-int",
        lambda: tl.taylor.taylor_terms(NET.apply, {"W": jnp.ones((M, D), jnp.int32), "a": P0["a"]}, DP, X, 2),
        TypeError,
        r"params0 must be floating",
    ),  # bug
    (
        "taylor/expand-params-mismatch",
        lambda: tl.taylor.taylor_expand(NET.apply, P0, 2)({"W": W}, X),
        ValueError,
        r"params must have the same pytree structure as params0",
    ),
    (
        "taylor/term-k-negative",
        lambda: tl.taylor.taylor_term(NET.apply, P0, -1),
        ValueError,
        r"k must be >= 0",
    ),
    (
        "taylor/linearize-apply-not-callable",
        lambda: tl.taylor.linearize(None, P0),
        TypeError,
        r"apply must be callable",
    ),  # bug
    (
        "taylor/expand-apply-not-callable",
        lambda: tl.taylor.taylor_expand("net", P0, 2),
        TypeError,
        r"apply must be callable",
    ),  # bug
    (
        "taylor/jet-through-cond",
        lambda: tl.taylor.taylor_terms(
            lambda p, x: jax.lax.cond(True, jnp.tanh, jnp.sin, x @ p["W"].T) @ p["a"],
            P0,
            DP,
            X,
            2,
            method="jet",
        ),
        ValueError,
        r"method='jet'",
    ),
    # --- ntk
    (
        "ntk/method-unknown",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, X, method="exact"),
        ValueError,
        r"unknown method 'exact'",
    ),
    (
        "ntk/x2-feature-dim",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, X, jnp.ones((2, 4))),
        ValueError,
        r"x1 and x2 must have the same feature dimension",
    ),
    (
        "ntk/chunk-size-zero",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, X, chunk_size=0),
        ValueError,
        r"chunk_size must be >= 1",
    ),
    (
        "ntk/x1-empty",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, jnp.ones((0, D))),
        ValueError,
        r"x1 must contain at least one sample",
    ),
    (
        "ntk/params-nan",
        lambda: tl.ntk.empirical_ntk(NET.apply, {"W": NAN_W, "a": P0["a"]}, X),
        ValueError,
        r"params contains NaN",
    ),  # bug
    (
        "ntk/two-layer-params-nan",
        lambda: tl.ntk.two_layer_ntk({"W": NAN_W, "a": P0["a"]}, X),
        ValueError,
        r"params contains NaN",
    ),  # bug
    (
        "ntk/two-layer-a-shape",
        lambda: tl.ntk.two_layer_ntk({"W": P0["W"], "a": jnp.ones(3)}, X),
        ValueError,
        r"params\['a'\] \(m,\)",
    ),
    (
        "ntk/trainable-unknown",
        lambda: tl.ntk.two_layer_ntk(P0, X, trainable=("b",)),
        ValueError,
        r"trainable must be a non-empty subset",
    ),
    (
        "ntk/trainable-str",
        lambda: tl.ntk.two_layer_ntk(P0, X, trainable="W"),
        TypeError,
        r"trainable must be a tuple",
    ),
    (
        "ntk/ntk-vp-v-shape",
        lambda: tl.ntk.ntk_vp(NET.apply, P0, X)(jnp.ones(3)),
        ValueError,
        r"v must have shape \(n2,\)",
    ),
    # --- any network (issue 16)
    (
        "ntk/x1-leaves-batch-sizes",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, {"u": jnp.ones((2, D)), "v": jnp.ones((3, D))}),
        ValueError,
        r"every leaf of x1 must have the same batch size n \(shape \(n, \.\.\.\)\)",
    ),
    (
        "ntk/x2-structure",
        lambda: tl.ntk.empirical_ntk(NET.apply, P0, {"u": X}, {"v": X}),
        ValueError,
        r"x1 and x2 must have the same pytree structure",
    ),
    (
        "ntk/x2-trailing-shape",
        lambda: tl.ntk.empirical_ntk(CNN.apply, CNN_P, IMAGES, jnp.ones((2, 5, 5, 1))),
        ValueError,
        r"x2 must be \(n2, 4, 4, 1\)",
    ),
    (
        "ntk/cnn-channels",
        lambda: tl.ntk.empirical_ntk(CNN.apply, CNN_P, jnp.ones((2, 4, 4, 3))),
        ValueError,
        r"x1 of shape \(2, 4, 4, 3\).*\(n, H, W, 1\)",
    ),
    (
        "ntk/trace-axes-range",
        lambda: tl.ntk.empirical_ntk(CNN.apply, CNN_P, IMAGES, trace_axes=(2,)),
        ValueError,
        r"trace_axes out of range.*\(-1,\).*\(\)",
    ),
    (
        "ntk/trace-axes-type",
        lambda: tl.ntk.empirical_ntk(CNN.apply, CNN_P, IMAGES, trace_axes="last"),
        TypeError,
        r"trace_axes must be a tuple of ints",
    ),
    (
        "ntk/output-rank",
        lambda: tl.ntk.empirical_ntk(lambda p, x: jnp.ones((x.shape[0], 2, 2)) * p["a"][0], P0, X),
        ValueError,
        r"apply\(params, x1\) must return shape \(n,\) or \(n, k\) with n = 5",
    ),
    (
        "ntk/mlp-ntk-wrong-d",
        lambda: tl.ntk.mlp_ntk(MLP_P, jnp.ones((2, D + 1)), activation="tanh"),
        ValueError,
        r"x1 has feature dimension 4 .*\(n, 3\)",
    ),
    (
        "ntk/mlp-ntk-trace-axes",
        lambda: tl.ntk.mlp_ntk(MLP_P, X, activation="tanh", trace_axes=(0,)),
        ValueError,
        r"trace_axes out of range",
    ),
    (
        "quadratic/second-order-wrt-nothing",
        lambda: tl.quadratic.second_order_ntk(NET.apply, P0, X, wrt=lambda path, leaf: False),
        ValueError,
        r"wrt selects no parameter.*'W'.*\(4, 3\)",
    ),
    (
        "quadratic/second-order-budget",
        lambda: tl.quadratic.second_order_ntk(NET.apply, P0, X, max_bytes=64),
        ValueError,
        r"method='exact' needs about .* shape \(1, 16, 16\).*max_bytes",
    ),
    (
        "quadratic/second-order-x2-batch",
        lambda: tl.quadratic.second_order_ntk(NET.apply, P0, X, jnp.ones((3, D + 1))),
        ValueError,
        r"x1 and x2 must have the same feature dimension.*\(n2, 3\)",
    ),
    (
        "randomize/where-scalar-leaf",
        lambda: tl.randomize.sign_flip(KEY, {"W": W, "c": jnp.array(1.0)}, where=lambda path, leaf: True),
        ValueError,
        r"where selected the scalar leaf dparams\['c'\].*shape \(m, \.\.\.\)",
    ),
    (
        "randomize/where-nothing",
        lambda: tl.randomize.randomized_apply(NET.apply, P0, where=lambda path, leaf: False),
        ValueError,
        r"where selects no leaf of params0.*\(m, \.\.\.\)",
    ),
    (
        "randomize/where-group-rows",
        lambda: tl.randomize.sign_flip(KEY, {"W": W, "b": jnp.ones(M + 1)}),
        ValueError,
        r"share their signs.*\(m, \.\.\.\)",
    ),
    (
        "randomize/where-not-callable",
        lambda: tl.randomize.mc_objective(lambda f, p: 0.0, NET.apply, P0, KEY, 2, where="W"),
        TypeError,
        r"where must be callable",
    ),
    (
        "landscape/hessian-memory",
        lambda: tl.landscape.hessian(SQ, jnp.ones(8), max_bytes=8),
        ValueError,
        r"Hessian of p = 8 parameters needs about .*\(8, 8\).*max_bytes",
    ),
    # --- kernels
    (
        "kernels/activation-unknown",
        lambda: tl.kernels.ntk(X, activation="swish"),
        ValueError,
        r"unknown activation 'swish'",
    ),
    (
        "kernels/activation-int",
        lambda: tl.kernels.nngp(X, activation=3),
        TypeError,
        r"activation must be a name or a callable",
    ),
    (
        "kernels/trainable-empty",
        lambda: tl.kernels.ntk(X, trainable=()),
        ValueError,
        r"trainable must be a non-empty subset",
    ),
    ("kernels/x1-3d", lambda: tl.kernels.nngp(jnp.ones((2, 3, 1))), ValueError, r"x1 must be 2-D"),
    (
        "kernels/x1-inf",
        lambda: tl.kernels.nngp(jnp.full((2, 3), jnp.inf)),
        ValueError,
        r"x1 contains NaN or inf",
    ),
    (
        "kernels/x1-bool",
        lambda: tl.kernels.nngp(jnp.ones((2, 3), bool)),
        TypeError,
        r"x1 must be floating point",
    ),
    ("kernels/dual-k-negative", lambda: tl.kernels.dual(X, k=-1), ValueError, r"k must be >= 0"),
    (
        "kernels/quad-ntk-relu",
        lambda: tl.kernels.quad_ntk(X, activation="relu"),
        ValueError,
        r"activation Activation\('relu'\) has a vanishing derivative of order 2",
    ),
    (
        "kernels/activation-unhashable",
        lambda: tl.kernels.ntk(X, activation=Unhashable()),
        TypeError,
        r"activation must be hashable \(it is a static argument of jax.jit\)",
    ),
    (
        "kernels/order-k-zero",
        lambda: tl.kernels.order_k_ntk(X, activation="erf", k=0),
        ValueError,
        r"k must be >= 1",
    ),
    # --- kernel_regression
    (
        "krr/K-not-square",
        lambda: tl.kernel_regression.krr(jnp.ones((N, 4)), Y, KMAT),
        ValueError,
        r"K_train must be a square",
    ),
    (
        "krr/y-length",
        lambda: tl.kernel_regression.krr(KMAT, jnp.ones(4), KMAT),
        ValueError,
        r"y_train must have shape \(n,\)",
    ),
    (
        "krr/ridge-negative",
        lambda: tl.kernel_regression.krr(KMAT, Y, KMAT, ridge=-1.0),
        ValueError,
        r"ridge must be >= 0",
    ),
    (
        "krr/ridge-nan",
        lambda: tl.kernel_regression.krr(KMAT, Y, KMAT, ridge=float("nan")),
        ValueError,
        r"ridge must be finite",
    ),
    (
        "krr/K-complex",
        lambda: tl.kernel_regression.krr(KMAT.astype(jnp.complex64), Y, KMAT),
        TypeError,
        r"K_train must be real",
    ),
    (
        "krr/K-empty",
        lambda: tl.kernel_regression.krr(jnp.ones((0, 0)), jnp.ones(0), jnp.ones((3, 0))),
        ValueError,
        r"K_train must have at least one training point",
    ),  # bug
    (
        "krr/K-test-nan",
        lambda: tl.kernel_regression.krr(KMAT, Y, jnp.full((3, N), jnp.nan)),
        ValueError,
        r"K_test_train contains NaN",
    ),  # bug
    (
        "krr/K-test-shape",
        lambda: tl.kernel_regression.krr(KMAT, Y, jnp.ones((3, 4))),
        ValueError,
        r"K_test_train must have shape \(t, 5\)",
    ),
    # --- nets
    ("nets/width-zero", lambda: tl.nets.two_layer(0), ValueError, r"width must be >= 1"),
    ("nets/width-float", lambda: tl.nets.two_layer(4.0), TypeError, r"width must be an int"),
    (
        "nets/odd-width-symmetric",
        lambda: tl.nets.two_layer(5, symmetric=True),
        ValueError,
        r"width must be even when symmetric=True",
    ),
    (
        "nets/activation-unknown",
        lambda: tl.nets.two_layer(4, activation="sigmoid"),
        ValueError,
        r"unknown activation 'sigmoid'",
    ),
    ("nets/input-dim-zero", lambda: NET.init(KEY, 0), ValueError, r"input_dim must be >= 1"),
    ("nets/init-int-key", lambda: NET.init(0, D), TypeError, r"key must be a PRNG key"),  # bug
    (
        "nets/apply-x-wrong-d",
        lambda: NET.apply(P0, jnp.ones((2, 5))),
        ValueError,
        r"x has feature dimension 5",
    ),
    (
        "nets/apply-a-wrong-length",
        lambda: NET.apply({"W": P0["W"], "a": jnp.ones(3)}, X),
        ValueError,
        r"params\['a'\] must have shape \(m,\)",
    ),  # bug
    ("nets/mlp-widths-int", lambda: tl.nets.mlp(4), TypeError, r"widths must be a non-empty sequence"),
    ("nets/mlp-width-zero", lambda: tl.nets.mlp((4, 0)), ValueError, r"widths\[1\] must be >= 1"),
    (
        "nets/preactivations-mismatch",
        lambda: tl.nets.preactivations(jnp.ones((M, D)), jnp.ones((2, 5))),
        ValueError,
        r"x has feature dimension 5",
    ),  # bug
    # --- activations
    ("activations/unknown", lambda: tl.activations.get("swish"), ValueError, r"unknown activation 'swish'"),
    (
        "activations/derivative-k-negative",
        lambda: tl.activations.derivative("tanh", -1),
        ValueError,
        r"k must be >= 0",
    ),
    (
        "activations/derivative-k-float",
        lambda: tl.activations.derivative("tanh", 1.5),
        TypeError,
        r"k must be an int",
    ),
    # --- data
    ("data/sphere-n-negative", lambda: tl.data.sphere(KEY, -1, 3), ValueError, r"n must be >= 0"),
    ("data/sphere-int-key", lambda: tl.data.sphere(0, 3, 3), TypeError, r"key must be a PRNG key"),  # bug
    ("data/gaussian-n-float", lambda: tl.data.gaussian(KEY, 2.5, 3), TypeError, r"n must be an int"),
    (
        "data/zonal-x-1d",
        lambda: tl.data.zonal_harmonic(jnp.ones(D), jnp.ones(D), 2),
        ValueError,
        r"x must be 2-D",
    ),  # bug
    (
        "data/zonal-beta-dim",
        lambda: tl.data.zonal_harmonic(X, jnp.ones(4), 2),
        ValueError,
        r"beta must have shape \(d,\)",
    ),  # bug
    (
        "data/zonal-beta-zero",
        lambda: tl.data.zonal_harmonic(X, jnp.zeros(D), 2),
        ValueError,
        r"beta must be a nonzero",
    ),  # bug
    (
        "data/staircase-input-law",
        lambda: tl.targets.staircase(KEY, 5, input_law="cube"),
        ValueError,
        r"unknown input_law 'cube'",
    ),
    (
        "data/staircase-weights-zero",
        lambda: tl.targets.staircase(KEY, 5, degrees=(1, 2), weights=(0.0, 0.0)),
        ValueError,
        r"weights must be finite and not all zero",
    ),  # bug
    (
        "data/staircase-call-wrong-d",
        lambda: tl.targets.staircase(KEY, 5)(jnp.ones((2, 4))),
        ValueError,
        r"x has feature dimension 4",
    ),  # bug
    (
        "data/make-dataset-noise-negative",
        lambda: tl.targets.make_dataset(KEY, tl.targets.single_index(KEY, 5, 2), 10, 10, noise=-1.0),
        ValueError,
        r"noise must be >= 0",
    ),
    # --- quadratic
    (
        "quadratic/terms-W-shape",
        lambda: tl.quadratic.two_layer_terms(P0, jnp.ones((3, D)), X, activation="softplus", order=2),
        ValueError,
        r"W \(the movement\) must have the shape",
    ),
    (
        "quadratic/terms-W-nan",
        lambda: tl.quadratic.two_layer_terms(P0, NAN_W, X, activation="softplus", order=2),
        ValueError,
        r"W contains NaN",
    ),  # bug
    (
        "quadratic/terms-W-complex",
        lambda: tl.quadratic.two_layer_terms(P0, W.astype(jnp.complex64), X, activation="softplus", order=2),
        TypeError,
        r"W \(the movement\) must be real",
    ),  # bug
    (
        "quadratic/terms-activation-unhashable",
        lambda: tl.quadratic.two_layer_terms(P0, W, X, activation=Unhashable(), order=2),
        TypeError,
        r"activation must be hashable",
    ),
    (
        "quadratic/quad-ntk-relu",
        lambda: tl.quadratic.quad_ntk(P0, X, activation="relu"),
        ValueError,
        r"activation Activation\('relu'\) has a vanishing derivative",
    ),
    (
        "quadratic/quad-ntk-params",
        lambda: tl.quadratic.quad_ntk({"W": P0["W"]}, X, activation="softplus"),
        TypeError,
        r"params0 must be a two_layer parameter dict",
    ),
    ("quadratic/to-movement-1d", lambda: tl.quadratic.to_movement(jnp.ones(3)), ValueError, r"V must be 2-D"),
    (
        "quadratic/learning-rate-base-negative",
        lambda: tl.quadratic.learning_rate(4, 3, base=-1.0),
        ValueError,
        r"base must be > 0",
    ),
    # --- randomize
    (
        "randomize/sign-flip-scalar",
        lambda: tl.randomize.sign_flip(KEY, jnp.array(1.0)),
        ValueError,
        r"W must have a non-empty leading",
    ),
    (
        "randomize/sign-flip-complex",
        lambda: tl.randomize.sign_flip(KEY, W.astype(jnp.complex64)),
        TypeError,
        r"W must be real",
    ),
    (
        "randomize/sign-flip-nan",
        lambda: tl.randomize.sign_flip(KEY, NAN_W),
        ValueError,
        r"W contains NaN",
    ),  # bug
    (
        "randomize/sign-flip-int-key",
        lambda: tl.randomize.sign_flip(0, W),
        TypeError,
        r"key must be a PRNG key",
    ),  # bug
    (
        "randomize/leaves-str",
        lambda: tl.randomize.randomized_apply(NET.apply, P0, leaves="W"),
        TypeError,
        r"leaves must be a non-empty sequence",
    ),
    (
        "randomize/leaves-unknown",
        lambda: tl.randomize.randomized_apply(NET.apply, P0, leaves=("V",)),
        ValueError,
        r"randomized leaves \('V',\)",
    ),
    (
        "randomize/num-signs-zero",
        lambda: tl.randomize.mc_objective(lambda f, p: 0.0, NET.apply, P0, KEY, num_signs=0),
        ValueError,
        r"num_signs must be >= 1",
    ),
    (
        "randomize/mc-loss-not-callable",
        lambda: tl.randomize.mc_objective(None, NET.apply, P0, KEY, num_signs=2),
        TypeError,
        r"loss must be callable",
    ),  # bug
    (
        "randomize/esl-model-unknown",
        lambda: tl.randomize.expected_square_loss(P0, W, X, Y, activation="softplus", model="exact"),
        ValueError,
        r"unknown model 'exact'",
    ),
    (
        "randomize/esl-relu",
        lambda: tl.randomize.expected_square_loss(P0, W, X, Y, activation="relu"),
        ValueError,
        r"activation Activation\('relu'\) has a vanishing derivative of order 2",
    ),
    (
        "randomize/esl-y-nan",
        lambda: tl.randomize.expected_square_loss(P0, W, X, Y.at[0].set(jnp.nan), activation="softplus"),
        ValueError,
        r"y contains NaN",
    ),  # bug
    (
        "randomize/sign-moments-W-nan",
        lambda: tl.randomize.sign_moments(P0, NAN_W, X, activation="softplus"),
        ValueError,
        r"W contains NaN",
    ),  # bug
    (
        "randomize/order-k-odd-width",
        lambda: tl.higher_order.order_k(KEY, jnp.ones((5, D)), 3),
        ValueError,
        r"W has an odd number of rows m = 5",
    ),
    (
        "randomize/order-k-int-key",
        lambda: tl.higher_order.order_k(0, W, 2),
        TypeError,
        r"key must be a PRNG key",
    ),  # bug
    # --- regularizers
    ("regularizers/norm-p-below-one", lambda: tl.regularizers.norm_2p(W, 0.5), ValueError, r"p must be >= 1"),
    (
        "regularizers/norm-p-str",
        lambda: tl.regularizers.norm_2p(W, "4"),
        TypeError,
        r"p must be a real number",
    ),
    (
        "regularizers/norm-W-empty",
        lambda: tl.regularizers.norm_2p(jnp.ones((0, D)), float("inf")),
        ValueError,
        r"W must have at least one row",
    ),  # bug
    (
        "regularizers/norm-W-nan",
        lambda: tl.regularizers.norm_2p(NAN_W, 4),
        ValueError,
        r"W contains NaN",
    ),  # bug
    (
        "regularizers/bai-lee-lam-negative",
        lambda: tl.regularizers.bai_lee(W, -1.0),
        ValueError,
        r"lam must be >= 0",
    ),
    (
        "regularizers/bai-lee-W-3d",
        lambda: tl.regularizers.bai_lee(jnp.ones((M, D, 1)), 1.0),
        ValueError,
        r"W must be 2-D",
    ),
    (
        "regularizers/frobenius-empty-tree",
        lambda: tl.regularizers.frobenius2({}, 1.0),
        ValueError,
        r"params must contain at least one array leaf",
    ),
    # --- train
    (
        "train/steps-zero",
        lambda: tl.train.fit(SQ, jnp.ones(2), optax.sgd(0.1), 0),
        ValueError,
        r"steps must be >= 1",
    ),
    (
        "train/log-every-zero",
        lambda: tl.train.fit(SQ, jnp.ones(2), optax.sgd(0.1), 10, log_every=0),
        ValueError,
        r"log_every must be >= 1",
    ),
    (
        "train/non-scalar-loss",
        lambda: tl.train.fit(lambda w: w**2, jnp.ones(2), optax.sgd(0.1), 10),
        ValueError,
        r"loss must return a scalar",
    ),
    (
        "train/optimizer-str",
        lambda: tl.train.fit(SQ, jnp.ones(2), "sgd", 10),
        TypeError,
        r"optimizer must be an optax.GradientTransformation",
    ),
    (
        "train/params-nan",
        lambda: tl.train.fit(SQ, jnp.full(2, jnp.nan), optax.sgd(0.1), 10),
        ValueError,
        r"params contains NaN",
    ),
    (
        "train/params-int",
        lambda: tl.train.fit(SQ, jnp.ones(2, jnp.int32), optax.sgd(0.1), 10),
        TypeError,
        r"params must be floating point",
    ),  # bug
    (
        "train/monitor-not-callable",
        lambda: tl.train.fit(SQ, jnp.ones(2), optax.sgd(0.1), 10, monitor=3),
        TypeError,
        r"monitor must be callable",
    ),  # bug
    (
        "train/huge-lr-diverges",
        lambda: tl.train.fit(lambda w: jnp.sum(w**4), jnp.ones(2), optax.sgd(1e10), 10),
        tl.train.NonFiniteError,
        r"the loss is inf at step 1",
    ),
    (
        "train/pgd-lr-negative",
        lambda: tl.train.perturbed_gd(-0.1, 0.1, 0.1, KEY),
        ValueError,
        r"learning_rate must be >= 0",
    ),
    (
        "train/pgd-radius-negative",
        lambda: tl.train.perturbed_gd(0.1, -0.1, 0.1, KEY),
        ValueError,
        r"radius must be >= 0",
    ),
    (
        "train/pgd-int-key",
        lambda: tl.train.perturbed_gd(0.1, 0.1, 0.1, 0),
        TypeError,
        r"key must be a PRNG key",
    ),  # bug
    (
        "train/fit-int-key",
        lambda: tl.train.fit(lambda p, k: jnp.sum(p**2), jnp.ones(2), optax.sgd(0.1), 3, key=0),
        TypeError,
        r"key must be a PRNG key, e.g. jax.random.key\(0\), got int",
    ),
    (
        "train/perturb-threshold-negative",
        lambda: tl.train.perturb(0.1, -1.0, KEY),
        ValueError,
        r"threshold must be >= 0",
    ),
    (
        "train/perturb-min-interval-zero",
        lambda: tl.train.perturb(0.1, 0.1, KEY, min_interval=0),
        ValueError,
        r"min_interval must be >= 1",
    ),
    # --- landscape
    (
        "landscape/hvp-v-shape",
        lambda: tl.landscape.hvp(SQ, jnp.ones(2), jnp.ones(3)),
        ValueError,
        r"v leaf shape \(3,\)",
    ),
    (
        "landscape/hvp-non-scalar-loss",
        lambda: tl.landscape.hvp(lambda w: w**2, jnp.ones(2), jnp.ones(2)),
        ValueError,
        r"loss must return a scalar",
    ),  # bug
    (
        "landscape/hessian-non-scalar-loss",
        lambda: tl.landscape.hessian(lambda w: w**2, jnp.ones(2)),
        ValueError,
        r"loss must return a scalar",
    ),  # bug
    (
        "landscape/hessian-int-params",
        lambda: tl.landscape.hessian(SQ, jnp.ones(3, jnp.int32)),
        TypeError,
        r"params must be floating point",
    ),  # bug
    (
        "landscape/hessian-too-large",
        lambda: tl.landscape.hessian(SQ, jnp.ones(10), max_params=5),
        ValueError,
        r"max_params = 5",
    ),
    (
        "landscape/lanczos-num-iter-zero",
        lambda: tl.landscape.lanczos(SQ, jnp.ones(2), KEY, 0),
        ValueError,
        r"num_iter must be >= 1",
    ),
    (
        "landscape/lanczos-nan-params",
        lambda: tl.landscape.lanczos(SQ, jnp.full(3, jnp.nan), KEY, 2),
        ValueError,
        r"params contains NaN",
    ),  # bug
    (
        "landscape/lanczos-int-key",
        lambda: tl.landscape.lanczos(SQ, jnp.ones(3), 0, 2),
        TypeError,
        r"key must be a PRNG key",
    ),  # bug
    (
        "landscape/is-sosp-eps-negative",
        lambda: tl.landscape.is_sosp(SQ, jnp.ones(3), -1.0, 1e-3, key=KEY, num_iter=2),
        ValueError,
        r"eps_grad must be >= 0",
    ),
    (
        "landscape/curvature-scalar-W",
        lambda: tl.landscape.sign_averaged_curvature(SQ, jnp.array(1.0), jnp.array(1.0)),
        ValueError,
        r"W must have a leading \(neuron\) axis",
    ),  # bug
    (
        "landscape/curvature-num-signs-zero",
        lambda: tl.landscape.sign_averaged_curvature(
            SQ, jnp.ones((3, 2)), jnp.ones((3, 2)), key=KEY, num_signs=0
        ),
        ValueError,
        r"num_signs must be >= 1",
    ),
    # --- sweep
    (
        "sweep/grid-not-dict",
        lambda: tl.sweep.run(sweep_fn, [("n", [1])], seeds=SEEDS),
        TypeError,
        r"grid must be a dict",
    ),
    (
        "sweep/grid-array-value",
        lambda: tl.sweep.run(sweep_fn, {"n": [jnp.array(1.5)]}, seeds=SEEDS),
        TypeError,
        r"grid\['n'\] must contain static Python values \(int, finite float or str\)",
    ),
    (
        "sweep/seeds-raw-uint32",
        lambda: tl.sweep.run(sweep_fn, {"n": [1]}, seeds=jax.random.split(jax.random.PRNGKey(0), 2)),
        TypeError,
        r"seeds must be a 1-D array of typed PRNG keys",
    ),
    (
        "sweep/seeds-empty",
        lambda: tl.sweep.run(sweep_fn, {"n": [1]}, seeds=jax.random.split(KEY, 0)),
        ValueError,
        r"seeds must be a non-empty",
    ),
    (
        "sweep/cache-suffix",
        lambda: tl.sweep.run(sweep_fn, {"n": [1]}, seeds=SEEDS, cache="results.csv"),
        ValueError,
        r"cache must be a path ending in .npz",
    ),
    (
        "sweep/fn-shape-changes",
        lambda: tl.sweep.run(lambda key, n: jnp.ones(n), {"n": [2, 3]}, seeds=SEEDS),
        ValueError,
        r"fn output 'value' has shape \(3,\) at \{'n': 3\} but \(2,\) elsewhere",
    ),
    (
        "sweep/threshold-str",
        lambda: tl.scaling.crossing_point([1, 2], [1.0, 0.5], "a"),
        TypeError,
        r"threshold must be a positive real",
    ),  # bug
    (
        "sweep/errors-complex",
        lambda: tl.scaling.crossing_point([1, 2], np.array([1.0, 0.5j]), 0.7),
        TypeError,
        r"errors must be real",
    ),  # bug
    (
        "sweep/ns-nan",
        lambda: tl.scaling.crossing_point([1.0, float("nan")], [1.0, 0.5], 0.7),
        ValueError,
        r"ns must be positive and strictly increasing",
    ),  # bug
    (
        "sweep/ds-shape",
        lambda: tl.scaling.fit_exponent([1, 2], [[1.0, 0.5], [1.0, 0.4]], 0.7, ds=[1.0]),
        ValueError,
        r"ds must have shape \(2,\)",
    ),
    # --- plotting
    (
        "plotting/slope-one-point",
        lambda: tl.plotting.loglog_slope([1], [1]),
        ValueError,
        r"x and y must be 1-D of equal length >= 2",
    ),
    (
        "plotting/slope-negative",
        lambda: tl.plotting.loglog_slope([1, 2], [1, -1]),
        ValueError,
        r"x and y must be positive",
    ),
    (
        "plotting/slope-x-str",
        lambda: tl.plotting.loglog_slope(["a", "b"], [1, 2]),
        TypeError,
        r"x must be an array of real numbers",
    ),  # bug
    (
        "plotting/new-figure-ncols-zero",
        lambda: tl.plotting.new_figure(ncols=0),
        ValueError,
        r"ncols must be a positive int",
    ),  # bug
]

MODULES = {case[0].split("/")[0] for case in CASES}
assert len(CASES) >= 40, len(CASES)
assert len(MODULES) >= 8, sorted(MODULES)
assert len({case[0] for case in CASES}) == len(CASES), "case ids must be unique"


def _check_raises(thunk, error, match) -> None:
    """``thunk()`` raises exactly ``error`` (not a subclass, not the other of TypeError/ValueError) with a
    message matching ``match``."""
    with raises(error, match=match) as info:
        thunk()
    if typecheck_hook_active() and isinstance(info.value, TypeCheckError):
        return  # the type-check hook rejected the argument first (raises checked that it names it)
    assert type(info.value) is error, f"raised {type(info.value).__name__}, the case expects {error.__name__}"


def test_the_table_states_one_exact_type_and_an_argument_name():
    for name, _, error, match in CASES:
        # TypeError/ValueError (NonFiniteError is a ValueError), never a bare JAX/numpy internal error
        assert error in (TypeError, ValueError, tl.train.NonFiniteError), name
        # the regex starts with a word of the message (the argument's name), not with a wildcard
        assert re.match(r"[A-Za-z_]", match), (name, match)


@pytest.mark.parametrize(
    ("raised", "expected", "match"),
    [
        (ValueError("x must be 2-D"), TypeError, r"x must be 2-D"),  # wrong type
        (TypeError("x must be real"), ValueError, r"x must be real"),  # wrong type
        (tl.train.NonFiniteError("params contains NaN"), ValueError, r"params"),  # subclass, not exact
        (ValueError("y must be 2-D"), ValueError, r"x must be 2-D"),  # names another argument
    ],
)
def test_a_case_with_the_wrong_type_or_message_fails(raised, expected, match):
    def thunk():
        raise raised

    with pytest.raises((AssertionError, pytest.fail.Exception, type(raised))):
        _check_raises(thunk, expected, match)


@pytest.mark.parametrize(("thunk", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(thunk, error, match):
    _check_raises(thunk, error, match)
