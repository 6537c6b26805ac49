"""perturbed_gd samples its noise only on the steps that perturb; the iterates do not depend on that."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import taylorlib as tl


def test_radius_zero_is_plain_gradient_descent():
    loss = lambda w: jnp.sum((w - 1.0) ** 2) + 0.1 * jnp.sum(w**4)
    w0 = jnp.linspace(-1.0, 1.0, 5)
    w_pgd, _ = tl.train.fit(loss, w0, tl.train.perturbed_gd(0.05, 0.0, 0.0, jax.random.key(0)), 30)
    w_sgd, _ = tl.train.fit(loss, w0, optax.sgd(0.05), 30)
    assert jnp.allclose(w_pgd, w_sgd, rtol=1e-6, atol=0)  # equal up to the fusion of w - lr g


def _updates(opt, grads):
    """The updates of ``opt`` for a sequence of gradients (one state carried through), and the final state."""
    state = opt.init(grads[0])
    update = jax.jit(opt.update)
    out = []
    for g in grads:
        u, state = update(g, state)
        out.append(u)
    return jnp.stack(out), state


#: Monte Carlo acceptance in standard errors: measured max 2.52 over 21 seed offsets (~1.5x).
MC_SIGMAS = 4.0
GRADS = jax.random.normal(jax.random.key(7), (6, 4))  # norms ~ 2, far above the thresholds below


def test_a_threshold_that_never_triggers_gives_plain_sgd_and_ignores_the_key():
    """With a threshold below every gradient norm no step perturbs: the updates are plain SGD's bitwise and
    do not depend on the key (no random bits reach the updates)."""
    runs = [_updates(tl.train.perturbed_gd(0.1, 0.5, 1e-3, jax.random.key(s)), GRADS) for s in (0, 1)]
    sgd = optax.sgd(0.1)
    plain = jnp.stack([sgd.update(g, sgd.init(g))[0] for g in GRADS])
    assert jnp.array_equal(runs[0][0], plain)
    assert jnp.array_equal(runs[1][0], plain)
    assert int(runs[0][1].num_perturbations) == 0
    # the chained perturb transform: the gradient passes through unchanged, whatever the key
    for s in (0, 1):
        u, _ = _updates(tl.train.perturb(0.5, 1e-3, jax.random.key(s)), GRADS)
        assert jnp.array_equal(u, GRADS)


def test_a_threshold_that_always_triggers_draws_key_dependent_noise():
    """The contrast of the test above: when every step perturbs, two keys give different updates."""
    a, state = _updates(tl.train.perturbed_gd(0.1, 0.5, 1e3, jax.random.key(0)), GRADS)
    b, _ = _updates(tl.train.perturbed_gd(0.1, 0.5, 1e3, jax.random.key(1)), GRADS)
    assert int(state.num_perturbations) == len(GRADS)
    assert not jnp.any(jnp.all(a == b, axis=1))


def test_the_perturbation_is_uniform_in_the_ball_of_radius():
    """Over many keys the noise xi = u + lr g of a perturbing step lies in the ball of ``radius``, has mean
    0 and radial law P(|xi| <= r rho) = r^p, i.e. (|xi| / rho)^p ~ Unif(0, 1). The tolerances are 4 standard
    errors of the sample means, computed from the spread measured in the same sample."""
    rho, lr, p, n = 0.3, 0.1, 4, 2000
    g = jnp.full((p,), 1e-3)  # below the threshold: the first step perturbs

    def noise(key):
        opt = tl.train.perturbed_gd(lr, rho, 1.0, key)
        return opt.update(g, opt.init(g))[0] + lr * g

    xi = np.asarray(jax.vmap(noise)(jax.random.split(jax.random.key(11), n)), np.float64)
    norms = np.linalg.norm(xi, axis=1)
    assert norms.max() <= rho * (1 + 1e-6)
    se_mean = xi.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(xi.mean(axis=0)) <= MC_SIGMAS * se_mean), (xi.mean(axis=0), se_mean)
    u = (norms / rho) ** p  # Unif(0, 1): mean 1/2, standard deviation 1/sqrt(12)
    assert abs(u.mean() - 0.5) <= MC_SIGMAS * u.std(ddof=1) / np.sqrt(n), u.mean()
    # directions are isotropic: E[xi xi^T] = E|xi|^2 / p * I
    prods = xi[:, :, None] * xi[:, None, :]
    se_cov = prods.std(axis=0, ddof=1) / np.sqrt(n)
    deviation = np.abs(prods.mean(axis=0) - np.mean(norms**2) / p * np.eye(p))
    assert np.all(deviation <= MC_SIGMAS * se_cov), deviation / se_cov


def test_update_is_the_same_with_and_without_vmap():
    opt = tl.train.perturbed_gd(0.1, 0.5, 1.0, jax.random.key(3))  # perturbs when |g| < 1
    grads = jnp.array([[0.1, 0.2], [3.0, 4.0]])  # the first perturbs, the second does not
    state = opt.init(grads[0])
    single = jnp.stack([opt.update(g, state)[0] for g in grads])
    batched = jax.vmap(lambda g: opt.update(g, state)[0])(grads)  # under vmap the cond runs both branches
    assert jnp.allclose(single, batched, atol=1e-7)
    assert not jnp.allclose(single[0], -0.1 * grads[0])  # perturbed
    assert jnp.array_equal(single[1], -0.1 * grads[1])  # a plain gradient step
    assert float(jnp.linalg.norm(single[0] + 0.1 * grads[0])) <= 0.5 + 1e-6  # the noise lies in the ball
