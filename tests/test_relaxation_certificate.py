"""The certificate of chapter 3 (``tl.relaxation.objective``, ``certify``, ``Certificate``) against independent
computations: the objective against the randomized loss plus the regularizer (also traced over a batch of
instances), every field of the certificate against the function it comes from, the slack against a numpy
re-derivation of its four terms, the block rank against solutions of known rank, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import raises

import taylorlib as tl
from taylorlib import _relaxation_certificate

ACT = "softplus"
LAM = 1e-3
M_WIDTH, D, N = 16, 3, 20
RANK = 2


@pytest.fixture(scope="module")
def planted():
    """A small planted instance and an approximate SOSP of F from a short perturbed GD (as in chapter 3)."""
    inst = tl.relaxation.planted_instance(jax.random.key(0), M_WIDTH, D, N, activation=ACT, norm=2.0)
    F = tl.relaxation.objective(inst, LAM, activation=ACT)
    F_v = lambda V: F(tl.quadratic.to_movement(V))
    lr = tl.quadratic.learning_rate(M_WIDTH, D, 8.0)
    opt = tl.train.perturbed_gd(lr, 1e-2, 1e-4, jax.random.key(1), min_interval=50)
    V, _ = tl.train.fit(F_v, jnp.zeros((M_WIDTH, D)), opt, 1500)
    W = tl.quadratic.to_movement(V)
    stat = tl.landscape.stationarity(F, W, jax.random.key(2), M_WIDTH * D)  # Lanczos on all of R^P: exact
    cert = tl.relaxation.certify(inst, W, stat, lam=LAM, activation=ACT, rank=RANK, identity=True)
    return inst, W, stat, cert


def loss_plus_regularizer(inst, W, lam, model="taylor"):
    loss = tl.randomize.expected_square_loss(inst.params0, W, inst.x, inst.y, activation=ACT, model=model)
    return loss + tl.regularizers.bai_lee(W, lam)


@pytest.mark.parametrize("model", ["taylor", "network"])
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_objective_is_the_randomized_loss_plus_the_regularizer(planted, model, lam):
    inst = planted[0]
    F = tl.relaxation.objective(inst, lam, activation=ACT, model=model)
    for seed in range(2):
        W = 0.3 * jax.random.normal(jax.random.key(seed), (M_WIDTH, D))
        assert float(F(W)) == float(loss_plus_regularizer(inst, W, lam, model))
    grad = jax.grad(F)(W)
    assert bool(jnp.allclose(grad, jax.grad(lambda W: loss_plus_regularizer(inst, W, lam, model))(W)))
    assert float(F(jnp.zeros((M_WIDTH, D)))) == pytest.approx(float(jnp.mean(inst.y**2)), rel=1e-6)


def test_objective_traces_over_a_batch_of_instances(planted):
    """Chapter 3 vmaps the objective over planted instances (the step-size section)."""
    inst = planted[0]
    insts = [inst, inst._replace(y=0.5 * inst.y), inst._replace(x=-inst.x, y=inst.y + 1.0)]
    batch = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *insts)
    Ws = 0.3 * jax.random.normal(jax.random.key(4), (3, M_WIDTH, D))
    batched = jax.jit(jax.vmap(lambda inst, W: tl.relaxation.objective(inst, LAM, activation=ACT)(W)))
    values = np.asarray(batched(batch, Ws))
    one_by_one = [float(loss_plus_regularizer(i, W, LAM)) for i, W in zip(insts, Ws, strict=True)]
    np.testing.assert_allclose(values, one_by_one, rtol=1e-6)
    assert len(set(one_by_one)) == 3


def test_certificate_fields_against_their_sources(planted):
    inst, W, stat, c = planted
    F = tl.relaxation.objective(inst, LAM, activation=ACT)
    F0 = tl.relaxation.objective(inst, 0.0, activation=ACT)
    prob = tl.relaxation.lifted_problem(inst.params0, inst.x, inst.y, activation=ACT, lam=LAM)
    relax = tl.relaxation.solve(prob, rank=RANK)
    M_star = tl.relaxation.lift(inst.W_star)
    assert isinstance(c, tl.relaxation.Certificate)
    assert float(F(W)) == c.F
    assert float(F0(W)) == c.F0
    assert c.F0_star == float(F0(inst.W_star))
    assert c.F_saddle == pytest.approx(float(jnp.mean(inst.y**2)), rel=1e-6)
    reg = float(tl.regularizers.bai_lee(W, LAM))
    assert abs((c.F - c.F0) - reg) <= 1e-3 * reg  # float32 sums
    assert c.bound == relax.dual
    assert c.duality_gap == relax.gap
    assert c.self_bound == tl.relaxation.dual_bound(prob, tl.relaxation.lift(W))
    slack = tl.relaxation.landscape_slack(
        prob, W, M_star, grad_norm=float(stat.grad_norm), min_eigenvalue=float(stat.min_eigenvalue)
    )
    assert c.slack == slack.total
    assert c.identity == tl.relaxation.landscape_identity(F, prob, W, M_star).error
    assert (c.grad_norm, c.min_eigenvalue) == (float(stat.grad_norm), float(stat.min_eigenvalue))
    assert isinstance(c.rank, int)
    assert all(isinstance(v, float) for k, v in c._asdict().items() if k != "rank")


def test_certificate_at_an_sosp_is_a_certified_global_minimum(planted):
    """The chapter's claims on a small instance: bound <= F, F at the bound, rank one, identity, slack."""
    _, _, _, c = planted
    assert c.grad_norm < 1e-3
    assert c.min_eigenvalue > -1e-3
    assert c.bound <= c.F * (1 + 1e-6)  # the bound is a bound
    assert c.self_bound <= c.bound + c.duality_gap + 1e-6 * c.bound  # both bound the same optimum
    assert (c.F - c.bound) / (c.F_saddle - c.bound) < 1e-3  # the SOSP is (nearly) a global minimum
    assert c.rank == 1  # the relaxation is exact
    assert c.identity < 1e-4  # float32 round-off
    assert c.F0_star + c.slack >= c.F0  # the landscape inequality


def test_identity_discriminates_the_regularizer(planted):
    """The identity error is small only with the regularized F: without it the same check fails (so a certify
    that passed F0 to the identity would be caught)."""
    inst, W, _, c = planted
    prob = tl.relaxation.lifted_problem(inst.params0, inst.x, inst.y, activation=ACT, lam=LAM)
    F0 = tl.relaxation.objective(inst, 0.0, activation=ACT)
    wrong = tl.relaxation.landscape_identity(F0, prob, W, tl.relaxation.lift(inst.W_star)).error
    assert wrong > 100 * max(c.identity, 1e-7)


def test_certificate_without_identity(planted):
    inst, W, stat, c = planted
    plain = tl.relaxation.certify(inst, W, stat, lam=LAM, activation=ACT, rank=RANK)
    assert np.isnan(plain.identity)
    assert plain._replace(identity=c.identity) == c


def slack_numpy(inst, W, W_star, lam, grad_norm, min_eigenvalue):
    """The four terms of the slack re-derived in numpy from the Proposition of chapter 3 (M* = lift(W*))."""
    W0, a = np.asarray(inst.params0["W"], np.float64), np.asarray(inst.params0["a"], np.float64)
    x, W, W_star = (np.asarray(v, np.float64) for v in (inst.x, W, W_star))
    m = W0.shape[0]
    sig = 1.0 / (1.0 + np.exp(-(x @ W0.T)))
    sigma2 = sig * (1.0 - sig)  # softplus''
    gn = 2.0 * np.mean(np.sum(sigma2**2 * (x @ W.T) ** 2 * (x @ W_star.T) ** 2 / m, axis=1))
    s = np.sum(W * W, axis=1)
    S = np.sum(s * s)
    wMw = np.sum(W * W_star, axis=1) ** 2
    tr = np.sum(W_star * W_star, axis=1)
    reg = lam * (32 * np.sum(s * s * wMw) + 8 * S * np.sum(2 * wMw + s * tr)) - 8 * lam * S * S
    curv = max(0.0, -min_eigenvalue) * np.sum(tr)
    grad = grad_norm * np.linalg.norm(W)
    assert np.all(np.abs(a) == 1)
    return gn, reg, curv, grad


def test_slack_against_numpy_with_every_term_present(planted):
    """All four terms of the slack matter here, so dropping or mis-weighting any one of them fails."""
    inst = planted[0]
    lam = 1e-4
    W = 0.5 * inst.W_star + 0.2 * jax.random.normal(jax.random.key(5), (M_WIDTH, D))
    stat = tl.landscape.Stationarity(jnp.float32(0.05), jnp.float32(-0.02))
    c = tl.relaxation.certify(inst, W, stat, lam=lam, activation=ACT, rank=1, num_iter=50)
    terms = slack_numpy(inst, W, inst.W_star, lam, 0.05, -0.02)
    total = 0.5 * sum(terms)
    assert all(t > 0.02 * total for t in terms), terms
    assert c.slack == pytest.approx(total, rel=1e-5)
    convex = tl.landscape.Stationarity(jnp.float32(0.0), jnp.float32(0.3))  # no curvature or gradient charge
    c_convex = tl.relaxation.certify(inst, W, convex, lam=lam, activation=ACT, rank=1, num_iter=50)
    assert c_convex.slack == pytest.approx(0.5 * (terms[0] + terms[1]), rel=1e-5)


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e4])
@pytest.mark.parametrize("ranks", [(1, 1, 1), (1, 2, 1), (0, 3, 2)])
def test_rank_counts_the_largest_block_rank(planted, monkeypatch, ranks, scale):
    """``rank`` against relaxation solutions of known block ranks (the solver replaced by a stub); the
    threshold is relative, so the count does not depend on the scale of the solution."""
    inst, W, stat, _ = planted
    rng = np.random.default_rng(0)
    blocks = np.zeros((M_WIDTH, D, D))
    for r, k in enumerate(ranks):
        U = rng.standard_normal((D, k))
        blocks[r] = U @ U.T
    blocks[len(ranks) :] = np.asarray(tl.relaxation.lift(inst.W_star))[len(ranks) :]  # float32 rank one
    fake = tl.relaxation.Relaxation(scale * jnp.asarray(blocks, jnp.float32), 1.0, 0.5, 0.5, 1)
    monkeypatch.setattr(_relaxation_certificate, "solve", lambda prob, **kw: fake)
    c = tl.relaxation.certify(inst, W, stat, lam=LAM, activation=ACT)
    assert c.rank == max(ranks)
    assert (c.bound, c.duality_gap) == (0.5, 0.5)


def test_certificates_stack_field_wise(planted):
    c = planted[3]
    stacked = tl.relaxation.Certificate(*map(np.array, zip(c, c._replace(rank=2), strict=True)))
    assert stacked.F.shape == (2,)
    assert stacked.rank.tolist() == [1, 2]
    assert stacked.rank.dtype.kind == "i"


def test_bad_input(planted):
    inst, W, stat, _ = planted
    certify = lambda *args, **kw: tl.relaxation.certify(*args, **{"lam": LAM, "activation": ACT, **kw})
    with raises(TypeError, match="inst must be a PlantedInstance"):
        tl.relaxation.objective((inst.params0, inst.x, inst.y), LAM, activation=ACT)
    with raises(ValueError, match="lam must be >= 0"):
        tl.relaxation.objective(inst, -1.0, activation=ACT)
    with raises(ValueError, match="unknown model 'net'"):
        tl.relaxation.objective(inst, LAM, activation=ACT, model="net")
    with raises(ValueError, match="unknown activation 'softplsu'"):
        tl.relaxation.objective(inst, LAM, activation="softplsu")
    with raises(ValueError, match="vanishing derivative of order 2"):
        tl.relaxation.objective(inst, LAM, activation="relu")
    with raises(TypeError, match="inst must be a PlantedInstance"):
        certify(inst._asdict(), W, stat)
    with raises(ValueError, match=r"W must have shape \(m, d\) = \(16, 3\)"):
        certify(inst, W[:4], stat)
    with raises(ValueError, match="W contains NaN or inf"):
        certify(inst, jnp.full_like(W, jnp.nan), stat)
    with raises(TypeError, match="stat must be a tl.landscape.Stationarity"):
        certify(inst, W, (0.0, 0.0))
    batch = tl.landscape.Stationarity(jnp.zeros(2), jnp.zeros(2))
    with raises(ValueError, match=r"stat.grad_norm must be a scalar .* shape \(2,\)"):
        certify(inst, W, batch)
    with raises(ValueError, match="stat.min_eigenvalue must be finite"):
        certify(inst, W, tl.landscape.Stationarity(jnp.float32(0.0), jnp.float32(jnp.nan)))
    with raises(ValueError, match="stat.grad_norm must be >= 0"):
        certify(inst, W, tl.landscape.Stationarity(jnp.float32(-1.0), jnp.float32(0.0)))
    with raises(ValueError, match="lam must be >= 0"):
        certify(inst, W, stat, lam=-1.0)
    with raises(ValueError, match=r"rank must be <= 3"):
        certify(inst, W, stat, rank=4)
    with raises(TypeError, match="identity must be a bool"):
        certify(inst, W, stat, identity=1)
    with raises(ValueError, match="rank_tol must be > 0"):
        certify(inst, W, stat, rank_tol=0.0)
