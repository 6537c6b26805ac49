r"""Networks as ``Model(init, apply)`` pairs over dict pytrees.

The two-layer network follows the Bai & Lee convention

.. math:: f(x) = \frac{1}{\sqrt m} \sum_{r=1}^m a_r \, \sigma(w_r \cdot x),
   \qquad w_r \sim \mathcal N(0, I_d / d), \quad a_r = \pm 1,

so pre-activations are approximately standard Gaussian when :math:`\|x\| = \sqrt d`.
With ``symmetric=True`` the first ``m/2`` neurons are duplicated with opposite output
weights, so that :math:`f_{W_0} \equiv 0` at initialization.

References:
    Bai & Lee, *Beyond Linearization* (arXiv:1910.01619).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import activations as _act
from ._checks import as_float_array, check_finite, check_int, check_key, check_x
from ._conv import conv2d
from .typing import Array, Float, Model, PRNGKeyArray

__all__ = ["two_layer", "mlp", "cnn", "conv2d", "preactivations", "two_layer_inits"]


def preactivations(W: Float[Array, "m d"], x: Float[Array, "n d"]) -> Float[Array, "n m"]:
    """Pre-activations ``x @ W.T`` of a first layer, shape ``(n, m)``.

    Example:
        >>> import jax.numpy as jnp
        >>> import taylorlib as tl
        >>> tl.nets.preactivations(jnp.eye(2), jnp.array([[1.0, 2.0]])).tolist()
        [[1.0, 2.0]]
    """
    if jnp.ndim(W) != 2:
        raise ValueError(f"W must be 2-D with shape (m, d), got shape {tuple(jnp.shape(W))}")
    x = check_x(x, "x", d=jnp.shape(W)[1])
    return x @ W.T


def two_layer(width: int, activation: Any = "relu", symmetric: bool = True) -> Model:
    r"""The two-layer network of Bai & Lee with fixed ``±1`` output weights.

    Args:
        width: number of neurons ``m`` (even when ``symmetric=True``).
        activation: activation name or callable (see :mod:`taylorlib.activations`).
        symmetric: duplicate neurons with opposite output weights so that ``f ≡ 0`` at init.

    Returns:
        ``Model(init, apply)`` with ``init(key, d) -> {"W": (m, d), "a": (m,)}`` and
        ``apply(params, x: (n, d)) -> (n,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> model = tl.nets.two_layer(8, activation="softplus")
        >>> params = model.init(jax.random.key(0), 3)
        >>> params["W"].shape, params["a"].tolist()
        ((8, 3), [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0])
        >>> float(jnp.abs(model.apply(params, jnp.ones((2, 3)))).max())  # symmetric: f = 0
        0.0

    References:
        Bai & Lee 2020, arXiv:1910.01619.
    """
    m = check_int(width, "width", minimum=1)
    if not isinstance(symmetric, bool):
        raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
    if symmetric and m % 2:
        raise ValueError(f"width must be even when symmetric=True (neurons come in pairs), got {m}")
    act = _act.get(activation)

    def init(key: PRNGKeyArray, input_dim: int) -> dict:
        d = check_int(input_dim, "input_dim", minimum=1)
        check_key(key)
        k_w, k_a = jax.random.split(key)
        if symmetric:
            half = jax.random.normal(k_w, (m // 2, d)) / math.sqrt(d)
            W = jnp.concatenate([half, half], axis=0)
            a = jnp.concatenate([jnp.ones(m // 2), -jnp.ones(m // 2)])
        else:
            W = jax.random.normal(k_w, (m, d)) / math.sqrt(d)
            a = jax.random.rademacher(k_a, (m,)).astype(W.dtype)
        return {"W": W, "a": a}

    def apply(params: dict, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        _require(params, {"W": "(m, d)", "a": "(m,)"})
        W, a = params["W"], params["a"]
        x = check_x(x, "x", d=W.shape[-1])
        m = W.shape[0]
        if jnp.shape(a) != (m,):
            raise ValueError(
                f"params['a'] must have shape (m,) = ({m},) like params['W'], got {jnp.shape(a)}"
            )
        if m % 2:
            return act(x @ W.T) @ a / math.sqrt(m)
        # Two half-width sums of identical shape: with the symmetric init the second half is the first
        # with ``a`` negated, so the two partial sums are exact negatives and f_0 = 0 exactly (one
        # length-m dot product leaves round-off of order 1e-7 in float32).
        h = m // 2
        return (act(x @ W[:h].T) @ a[:h] + act(x @ W[h:].T) @ a[h:]) / math.sqrt(m)

    return Model(init, apply)


def mlp(widths: Sequence[int], activation: Any = "relu", bias: bool = True, out_dim: int = 1) -> Model:
    r"""A fully connected network in NTK parametrization with ``out_dim`` outputs.

    Layer ``l`` computes :math:`h_{l+1} = \sigma(W_l h_l / \sqrt{n_l} + b_l)` with standard
    Gaussian ``W_l`` and ``b_l``; the output is :math:`a \cdot h_L / \sqrt{n_L}`. The forward pass
    is a Python loop over layers (``jet`` has no rule for ``lax.scan``).

    Args:
        widths: hidden-layer widths, e.g. ``(256, 256)`` for a three-layer network.
        activation: activation name or callable.
        bias: include biases ``b_l``.
        out_dim: number of outputs ``q``. With ``q = 1`` the readout is ``a: (n_L,)`` and ``apply``
            returns ``(n,)`` (the scalar network of the earlier chapters); otherwise ``a: (n_L, q)`` and
            ``apply`` returns ``(n, q)``.

    Returns:
        ``Model(init, apply)`` with params ``{"hidden": ({"W", "b"}, ...), "a": (n_L,) or (n_L, q)}``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.mlp((16, 16), activation="tanh")
        >>> p = net.init(jax.random.key(0), 4)
        >>> [layer["W"].shape for layer in p["hidden"]], net.apply(p, jnp.ones((5, 4))).shape
        ([(16, 4), (16, 16)], (5,))
        >>> net3 = tl.nets.mlp((16,), out_dim=3)  # a vector output
        >>> net3.apply(net3.init(jax.random.key(0), 4), jnp.ones((5, 4))).shape
        (5, 3)
    """
    ws = _check_widths(widths, "widths")
    q = check_int(out_dim, "out_dim", minimum=1)
    act = _act.get(activation)
    head = (ws[-1],) if q == 1 else (ws[-1], q)

    def init(key: PRNGKeyArray, input_dim: int) -> dict:
        d = check_int(input_dim, "input_dim", minimum=1)
        check_key(key)
        hidden, a = _gaussian_layers(key, (d,) + ws, (), head, bias)
        return {"hidden": hidden, "a": a}

    def apply(params: dict, x: Float[Array, "n d"]) -> Array:
        _require(params, {"hidden": "a tuple of {'W': (n_l+1, n_l), 'b'} layers", "a": "(n_L,) or (n_L, q)"})
        h = check_x(x, "x", d=params["hidden"][0]["W"].shape[1])
        for layer in params["hidden"]:
            pre = h @ layer["W"].T / math.sqrt(h.shape[-1])
            if "b" in layer:
                pre = pre + layer["b"][None, :]
            h = act(pre)
        return _readout(h, params["a"])

    return Model(init, apply)


def cnn(
    channels: Sequence[int],
    activation: Any = "relu",
    out_dim: int = 1,
    kernel_size: int = 3,
    *,
    bias: bool = True,
    readout: str = "mean",
) -> Model:
    r"""A small convolutional network in NTK parametrization for image inputs ``(n, H, W, C)``.

    Layer ``l`` is a stride-1 ``"SAME"`` convolution with ``c_{l+1}`` output channels,
    :math:`h_{l+1} = \sigma(W_l * h_l / \sqrt{k^2 c_l} + b_l)`, with standard Gaussian ``W_l`` and
    ``b_l`` (``k`` = ``kernel_size``). The last feature map is averaged over the spatial positions
    (global average pooling, ``readout="mean"``) and read out by a dense head,
    ``a^T \bar h_L / \sqrt{c_L}``; with ``readout="flatten"`` the head reads every position,
    ``a^T \mathrm{vec}(h_L) / \sqrt{H W c_L}``, which keeps where a feature is (the image size is then
    fixed at ``init``). Convolutions are computed by :func:`conv2d`. Weights are
    stored output-channel first, ``W_l: (c_{l+1}, c_l, k, k)`` (``OIHW``), so the leading axis of every
    weight indexes a channel, as the rows of :func:`mlp`'s weights index neurons.

    Args:
        channels: output channels of the convolutional layers, e.g. ``(16, 16)``.
        activation: activation name or callable.
        out_dim: number of outputs ``q``; ``apply`` returns ``(n,)`` for ``q = 1``, else ``(n, q)``.
        kernel_size: odd spatial size ``k`` of every filter.
        bias: include biases ``b_l``.
        readout: ``"mean"`` (global average pooling) or ``"flatten"`` (a dense head on all positions).

    Returns:
        ``Model(init, apply)`` with ``init(key, input_dim)`` returning
        ``{"conv": ({"W": (c_1, C, k, k), "b": (c_1,)}, ...), "a": ...}`` and
        ``apply(params, x: (n, H, W, C))``. With ``readout="mean"``, ``input_dim`` is the number ``C``
        of input channels and ``a`` is ``(c_L,)`` or ``(c_L, q)``; with ``"flatten"``, ``input_dim`` is
        the image shape ``(H, W, C)`` and ``a`` is ``(H W c_L,)`` or ``(H W c_L, q)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.cnn((4, 4), activation="tanh", out_dim=10)
        >>> p = net.init(jax.random.key(0), 1)
        >>> p["conv"][1]["W"].shape, net.apply(p, jnp.ones((2, 8, 8, 1))).shape
        ((4, 4, 3, 3), (2, 10))
    """
    cs = _check_widths(channels, "channels")
    q = check_int(out_dim, "out_dim", minimum=1)
    k = check_int(kernel_size, "kernel_size", minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (SAME padding keeps the image centered), got {k}")
    act = _act.get(activation)
    if readout not in ("mean", "flatten"):
        raise ValueError(f"readout must be 'mean' or 'flatten', got {readout!r}")

    def init(key: PRNGKeyArray, input_dim: int | tuple[int, int, int]) -> dict:
        if readout == "flatten":
            if not (isinstance(input_dim, tuple | list) and len(input_dim) == 3):
                raise ValueError(
                    f"with readout='flatten', input_dim must be the image shape (H, W, C), got {input_dim!r}"
                )
            H, Wd, c0 = (check_int(v, "input_dim", minimum=1) for v in input_dim)
            features = H * Wd * cs[-1]
        else:
            c0 = check_int(input_dim, "input_dim", minimum=1)
            features = cs[-1]
        check_key(key)
        head = (features,) if q == 1 else (features, q)
        conv, a = _gaussian_layers(key, (c0,) + cs, (k, k), head, bias)
        return {"conv": conv, "a": a}

    def apply(params: dict, x: Float[Array, "n H W C"]) -> Array:
        _require(
            params, {"conv": "a tuple of {'W': (c_l+1, c_l, k, k), 'b'} layers", "a": "(c_L,) or (c_L, q)"}
        )
        c0 = params["conv"][0]["W"].shape[1]
        h = as_float_array(x, "x")
        if h.ndim != 4 or h.shape[-1] != c0 or h.shape[0] == 0:
            raise ValueError(
                f"x must be a batch of images with shape (n, H, W, {c0}) and n >= 1, "
                f"got shape {tuple(h.shape)}"
            )
        check_finite(h, "x")
        for layer in params["conv"]:
            W = layer["W"]
            pre = conv2d(h, W) / math.sqrt(W.shape[1] * W.shape[2] * W.shape[3])
            if "b" in layer:
                pre = pre + layer["b"][None, None, None, :]
            h = act(pre)
        if readout == "mean":
            return _readout(jnp.mean(h, axis=(1, 2)), params["a"])
        features = h.shape[1] * h.shape[2] * h.shape[3]
        if params["a"].shape[0] != features:
            raise ValueError(
                f"x has {h.shape[1]}x{h.shape[2]} positions, so the flatten readout needs "
                f"{features} rows in params['a'], which has {params['a'].shape[0]}: "
                "init with the image shape (H, W, C) of x"
            )
        return _readout(h.reshape(h.shape[0], features), params["a"])

    return Model(init, apply)


def _gaussian_layers(
    key: PRNGKeyArray, dims: tuple[int, ...], window: tuple[int, ...], head: tuple[int, ...], bias: bool
) -> tuple[tuple[dict, ...], jax.Array]:
    """Standard Gaussian layers ``W_l: (dims[l+1], dims[l], *window)`` (and ``b_l``) and a readout."""
    keys = jax.random.split(key, 2 * (len(dims) - 1) + 1)
    layers = []
    for i in range(len(dims) - 1):
        layer = {"W": jax.random.normal(keys[2 * i], (dims[i + 1], dims[i]) + window)}
        if bias:
            layer["b"] = jax.random.normal(keys[2 * i + 1], (dims[i + 1],))
        layers.append(layer)
    return tuple(layers), jax.random.normal(keys[-1], head)


def _require(params: Any, keys: dict[str, str]) -> None:
    """Clear errors for parameters that are not the dict ``init`` returns (instead of a bare KeyError)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be the dict returned by init, got {type(params).__name__}")
    missing = [k for k in keys if k not in params]
    if missing:
        want = ", ".join(f"{k!r}: {v}" for k, v in keys.items())
        raise ValueError(
            f"params is missing {missing} (has {sorted(map(str, params))}); expected the dict returned by "
            f"init, {{{want}}}"
        )


def _check_widths(widths: Any, name: str) -> tuple[int, ...]:
    if isinstance(widths, int) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise TypeError(f"{name} must be a non-empty sequence of ints, got {widths!r}")
    return tuple(check_int(w, f"{name}[{i}]", minimum=1) for i, w in enumerate(widths))


def _readout(h: Float[Array, "n c"], a: Array) -> Array:
    """Dense head in NTK parametrization: ``h @ a / sqrt(c)``, ``(n,)`` or ``(n, q)``."""
    return h @ a / math.sqrt(h.shape[-1])


def two_layer_inits(key: PRNGKeyArray, widths: Sequence[int], input_dim: int, num: int = 1) -> list[dict]:
    r"""Independent symmetric initializations of :func:`two_layer` networks of several widths, drawn at once.

    One symmetric network of width :math:`2\,\mathrm{num}\sum_j m_j/2` is initialized and its neuron pairs
    are cut into disjoint blocks, one block per (width, draw). Every returned network is therefore an
    independent draw from the law of ``two_layer(m, symmetric=True).init(key, d)`` (rows
    :math:`w_{0,r}\sim\mathcal N(0, I_d/d)`, the second half repeating the first with :math:`a_r = -1`),
    and the random-number generator is compiled once for all widths instead of once per shape. Use it for
    sweeps over widths and seeds (``jax.vmap`` over the leading axis).

    Args:
        key: PRNG key.
        widths: even widths :math:`m_j \ge 2`.
        input_dim: input dimension ``d``.
        num: number of independent draws per width.

    Returns:
        A list with one entry per width, ``{"W": (num, m_j, d), "a": (num, m_j)}``; entry ``[j]`` sliced
        at ``i`` on the leading axis is the ``i``-th draw of width ``m_j``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> inits = tl.nets.two_layer_inits(jax.random.key(0), [4, 8], 3, num=2)
        >>> [p["W"].shape for p in inits], inits[0]["a"][0].tolist()
        ([(2, 4, 3), (2, 8, 3)], [1.0, 1.0, -1.0, -1.0])
        >>> p = jax.tree_util.tree_map(lambda v: v[1], inits[1])  # the second width-8 draw
        >>> float(jnp.abs(tl.nets.two_layer(8).apply(p, jnp.ones((2, 3)))).max())  # symmetric: f_0 = 0
        0.0
    """
    if isinstance(widths, int) or not isinstance(widths, Sequence) or len(widths) == 0:
        raise TypeError(f"widths must be a non-empty sequence of even ints, got {widths!r}")
    ws = tuple(check_int(w, f"widths[{i}]", minimum=2) for i, w in enumerate(widths))
    odd = [w for w in ws if w % 2]
    if odd:
        raise ValueError(f"widths must be even (symmetric networks come in pairs), got {odd}")
    d = check_int(input_dim, "input_dim", minimum=1)
    num = check_int(num, "num", minimum=1)
    check_key(key)
    return _two_layer_inits(key, ws, d, num)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _two_layer_inits(key, widths, d, num):
    sizes = [num * (m // 2) for m in widths]
    total = sum(sizes)
    params = two_layer(2 * total).init(key, d)
    out, start = [], 0
    for m, size in zip(widths, sizes, strict=True):

        def block(v, start=start, size=size, m=m):
            first, second = v[start : start + size], v[total + start : total + start + size]
            shape = (num, m // 2) + v.shape[1:]
            return jnp.concatenate([first.reshape(shape), second.reshape(shape)], axis=1)

        out.append({"W": block(params["W"]), "a": block(params["a"])})
        start += size
    return out
