"""Training loops: fit against a closed-form GD trajectory and against a Python loop of the pure step,
per-step keys, vmap over seeds against a loop over seeds, the NaN/inf guard, perturbed GD (uniform-ball
noise law, plain GD when the gradient is large, escaping a strict saddle), bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import raises, rtol_for, tree_allclose

import taylorlib as tl
from taylorlib._train_loop import _batch

#: Monte Carlo tolerance: |mean - mu| <= MC_SIGMAS standard errors. Largest measured over 21 seed offsets:
#: 2.22 (~1.5x).
MC_SIGMAS = 3.5


def quadratic_loss(target):
    return lambda w: jnp.sum((w - target) ** 2)


def saddle(w):
    """Strict saddle at 0 (Hessian diag(2, -2)); minima at (0, +-1/sqrt 2) with value -1/4."""
    return w[0] ** 2 - w[1] ** 2 + w[1] ** 4


def python_loop(loss, params, optimizer, steps, key=None, needs_key=False):
    """Reference: the jitted pure step in a Python loop; returns (params, per-step metrics)."""
    step = jax.jit(tl.train.make_step(loss, optimizer, needs_key=needs_key))
    state = tl.train.init_state(params, optimizer, key)
    rows = []
    for _ in range(steps):
        state, m = step(state)
        rows.append(m)
    return state.params, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *rows)


# ----------------------------------------------------------------------------- fit vs references


@pytest.mark.x64
def test_fit_matches_closed_form_gradient_descent(x64):
    # L(w) = ||w - t||^2, GD with rate eta: w_k - t = (1 - 2 eta)^k (w_0 - t), L_k = (1 - 2 eta)^(2k) L_0
    target, w0, eta, steps = jnp.array([1.0, -2.0, 0.5]), jnp.zeros(3), 0.05, 37
    w, hist = tl.train.fit(quadratic_loss(target), w0, optax.sgd(eta), steps, log_every=5)
    k = np.arange(0, steps, 5)
    L0 = float(jnp.sum(target**2))
    np.testing.assert_allclose(hist.step, k)
    np.testing.assert_allclose(hist.loss, (1 - 2 * eta) ** (2 * k) * L0, rtol=1e-12)
    np.testing.assert_allclose(hist.grad_norm, 2 * (1 - 2 * eta) ** k * math.sqrt(L0), rtol=1e-12)
    np.testing.assert_allclose(w, target + (1 - 2 * eta) ** steps * (w0 - target), rtol=1e-12)
    assert hist.monitor is None


@pytest.mark.parametrize(("steps", "log_every"), [(50, 7), (45, 1), (3, 10)])
def test_fit_matches_python_loop_of_steps(steps, log_every):
    A = jnp.array([[3.0, 1.0], [1.0, 2.0]])
    params = {"u": jnp.array([1.0, -1.0]), "v": jnp.array(0.3)}
    loss = lambda p: p["u"] @ A @ p["u"] + jnp.sin(p["v"]) ** 2 + p["v"] * p["u"][0]
    opt = optax.adam(0.05)
    p_fit, hist = tl.train.fit(loss, params, opt, steps, log_every=log_every)
    p_loop, rows = python_loop(loss, params, opt, steps)
    assert tree_allclose(p_fit, p_loop, rtol=1e-5, atol=1e-6)
    idx = np.arange(0, steps, log_every)
    assert hist.loss.shape == (math.ceil(steps / log_every),)
    np.testing.assert_allclose(hist.loss, rows.loss[idx], rtol=1e-5)
    np.testing.assert_allclose(hist.grad_norm, rows.grad_norm[idx], rtol=1e-5)
    np.testing.assert_array_equal(hist.step, idx)


def test_monitor_is_recorded_every_log_every_steps():
    loss = quadratic_loss(jnp.ones(2))
    _, hist = tl.train.fit(loss, jnp.zeros(2), optax.sgd(0.1), 20, log_every=4, monitor=lambda w: {"w": w})
    _, rows = python_loop(loss, jnp.zeros(2), optax.sgd(0.1), 20)
    assert hist.monitor["w"].shape == (5, 2)
    # the monitored params at step k reproduce the recorded loss at step k
    np.testing.assert_allclose(jax.vmap(loss)(hist.monitor["w"]), rows.loss[::4], rtol=rtol_for(rows.loss))


def test_loss_with_key_gets_a_fresh_key_every_step():
    def loss(w, key):  # a random linear term: the gradient is the random vector
        return jnp.vdot(w, jax.random.normal(key, w.shape)) + jnp.sum(w**2)

    key = jax.random.key(3)
    w_fit, hist = tl.train.fit(loss, jnp.zeros(4), optax.sgd(0.1), 30, key=key)
    w_loop, rows = python_loop(loss, jnp.zeros(4), optax.sgd(0.1), 30, key=key, needs_key=True)
    np.testing.assert_allclose(w_fit, w_loop, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hist.grad_norm, rows.grad_norm, rtol=1e-5)
    # fresh keys: the gradient norms at w = 0 (first step) and later differ from step to step
    assert len(np.unique(np.round(np.asarray(hist.grad_norm), 5))) == 30
    # make_step with a batch and a key: loss(params, batch, key)
    step = tl.train.make_step(lambda w, b, k: loss(w, k) + jnp.vdot(w, b), optax.sgd(0.1), needs_key=True)
    state, m = step(tl.train.init_state(jnp.zeros(4), optax.sgd(0.1), key), jnp.ones(4))
    assert int(state.step) == 1
    assert m.loss.shape == ()


def test_vmap_over_seeds_matches_loop_over_seeds():
    def run(key):
        opt = tl.train.perturbed_gd(0.1, radius=1e-2, threshold=1e-3, key=key)
        return tl.train.fit(saddle, jnp.zeros(2), opt, 200, log_every=10)

    keys = jax.random.split(jax.random.key(0), 4)
    w_vmap, hist_vmap = jax.vmap(run)(keys)
    for i in range(4):
        w_i, hist_i = run(keys[i])
        np.testing.assert_allclose(w_vmap[i], w_i, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hist_vmap.loss[i], hist_i.loss, rtol=1e-5, atol=1e-6)
    # every seed escaped the saddle to one of the two minima, and the seeds differ
    np.testing.assert_allclose(jnp.abs(w_vmap[:, 1]), 0.5**0.5, atol=2e-2)
    assert len(np.unique(np.sign(np.asarray(w_vmap[:, 1])))) == 2


def test_vmap_over_initial_params_and_jit():
    targets = jnp.arange(6.0).reshape(3, 2)
    fit_one = lambda w0: tl.train.fit(quadratic_loss(jnp.ones(2)), w0, optax.sgd(0.1), 25)
    w_vmap, hist_vmap = jax.vmap(fit_one)(targets)
    w_jit, hist_jit = jax.jit(fit_one)(targets[1])
    for i in range(3):
        w_i, hist_i = fit_one(targets[i])
        np.testing.assert_allclose(w_vmap[i], w_i, rtol=1e-5)
        np.testing.assert_allclose(hist_vmap.loss[i], hist_i.loss, rtol=1e-5)
    np.testing.assert_allclose(w_jit, w_vmap[1], rtol=1e-5)
    np.testing.assert_allclose(hist_jit.loss, hist_vmap.loss[1], rtol=1e-5)


# ----------------------------------------------------------------------------- the NaN/inf guard


def test_guard_names_the_step_and_the_loss():
    # w: 1 -> 0.5 -> 1 - 1/sqrt 2 - ... goes negative at step 2, where sqrt is nan
    with raises(tl.train.NonFiniteError, match=r"the loss is nan at step 2 \(of 100\)"):
        tl.train.fit(lambda w: jnp.sum(jnp.sqrt(w)), jnp.ones(1), optax.sgd(1.0), 100)


def test_guard_names_the_gradient_norm():
    # sqrt|w - 1| is 0 at w = 1 but its derivative is infinite there
    loss = lambda w: jnp.sum(jnp.sqrt(jnp.abs(w - 1.0)))
    with raises(tl.train.NonFiniteError, match="gradient norm is inf at step 0"):
        tl.train.fit(loss, jnp.ones(1), optax.sgd(0.1), 10)
    # the error is a ValueError too
    with raises(ValueError, match="step 0"):
        tl.train.fit(loss, jnp.ones(1), optax.sgd(0.1), 10)


def test_guard_in_a_late_chunk_and_divergence():
    # GD on w^2 with eta = 1.5 multiplies w by -2 per step: float32 overflows after ~64 steps
    steps = 500
    with raises(tl.train.NonFiniteError, match="loss is inf at step") as info:
        tl.train.fit(lambda w: jnp.sum(w**2), jnp.ones(1), optax.sgd(1.5), steps)
    bad = int(str(info.value).split("at step ")[1].split(" ")[0])
    # |w_k| = 2^k and w^2 overflows float32 (max ~ 2^128) at the first k with 2k >= 128; the gradient
    # 2^(k+1) is still finite there (its norm is computed without squaring overflow)
    assert bad == 64


def test_guard_under_vmap_freezes_the_diverging_run():
    lrs = jnp.array([0.1, 1.5])
    ws, hist = jax.vmap(lambda lr: tl.train.fit(lambda w: jnp.sum(w**2), jnp.ones(1), optax.sgd(lr), 100))(
        lrs
    )
    assert bool(jnp.all(jnp.isfinite(ws)))  # frozen at the last params reached
    assert bool(jnp.all(jnp.isfinite(hist.loss[0])))
    assert not bool(jnp.isfinite(hist.loss[1, -1]))
    assert bool(jnp.isfinite(hist.loss[1, 0]))


def test_progress_bar(capsys):
    w, hist = tl.train.fit(quadratic_loss(jnp.ones(2)), jnp.zeros(2), optax.sgd(0.1), 60, progress=True)
    assert "60/60" in capsys.readouterr().err
    np.testing.assert_allclose(w, jnp.ones(2), atol=1e-4)


# ----------------------------------------------------------------------------- perturbed GD


def test_perturbed_gd_is_plain_gd_when_the_gradient_is_large():
    grads = {"a": jnp.array([1.0, 2.0]), "b": jnp.array(3.0)}
    pgd = tl.train.perturbed_gd(0.1, radius=1.0, threshold=0.5, key=jax.random.key(0))
    sgd = optax.sgd(0.1)
    u_p, state = pgd.update(grads, pgd.init(grads))
    u_s, _ = sgd.update(grads, sgd.init(grads))
    assert tree_allclose(u_p, u_s)
    assert int(state.num_perturbations) == 0
    assert int(state.count) == 1


def test_perturbation_is_uniform_in_the_ball():
    # For xi uniform in the p-ball of radius rho: (|xi|/rho)^p ~ Unif(0, 1) and E xi = 0.
    p, rho, n = 5, 0.3, 4000
    zeros = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    pgd = tl.train.perturbed_gd(0.1, radius=rho, threshold=1.0, key=jax.random.key(1))

    def draw(state, _):
        u, state = pgd.update(zeros, state)
        return state, jnp.concatenate([u["a"], u["b"]])

    state, xi = jax.lax.scan(draw, pgd.init(zeros), None, length=n)
    assert int(state.num_perturbations) == n
    t = (jnp.linalg.norm(xi, axis=1) / rho) ** p
    assert float(jnp.max(t)) <= 1.0 + 1e-5
    assert abs(float(jnp.mean(t)) - 0.5) <= MC_SIGMAS * math.sqrt(1 / 12 / n)
    # E xi_j = 0 with Var xi_j = rho^2 / (p + 2) per coordinate
    se = rho / math.sqrt((p + 2) * n)
    assert float(jnp.max(jnp.abs(jnp.mean(xi, axis=0)))) <= MC_SIGMAS * se


def test_min_interval_and_schedule():
    zeros = jnp.zeros(2)
    pgd = tl.train.perturbed_gd(
        optax.linear_schedule(1.0, 0.0, 10), 1e-3, 1e-2, jax.random.key(0), min_interval=4
    )
    state = pgd.init(zeros)
    counts = []
    for _ in range(10):
        _, state = pgd.update(zeros, state)
        counts.append(int(state.num_perturbations))
    assert counts == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]  # at steps 0, 4, 8
    u, _ = pgd.update(jnp.ones(2), pgd.init(zeros))  # schedule at count 0: lr = 1
    np.testing.assert_allclose(u, -jnp.ones(2))


def test_perturbed_gd_escapes_where_gd_stalls():
    w_gd, h_gd = tl.train.fit(saddle, jnp.zeros(2), optax.sgd(0.1), 300)
    assert float(jnp.max(jnp.abs(w_gd))) == 0.0
    assert float(jnp.max(jnp.abs(h_gd.loss))) == 0.0
    pgd = tl.train.perturbed_gd(0.1, radius=1e-3, threshold=1e-4, key=jax.random.key(2))
    w, hist = tl.train.fit(saddle, jnp.zeros(2), pgd, 300)
    assert float(saddle(w)) == pytest.approx(-0.25, abs=1e-4)
    assert float(hist.loss[-1]) < -0.24


# ----------------------------------------------------------------------------- bad input


def test_bad_input():
    loss = quadratic_loss(jnp.ones(2))
    w = jnp.zeros(2)
    with raises(ValueError, match="steps must be >= 1"):
        tl.train.fit(loss, w, optax.sgd(0.1), 0)
    with raises(TypeError, match="steps must be an int"):
        tl.train.fit(loss, w, optax.sgd(0.1), 10.0)
    with raises(ValueError, match="log_every must be >= 1"):
        tl.train.fit(loss, w, optax.sgd(0.1), 10, log_every=0)
    with raises(ValueError, match="loss must return a scalar of shape \\(\\), got shape \\(2,\\)"):
        tl.train.fit(lambda w: w**2, w, optax.sgd(0.1), 10)
    with raises(TypeError, match="loss must return a real floating scalar"):
        tl.train.fit(lambda w: jnp.sum(w > 0), w, optax.sgd(0.1), 10)
    with raises(TypeError, match="loss must be callable"):
        tl.train.fit(3.0, w, optax.sgd(0.1), 10)
    with raises(TypeError, match="optimizer must be an optax.GradientTransformation"):
        tl.train.fit(loss, w, 0.1, 10)
    with raises(ValueError, match="params contains NaN or inf"):
        tl.train.fit(loss, jnp.array([0.0, jnp.nan]), optax.sgd(0.1), 10)
    with raises(ValueError, match="learning_rate must be >= 0"):
        tl.train.perturbed_gd(-0.1, 1e-3, 1e-3, jax.random.key(0))
    with raises(ValueError, match="radius must be >= 0"):
        tl.train.perturbed_gd(0.1, -1e-3, 1e-3, jax.random.key(0))
    with raises(ValueError, match="threshold must be >= 0"):
        tl.train.perturbed_gd(0.1, 1e-3, -1.0, jax.random.key(0))
    with raises(ValueError, match="min_interval must be >= 1"):
        tl.train.perturbed_gd(0.1, 1e-3, 1e-3, jax.random.key(0), min_interval=0)
    with raises(TypeError, match="monitor must be callable"):
        tl.train.make_step(loss, optax.sgd(0.1), monitor=3)


def test_perturb_chained_with_sgd_draws_perturbed_gds_noise():
    """Two implementations: chain(perturb(rho / lr), sgd(lr)) and perturbed_gd(lr, rho) draw the same
    noise from the same key (opposite signs), perturb on the same steps, and step alike otherwise."""
    lr, rho, thr = 0.1, 0.05, 0.5
    key = jax.random.key(4)
    chained = optax.chain(tl.train.perturb(rho / lr, thr, key), optax.sgd(lr))
    pgd = tl.train.perturbed_gd(lr, rho, thr, key)
    s_c, s_p = chained.init({"w": jnp.zeros(3)}), pgd.init({"w": jnp.zeros(3)})
    grads = [{"w": jnp.array(g)} for g in ([0.1, 0.0, 0.2], [1.0, 2.0, 0.0], [0.0, 0.1, 0.0])]
    for g in grads:
        u_c, s_c = chained.update(g, s_c)
        u_p, s_p = pgd.update(g, s_p)
        noise_c, noise_p = u_c["w"] + lr * g["w"], u_p["w"] + lr * g["w"]
        np.testing.assert_allclose(noise_c, -noise_p, atol=1e-7)
    assert int(s_c[0].num_perturbations) == int(s_p.num_perturbations) == 2  # steps 1 and 3


def test_perturb_with_adam_escapes_a_strict_saddle():
    saddle = lambda w: w[0] ** 2 - w[1] ** 2 + w[1] ** 4
    with_noise = optax.chain(tl.train.perturb(1e-2, 1e-4, jax.random.key(0)), optax.adam(0.05))
    w, _ = tl.train.fit(saddle, jnp.zeros(2), with_noise, 400)
    w0, _ = tl.train.fit(saddle, jnp.zeros(2), optax.adam(0.05), 400)
    assert float(jnp.abs(w0).max()) == 0.0  # Adam alone never leaves the saddle
    assert abs(abs(float(w[1])) - 2**-0.5) < 0.05  # perturbed, it reaches a minimum


# ----------------------------------------------------------------------------- minibatches


def _regression(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((n, d)), jnp.float32)
    y = jnp.asarray(rng.standard_normal(n), jnp.float32)
    return x, y


def _mse(w, batch):
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def test_batch_size_n_equals_the_full_batch():
    x, y = _regression()
    opt = optax.adam(0.05)
    w_closed, h_closed = tl.train.fit(lambda w: _mse(w, (x, y)), jnp.zeros(3), opt, 30)
    for batch_size in (None, x.shape[0]):
        w_data, h_data = tl.train.fit(_mse, jnp.zeros(3), opt, 30, data=(x, y), batch_size=batch_size)
        np.testing.assert_array_equal(np.asarray(w_data), np.asarray(w_closed))
        np.testing.assert_array_equal(np.asarray(h_data.loss), np.asarray(h_closed.loss))


def test_minibatches_visit_every_row_once_per_epoch():
    n, bs = 12, 4
    rows = jnp.arange(n, dtype=jnp.float32)
    seen = [np.asarray(_batch(rows, jax.random.key(7), jnp.asarray(t), n, bs)) for t in range(2 * n // bs)]
    epochs = np.stack(seen).reshape(2, n)
    for e in range(2):
        assert sorted(epochs[e].tolist()) == list(range(n))
    assert epochs[0].tolist() != epochs[1].tolist()  # a fresh permutation every epoch
    # fit with sgd(1) on sum(w[batch]) lowers each w_i by 1 every time row i is drawn: 2 epochs -> -2 each
    w, _ = tl.train.fit(
        lambda w, b: jnp.sum(w[b.astype(jnp.int32)]),
        jnp.zeros(n),
        optax.sgd(1.0),
        2 * n // bs,
        data=rows,
        batch_size=bs,
        batch_key=jax.random.key(7),
    )
    np.testing.assert_array_equal(np.asarray(w), -2.0 * np.ones(n))


def test_minibatch_sgd_converges_to_the_least_squares_solution():
    x, y = _regression(1, n=64)
    w_star = np.linalg.lstsq(np.asarray(x), np.asarray(y), rcond=None)[0]
    w, _ = tl.train.fit(_mse, jnp.zeros(3), optax.sgd(0.02, momentum=0.9), 3000, data=(x, y), batch_size=16)
    np.testing.assert_allclose(np.asarray(w), w_star, atol=0.05)


def test_minibatch_bad_input():
    x, y = _regression()
    with raises(ValueError, match="batch_size must be <= n = 12"):
        tl.train.fit(_mse, jnp.zeros(3), optax.sgd(0.1), 5, data=(x, y), batch_size=13)
    with raises(ValueError, match="batch_size must be >= 1"):
        tl.train.fit(_mse, jnp.zeros(3), optax.sgd(0.1), 5, data=(x, y), batch_size=0)
    with raises(ValueError, match="same leading axis"):
        tl.train.fit(_mse, jnp.zeros(3), optax.sgd(0.1), 5, data=(x, y[:-1]), batch_size=4)
    with raises(ValueError, match="batch_size needs data"):
        tl.train.fit(lambda w: _mse(w, (x, y)), jnp.zeros(3), optax.sgd(0.1), 5, batch_size=4)
