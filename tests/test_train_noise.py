"""perturbed_gd samples its noise only on the steps that perturb; the iterates do not depend on that."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import taylorlib as tl


def test_radius_zero_is_plain_gradient_descent():
    loss = lambda w: jnp.sum((w - 1.0) ** 2) + 0.1 * jnp.sum(w**4)
    w0 = jnp.linspace(-1.0, 1.0, 5)
    w_pgd, _ = tl.train.fit(loss, w0, tl.train.perturbed_gd(0.05, 0.0, 0.0, jax.random.key(0)), 30)
    w_sgd, _ = tl.train.fit(loss, w0, optax.sgd(0.05), 30)
    assert jnp.allclose(w_pgd, w_sgd, rtol=1e-6, atol=0)  # equal up to the fusion of w - lr g


def _primitives(jaxpr) -> list[str]:
    """Names of every primitive in a jaxpr, descending into sub-jaxprs except cond branches."""
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn.primitive.name)
        if eqn.primitive.name == "cond":
            continue
        for v in eqn.params.values():
            inner = getattr(v, "jaxpr", None)
            if inner is not None:
                out += _primitives(getattr(inner, "jaxpr", inner))
    return out


def _random_draws(jaxpr) -> list[str]:
    return [p for p in _primitives(jaxpr) if p in {"random_bits", "threefry2x32", "random_wrap"}]


def test_noise_is_drawn_only_inside_the_perturbing_branch():
    """The uniform-ball draw sits in one branch of a cond (skipped on plain steps), never outside it."""
    opt = tl.train.perturbed_gd(0.1, 1e-2, 1e-3, jax.random.key(0))
    g = jnp.ones(3)
    closed = jax.make_jaxpr(lambda g, s: opt.update(g, s))(g, opt.init(g))
    assert _random_draws(closed.jaxpr) == []  # nothing random outside the cond (a key split is not a draw)
    conds = [e for e in closed.jaxpr.eqns if e.primitive.name == "cond"]
    assert len(conds) == 1
    draws = [bool(_random_draws(b.jaxpr)) for b in conds[0].params["branches"]]
    assert sorted(draws) == [False, True]  # one branch samples the noise, the other returns zeros


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
