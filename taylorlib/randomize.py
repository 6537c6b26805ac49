r"""Bai–Lee sign randomization of the movement, and its exact expectations.

Each neuron's movement gets an independent Rademacher sign, :math:`W \mapsto \Sigma W` with
:math:`\Sigma = \mathrm{diag}(\varepsilon_r)`. Writing :math:`u_r = w_{0,r}\cdot x`, :math:`t_r = w_r\cdot x`,

.. math:: e_r = \frac{a_r[\sigma(u_r+t_r)+\sigma(u_r-t_r)]}{2\sqrt m}, \qquad
          o_r = \frac{a_r[\sigma(u_r+t_r)-\sigma(u_r-t_r)]}{2\sqrt m},

the randomized network is :math:`f_{W_0+\Sigma W}(x) = \sum_r (e_r + \varepsilon_r o_r)`, so exactly

.. math:: E_\Sigma f &= \sum_r e_r = f^{(0)} + f^{(2)} + f^{(4)} + \dots, \qquad
          \mathrm{Var}_\Sigma f = \sum_r o_r^2, \\
          E_\Sigma (f - y)^2 &= \Big(\sum_r e_r - y\Big)^2 + \sum_r o_r^2 .

Odd Taylor orders vanish in expectation and even orders are unchanged: the randomized network couples to the
quadratic model :math:`f^Q = f^{(2)}`.

References:
    Bai & Lee 2020 (arXiv:1910.01619); Allen-Zhu, Li & Liang 2019 (arXiv:1811.04918).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _two_layer
from . import activations as _act
from ._checks import as_float_array, check_callable, check_choice, check_finite, check_int, check_key
from ._deprecation import moved_names
from .quadratic import check_movement
from .typing import ApplyFn, Array, Float, Params, PRNGKeyArray

__all__ = [
    "sign_flip",
    "randomized_apply",
    "SignMoments",
    "sign_moments",
    "expected_square_loss",
    "mc_objective",
]

#: The order-k randomization moved to :mod:`taylorlib.higher_order` (deprecated spellings).
__getattr__ = moved_names(
    "randomize", dict.fromkeys(("order_k", "order_k_laws", "coupling_error", "CouplingError"), "higher_order")
)


def _is_array(x: Any) -> bool:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return True
    # a (nested) list of numbers is one array, as before pytrees were accepted
    return (
        isinstance(x, list | tuple)
        and all(isinstance(v, numbers.Number) for v in jax.tree_util.tree_leaves(x))
        and len(jax.tree_util.tree_leaves(x)) > 0
    )


def _default_where(path: Any, leaf: Any) -> bool:
    return jnp.ndim(leaf) >= 1


def _sign_groups(tree: Any, where: Callable | None, name: str) -> tuple[list, list[list[int]], list[int]]:
    """Selected leaves grouped by parent node: ``(paths, groups of leaf indices, group row counts)``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    if where is not None:
        check_callable(where, "where")
    pick = where if where is not None else _default_where
    groups: dict[tuple, list[int]] = {}
    for i, (path, leaf) in enumerate(flat):
        if not bool(pick(path, leaf)):
            continue
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"where selected the scalar leaf {name}{jax.tree_util.keystr(path)}: a sign is drawn per row "
                f"of the leading axis, so selected leaves need shape (m, ...), got shape ()"
            )
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{name}{jax.tree_util.keystr(path)} must be floating point, got dtype {dtype}")
        groups.setdefault(tuple(path[:-1]), []).append(i)
    if not groups:
        raise ValueError(
            f"where selects no leaf of {name}: it must select at least one leaf of shape (m, ...) "
            f"(the default selects every leaf with ndim >= 1)"
        )
    rows = []
    for parent, idx in groups.items():
        sizes = {jnp.shape(flat[i][1])[0] for i in idx}
        if len(sizes) != 1:
            shapes = {jax.tree_util.keystr(flat[i][0]): tuple(jnp.shape(flat[i][1])) for i in idx}
            raise ValueError(
                f"selected leaves under {name}{jax.tree_util.keystr(parent) or ' (root)'} share their signs, so "
                f"they need one leading (row) dimension m, shapes (m, ...); got {shapes}"
            )
        rows.append(sizes.pop())
    return [p for p, _ in flat], list(groups.values()), rows


def _flip(key, tree, groups, rows):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = list(leaves)
    for g, (idx, m) in enumerate(zip(groups, rows, strict=True)):
        k = key if len(groups) == 1 else jax.random.fold_in(key, g)
        signs = jax.random.rademacher(k, (m,), dtype=jnp.result_type(leaves[idx[0]]))
        for i in idx:
            leaf = leaves[i]
            leaves[i] = leaf * signs.astype(jnp.result_type(leaf)).reshape(
                (-1,) + (1,) * (jnp.ndim(leaf) - 1)
            )
    return jax.tree_util.tree_unflatten(treedef, leaves)


def sign_flip(key: PRNGKeyArray, dparams: Any, where: Callable | None = None) -> Any:
    r"""Multiply each row (neuron) of a movement by an independent Rademacher sign: :math:`\Sigma W`.

    For an array ``(m, ...)``, row ``r`` is multiplied by :math:`\varepsilon_r`. For a pytree, every leaf
    selected by ``where`` gets one sign per row of its leading axis, and the selected leaves under the same
    parent node (a layer's ``W`` and ``b``, or the two-layer net's ``W`` and ``a``) share their signs, so a
    neuron's incoming weights and bias flip together. Different parents draw independent signs
    (``fold_in(key, g)`` for the g-th parent in flattening order; with one parent, ``key`` itself, so the
    signs equal those of the array form).

    Args:
        key: PRNG key.
        dparams: ``(m, ...)`` array, or a pytree of movements.
        where: ``where(path, leaf) -> bool`` choosing the randomized leaves of a pytree (``path`` as in
            ``jax.tree_util.tree_flatten_with_path``); default: every leaf with ``ndim >= 1``.
            Unselected leaves are returned unchanged.

    Returns:
        The sign-flipped movement, same structure and shapes.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> W = jnp.ones((4, 2))
        >>> SW = tl.randomize.sign_flip(jax.random.key(0), W)
        >>> bool(jnp.all(jnp.abs(SW) == 1.0)), bool(jnp.all(SW[:, 0] == SW[:, 1]))
        (True, True)
        >>> layer = {"W": jnp.ones((3, 2)), "b": jnp.ones(3)}
        >>> out = tl.randomize.sign_flip(jax.random.key(1), layer)
        >>> bool(jnp.all(out["W"][:, 0] == out["b"]))   # a row of W and its bias share a sign
        True
    """
    check_key(key)
    if _is_array(dparams):
        if where is not None:
            raise TypeError("where selects leaves of a pytree; dparams is a single array (pass where=None)")
        W = as_float_array(dparams, "W")
        if W.ndim < 1 or W.shape[0] == 0:
            raise ValueError(f"W must have a non-empty leading (neuron) axis, got shape {tuple(W.shape)}")
        check_finite(W, "W")
        signs = jax.random.rademacher(key, (W.shape[0],), dtype=W.dtype)
        return W * signs.reshape((-1,) + (1,) * (W.ndim - 1))
    _, groups, rows = _sign_groups(dparams, where, "dparams")
    for leaf in jax.tree_util.tree_leaves(dparams):
        check_finite(leaf, "dparams")
    return _flip(key, dparams, groups, rows)


def randomized_apply(
    apply: ApplyFn, params0: Params, leaves: Sequence[str] = ("W",), where: Callable | None = None
) -> Callable:
    r"""The randomized network :math:`(\theta, x, \text{key}) \mapsto f_{\theta_0 + \Sigma(\theta - \theta_0)}(x)`.

    One sign per neuron is drawn from ``key`` and applied to the movement of every leaf named in ``leaves``
    (top-level keys of the parameter dict whose leading axis is the neuron axis); other leaves are used as
    given. For :func:`taylorlib.nets.two_layer` the default randomizes the first layer only, as Bai & Lee do.
    With ``where`` (see :func:`sign_flip`) the movement of any pytree is randomized leaf by leaf, e.g. a
    hidden layer of a nested :func:`taylorlib.nets.mlp`; ``where`` then replaces ``leaves``.

    Args:
        apply: ``apply(params, x)`` of a network with dict parameters.
        params0: the initialization :math:`\theta_0`.
        leaves: names of the randomized leaves (same leading dimension ``m``).
        where: ``where(path, leaf) -> bool`` selecting randomized leaves of any pytree, or ``None``.

    Returns:
        ``fn(params, x, key) -> (n,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(8, "softplus")
        >>> p0 = net.init(jax.random.key(0), 3)
        >>> p = {"W": p0["W"] + 0.1, "a": p0["a"]}
        >>> fr = tl.randomize.randomized_apply(net.apply, p0)
        >>> x = jnp.ones((2, 3))
        >>> fr(p, x, jax.random.key(1)).shape
        (2,)
        >>> deep = tl.nets.mlp((8, 8), "tanh")
        >>> q0 = deep.init(jax.random.key(0), 3)
        >>> first = lambda path, leaf: jax.tree_util.keystr(path).startswith("['hidden'][0]")
        >>> tl.randomize.randomized_apply(deep.apply, q0, where=first)(q0, x, jax.random.key(1)).shape
        (2,)
    """
    if where is not None:
        _, groups, rows = _sign_groups(params0, where, "params0")

        def fn_where(params, x, key):
            move = jax.tree_util.tree_map(jnp.subtract, params, params0)
            flipped = _flip(key, move, groups, rows)
            return apply(jax.tree_util.tree_map(jnp.add, params0, flipped), x)

        return fn_where
    if isinstance(leaves, str) or not all(isinstance(k, str) for k in leaves) or not leaves:
        raise TypeError(f"leaves must be a non-empty sequence of parameter names, got {leaves!r}")
    if not isinstance(params0, dict) or any(k not in params0 for k in leaves):
        raise ValueError(f"params0 must be a dict containing the randomized leaves {tuple(leaves)}")
    sizes = {jnp.shape(params0[k])[0] if jnp.ndim(params0[k]) else None for k in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"randomized leaves {tuple(leaves)} must share one leading (neuron) dimension, got {sizes}"
        )
    (m,) = sizes

    def fn(params, x, key):
        signs = jax.random.rademacher(key, (m,), dtype=jnp.result_type(params0[leaves[0]]))
        new = dict(params)
        for k in leaves:
            move = params[k] - params0[k]
            new[k] = params0[k] + move * signs.reshape((-1,) + (1,) * (move.ndim - 1))
        return apply(new, x)

    return fn


class SignMoments(NamedTuple):
    r"""Exact moments of the sign-randomized two-layer network over all :math:`2^m` sign patterns.

    Attributes:
        mean: ``(n,)`` :math:`E_\Sigma f = \sum_r e_r` (the even orders :math:`f^{(0)} + f^{(2)} + \dots`).
        variance: ``(n,)`` :math:`\mathrm{Var}_\Sigma f = \sum_r o_r^2`.
    """

    mean: jax.Array
    variance: jax.Array


def _even_odd(W0, a, W, x, act):
    u, t = x @ W0.T, x @ W.T
    plus, minus = act(u + t), act(u - t)
    scale = 2.0 * math.sqrt(W0.shape[0])
    return (plus + minus) @ a / scale, ((plus - minus) ** 2) @ (a * a) / scale**2


def sign_moments(
    params0: Params, W: Float[Array, "m d"], x: Float[Array, "n d"], *, activation: Any
) -> SignMoments:
    r"""Exact mean and variance over signs of :math:`f_{W_0 + \Sigma W}(x)` (even/odd split, no sampling).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(64, "softplus").init(jax.random.key(0), 4)
        >>> W = 0.3 * jax.random.normal(jax.random.key(1), (64, 4))
        >>> x = tl.data.sphere(jax.random.key(2), 5, 4)
        >>> mom = tl.randomize.sign_moments(p0, W, x, activation="softplus")
        >>> f0, f1, f2 = tl.quadratic.two_layer_terms(p0, W, x, activation="softplus", order=2)
        >>> bool(jnp.max(jnp.abs(mom.mean - f0 - f2)) < 1e-2)   # odd orders cancel
        True
    """
    W0, a, x = check_movement(params0, W, x)
    mean, var = _even_odd(W0, a, jnp.asarray(W), x, _act.get(activation))
    return SignMoments(mean, var)


@functools.partial(jax.jit, static_argnames=("act", "model"))
def _expected_square_loss(W0, a, W, x, y, act, model):
    if model == "network":
        mean, var = _even_odd(W0, a, W, x, act)
        return jnp.mean((mean - y) ** 2 + var)
    u, t = x @ W0.T, x @ W.T
    s0, s1, s2 = (_two_layer.summands(u, t, a, _act.derivative(act, k), k) for k in range(3))
    f0, f2 = jnp.sum(s0, axis=-1), jnp.sum(s2, axis=-1)
    lin_energy = jnp.sum(s1 * s1, axis=-1)  # the sign variance of f^(1)
    return jnp.mean((y - f0 - f2) ** 2 + lin_energy)


def expected_square_loss(
    params0: Params,
    W: Float[Array, "m d"],
    x: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    activation: Any,
    model: str = "taylor",
) -> Float[Array, ""]:
    r"""Exact expectation over all :math:`2^m` sign patterns of the randomized square loss, in closed form.

    ``model="taylor"`` (default) randomizes the second-order Taylor model
    :math:`f^{(0)} + f^{(1)}_{\Sigma W} + f^{(2)}_W`:

    .. math:: E_\Sigma\,\frac1n\sum_i (y_i - f^{(0)} - f^{(1)}_{\Sigma W} - f^{(2)})^2
       &= \frac1n\sum_i\Big[(y_i - f^{(0)} - f^{(2)})^2 \\
       &\qquad + \frac1m\sum_r \big(a_r\sigma'(w_{0,r}\cdot x_i)\,w_r\cdot x_i\big)^2\Big].

    ``model="network"`` is exact for the full network: :math:`\frac1n\sum_i[(\sum_r e_r - y_i)^2 + \sum_r o_r^2]`.

    Args:
        params0: ``{"W": (m, d), "a": (m,)}``.
        W: ``(m, d)`` movement.
        x: ``(n, d)`` inputs; y: ``(n,)`` labels.
        activation: the network's activation.
        model: ``"taylor"`` or ``"network"``.

    Returns:
        Scalar loss, differentiable in ``W``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> p0 = tl.nets.two_layer(8, "softplus").init(jax.random.key(0), 3)
        >>> W = 0.5 * jax.random.normal(jax.random.key(1), (8, 3))
        >>> x = tl.data.sphere(jax.random.key(2), 4, 3)
        >>> y = jnp.ones(4)
        >>> net = tl.nets.two_layer(8, "softplus").apply
        >>> signs = jnp.array([[(s >> r) & 1 for r in range(8)] for s in range(256)]) * 2.0 - 1.0
        >>> brute = jnp.mean(jax.vmap(lambda e: jnp.mean(
        ...     (net({"W": p0["W"] + e[:, None] * W, "a": p0["a"]}, x) - y) ** 2))(signs))
        >>> exact = tl.randomize.expected_square_loss(p0, W, x, y, activation="softplus", model="network")
        >>> bool(jnp.allclose(exact, brute, rtol=1e-5))
        True
    """
    model = check_choice(model, "model", ("taylor", "network"))
    W0, a, x = check_movement(params0, W, x)
    y = as_float_array(y, "y")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape (n,) = ({x.shape[0]},) to match x, got {tuple(y.shape)}")
    check_finite(y, "y")
    act = _act.get(activation)
    if model == "taylor":
        _act.require_order(act, 2, "the quadratic term of the randomized Taylor model")
    return _expected_square_loss(W0, a, jnp.asarray(W), x, y, act=act, model=model)


def mc_objective(
    loss: Callable[[Callable, Params], jax.Array],
    apply: ApplyFn,
    params0: Params,
    key: PRNGKeyArray,
    num_signs: int,
    leaves: Sequence[str] = ("W",),
    where: Callable | None = None,
) -> Callable[[Params], jax.Array]:
    r"""Monte Carlo estimate of :math:`E_\Sigma\,\ell(f_{\theta_0 + \Sigma(\theta-\theta_0)})` for any loss.

    Args:
        loss: ``loss(apply_fn, params) -> scalar`` evaluating a predictor ``apply_fn(params, x)`` on data it
            closes over, e.g. ``lambda f, p: jnp.mean((f(p, x) - y) ** 2)``.
        apply: the network's ``apply``.
        params0: the initialization.
        key: PRNG key; pass a fresh key every training step to resample the signs.
        num_signs: number of sign draws ``S >= 1``.
        leaves: randomized parameter leaves (see :func:`randomized_apply`).
        where: ``where(path, leaf) -> bool`` selecting randomized leaves of any pytree (see
            :func:`sign_flip`); replaces ``leaves`` when given.

    Returns:
        ``objective(params) -> scalar`` averaging ``loss`` over ``S`` sign patterns.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(6, "softplus")
        >>> p0 = net.init(jax.random.key(0), 2)
        >>> x, y = jnp.ones((3, 2)), jnp.zeros(3)
        >>> sq = lambda f, p: jnp.mean((f(p, x) - y) ** 2)
        >>> obj = tl.randomize.mc_objective(sq, net.apply, p0, jax.random.key(1), num_signs=4)
        >>> float(obj(p0))  # no movement: the randomized net is the initial net, f0 = 0
        0.0
    """
    num_signs = check_int(num_signs, "num_signs", minimum=1)
    check_callable(loss, "loss")
    check_callable(apply, "apply")
    check_key(key)
    rand = randomized_apply(apply, params0, leaves, where=where)
    keys = jax.random.split(key, num_signs)

    def objective(params):
        def one(k):
            return loss(lambda p, x: rand(p, x, k), params)

        return jnp.mean(jax.vmap(one)(keys))

    return objective
