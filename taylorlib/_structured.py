r"""The structured empirical NTK of :func:`taylorlib.nets.mlp` (private; public as ``tl.ntk.mlp_ntk``).

For the layer :math:`h_{l+1} = \sigma(z_l)`, :math:`z_l = W_l h_l/\sqrt{n_l} + b_l`, and the readout
:math:`f = a^\top h_L/\sqrt{n_L}`, the gradient of output :math:`f_c` with respect to :math:`W_l` is the outer
product :math:`\delta_{l,c}\, h_l^\top/\sqrt{n_l}` with the back-propagated error
:math:`\delta_{l,c} = \partial f_c/\partial z_l`. The Frobenius product of two outer products factors, so

.. math:: \Theta_{cc'}(x, x') = \delta_{cc'}\frac{h_L\cdot h_L'}{n_L}
   + \sum_l \Big(\frac{h_l\cdot h_l'}{n_l} + [\text{bias}]\Big)\;\delta_{l,c}\cdot\delta_{l,c'}',

a sum over layers of (input Gram) ⊙ (back-propagated Gram): no per-sample Jacobian is formed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import activations as _act
from ._checks import check_float_leaves, check_pair
from .typing import Array, Float, Params


def _check_mlp_params(params: Any) -> tuple[int, int]:
    """Validate ``tl.nets.mlp`` parameters; return ``(d, k)``."""
    if not isinstance(params, dict) or "hidden" not in params or "a" not in params:
        raise TypeError(
            "params must be a tl.nets.mlp dict {'hidden': ({'W', 'b'}, ...), 'a': (n_L,) or (n_L, k)}"
        )
    hidden = params["hidden"]
    if not isinstance(hidden, Sequence) or len(hidden) == 0:
        raise TypeError(
            "params['hidden'] must be a non-empty sequence of layer dicts {'W': (n_out, n_in), 'b'}"
        )
    prev = None
    for i, layer in enumerate(hidden):
        if not isinstance(layer, dict) or "W" not in layer:
            raise TypeError(f"params['hidden'][{i}] must be a dict with 'W' (and optionally 'b')")
        W = layer["W"]
        if jnp.ndim(W) != 2 or (prev is not None and W.shape[1] != prev):
            raise ValueError(
                f"params['hidden'][{i}]['W'] must have shape (n_{i + 1}, {prev if prev else 'd'}), "
                f"got {tuple(jnp.shape(W))}"
            )
        if "b" in layer and jnp.shape(layer["b"]) != (W.shape[0],):
            raise ValueError(
                f"params['hidden'][{i}]['b'] must have shape ({W.shape[0]},), got {tuple(jnp.shape(layer['b']))}"
            )
        prev = W.shape[0]
    a = params["a"]
    if jnp.ndim(a) not in (1, 2) or jnp.shape(a)[0] != prev:
        raise ValueError(f"params['a'] must have shape ({prev},) or ({prev}, k), got {tuple(jnp.shape(a))}")
    return int(hidden[0]["W"].shape[1]), 1 if jnp.ndim(a) == 1 else int(jnp.shape(a)[1])


def _forward_backward(params, x, act, dact):
    """Layer inputs ``h_l`` (n, n_l) and back-propagated errors ``delta_l`` (n, k, n_{l+1})."""
    hs, zs = [x], []
    for layer in params["hidden"]:
        z = hs[-1] @ layer["W"].T / math.sqrt(hs[-1].shape[-1])
        if "b" in layer:
            z = z + layer["b"][None, :]
        zs.append(z)
        hs.append(act(z))
    a = params["a"].reshape(params["a"].shape[0], -1)  # (n_L, k)
    delta = dact(zs[-1])[:, None, :] * (a.T / math.sqrt(a.shape[0]))[None]
    deltas = [delta]
    for i in range(len(zs) - 1, 0, -1):
        W = params["hidden"][i]["W"]
        delta = dact(zs[i - 1])[:, None, :] * (delta @ W) / math.sqrt(W.shape[1])
        deltas.append(delta)
    return hs, deltas[::-1]


@functools.partial(jax.jit, static_argnames=("act", "trace", "same"))
def _mlp_ntk(params, x1, x2, act, trace, same):
    dact = _act.derivative(act, 1)
    hs1, ds1 = _forward_backward(params, x1, act, dact)
    hs2, ds2 = (hs1, ds1) if same else _forward_backward(params, x2, act, dact)
    n1, n2, k = x1.shape[0], x2.shape[0], ds1[0].shape[1]
    readout = hs1[-1] @ hs2[-1].T / hs1[-1].shape[-1]
    K = readout if trace else readout[:, :, None, None] * jnp.eye(k, dtype=readout.dtype)[None, None]
    for layer, h1, h2, d1, d2 in zip(params["hidden"], hs1[:-1], hs2[:-1], ds1, ds2, strict=True):
        inputs = h1 @ h2.T / h1.shape[-1]
        if "b" in layer:
            inputs = inputs + 1.0
        if trace:  # mean over outputs of delta_c . delta'_c: one matmul over (output, neuron) pairs
            back = d1.reshape(n1, -1) @ d2.reshape(n2, -1).T / k
            K = K + inputs * back
        else:
            K = K + inputs[:, :, None, None] * jnp.einsum("iaw,jbw->ijab", d1, d2)
    return K


def mlp_ntk(
    params: Params,
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    *,
    activation: Any,
    trace_axes: Sequence[int] = (-1,),
) -> Float[Array, "n1 n2"] | Float[Array, "n1 n2 k k"]:
    r"""The exact empirical NTK of a :func:`taylorlib.nets.mlp` without forming Jacobians.

    .. math:: \Theta_{cc'}(x, x') = \delta_{cc'}\frac{h_L\cdot h_L'}{n_L}
       + \sum_{l=0}^{L-1}\Big(\frac{h_l\cdot h_l'}{n_l} + [\text{bias}]\Big)\,
       \delta_{l,c}(x)\cdot\delta_{l,c'}(x'),

    with :math:`h_l` the input of layer ``l`` (:math:`h_0 = x`) and :math:`\delta_{l,c} = \partial f_c /
    \partial z_l` its back-propagated error: a sum over layers of (input Gram) ⊙ (back-propagated Gram).
    Cost: one forward pass and ``k`` backward passes of the batch, :math:`O(n k \sum_l n_l n_{l+1})`, and
    Grams :math:`O(n_1 n_2 k \sum_l (n_l + n_{l+1}))`, against :math:`O(n_1 n_2 k p)` for the Gram of
    per-sample Jacobians (``p`` parameters, :math:`p \approx \sum_l n_l n_{l+1}`).

    Args:
        params: parameters of ``tl.nets.mlp(widths, activation, bias, out_dim)``.
        x1: ``(n1, d)`` inputs; x2: ``(n2, d)`` or ``None`` for ``x1``.
        activation: the network's activation (name or callable).
        trace_axes: ``(-1,)`` for the mean over outputs ``(n1, n2)``; ``()`` for ``(n1, n2, k, k)``.

    Returns:
        The kernel, equal to :func:`taylorlib.ntk.empirical_ntk` of the same network.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> net = tl.nets.mlp((16, 16), "tanh", out_dim=2)
        >>> p = net.init(jax.random.key(0), 3)
        >>> x = jax.random.normal(jax.random.key(1), (4, 3))
        >>> K = tl.ntk.mlp_ntk(p, x, activation="tanh", trace_axes=())
        >>> K_ad = tl.ntk.empirical_ntk(net.apply, p, x, trace_axes=())
        >>> K.shape, bool(abs(K - K_ad).max() < 1e-4 * abs(K_ad).max())
        ((4, 4, 2, 2), True)
    """
    from .ntk import check_trace_axes

    trace = check_trace_axes(trace_axes)
    d, _ = _check_mlp_params(params)
    same = x2 is None
    x1, x2 = check_pair(x1, x2, d=d)
    check_float_leaves(params, "params")
    act = _act.get(activation)
    return _mlp_ntk(params, x1, x2, act=act, trace=trace, same=same)
