r"""Empirical neural tangent kernels.

.. math:: \Theta(x, x') = \langle \nabla_\theta f_\theta(x), \nabla_\theta f_\theta(x') \rangle.

:func:`empirical_ntk` works for any ``apply(params, x)`` that treats samples independently
(row ``i`` of the output depends only on row ``i`` of ``x``) with three methods:

* ``"jacobian"``: per-sample gradients (``vmap`` of ``grad``) in chunks of samples, then
  :math:`J_1 J_2^\top` leaf by leaf; memory is bounded by the chunk size.
* ``"ntvp"``: NTK-vector products :math:`v \mapsto J_1 (J_2^\top v)` by a ``vjp`` followed by a
  ``jvp``; never materializes :math:`J` (memory :math:`O(p)` per column).
* ``"auto"``: ``"jacobian"`` unless even a small chunk of Jacobian rows would not fit in memory.

:func:`two_layer_ntk` is the closed form for :func:`taylorlib.nets.two_layer` using matrix
products only (no autodiff).

References:
    Jacot, Gabriel & Hongler 2018 (arXiv:1806.07572); Novak et al. 2022, *Fast finite width
    neural tangent kernel* (arXiv:2206.08720).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import _tree
from . import activations as _act
from ._checks import (
    as_float_array,
    check_choice,
    check_finite,
    check_float_leaves,
    check_int,
    check_pair,
)
from ._ntk_jacobian import _leading, _ntk_jacobian
from ._structured import mlp_ntk
from .typing import ApplyFn, Array, Float, Params

__all__ = ["empirical_ntk", "ntk_vp", "two_layer_ntk", "mlp_ntk"]

_METHODS = ("auto", "jacobian", "ntvp")
#: Largest Jacobian block (elements) that one chunk may hold: 2^26 floats = 256 MiB in float32.
_MAX_BLOCK = 2**26
#: Default number of NTK columns computed at once by the ``"ntvp"`` method.
_NTVP_BATCH = 8


def check_inputs(x: Any, name: str) -> Any:
    """Validate a batch of inputs: an array ``(n, ...)`` or a pytree of such arrays with one ``n >= 1``."""
    if hasattr(x, "shape") or isinstance(x, list):
        x = as_float_array(x, name)
        leaves = [x]
    else:
        leaves = jax.tree_util.tree_leaves(x)
        if not leaves:
            raise ValueError(f"{name} must be an array (n, ...) or a pytree of such arrays, got {x!r}")
        if not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in leaves):
            raise TypeError(
                f"{name} must be an array (n, ...) or a pytree of arrays with a leading batch axis"
            )
        x = jax.tree_util.tree_map(jnp.asarray, x)
        leaves = jax.tree_util.tree_leaves(x)
    for a in leaves:
        if a.ndim == 0:
            raise ValueError(f"{name} must have a leading batch axis, shape (n, ...), got a scalar")
        if jnp.issubdtype(a.dtype, jnp.complexfloating):
            raise TypeError(f"{name} must be real, got dtype {a.dtype}")
    sizes = {a.shape[0] for a in leaves}
    if len(sizes) != 1:
        shapes = [tuple(a.shape) for a in leaves]
        raise ValueError(
            f"every leaf of {name} must have the same batch size n (shape (n, ...)), got {shapes}"
        )
    if sizes == {0}:
        raise ValueError(f"{name} must contain at least one sample, got shape {tuple(leaves[0].shape)}")
    for a in leaves:
        if jnp.issubdtype(a.dtype, jnp.floating):
            check_finite(a, name)
    return x


def check_input_pair(x1: Any, x2: Any) -> tuple[Any, Any]:
    """Validate ``x1`` and optional ``x2`` (``None`` means ``x1``): same structure and trailing shapes."""
    x1 = check_inputs(x1, "x1")
    if x2 is None:
        return x1, x1
    x2 = check_inputs(x2, "x2")
    t1, t2 = jax.tree_util.tree_structure(x1), jax.tree_util.tree_structure(x2)
    if t1 != t2:  # type: ignore[operator]  # PyTreeDef defines equality; its stub does not say so
        raise ValueError(f"x1 and x2 must have the same pytree structure, got {t1} and {t2}")
    for a, b in zip(jax.tree_util.tree_leaves(x1), jax.tree_util.tree_leaves(x2), strict=True):
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(
                f"x1 and x2 must have the same feature dimension (trailing shape): x2 must be "
                f"(n2, {', '.join(map(str, a.shape[1:]))}) like x1 {tuple(a.shape)}, got x2 {tuple(b.shape)}"
            )
    return x1, x2


def output_dim(apply: ApplyFn, params: Params, x: Any, name: str = "x1") -> int:
    """The output width ``k`` of ``apply(params, x)`` (``(n,)`` counts as ``k = 1``), checked by shape only."""
    n = _leading(x)
    try:
        out = jax.eval_shape(apply, params, x)
    except (TypeError, ValueError) as err:
        shapes = [tuple(a.shape) for a in jax.tree_util.tree_leaves(x)]
        shown = shapes[0] if len(shapes) == 1 else shapes
        raise ValueError(
            f"apply(params, {name}) failed for {name} of shape {shown}: the inputs' trailing shape must be "
            f"the one the parameters expect ({type(err).__name__}: {err})"
        ) from err
    shape = getattr(out, "shape", None)
    if shape is None or len(shape) not in (1, 2) or shape[0] != n:
        raise ValueError(
            f"apply(params, {name}) must return shape (n,) or (n, k) with n = {n}, got "
            f"{shape if shape is not None else type(out).__name__}"
        )
    return 1 if len(shape) == 1 else int(shape[1])


def check_trace_axes(trace_axes: Any) -> bool:
    """``True`` for the traced kernel ``(n1, n2)``, ``False`` for the full ``(n1, n2, k, k)`` one."""
    if isinstance(trace_axes, int) and not isinstance(trace_axes, bool):
        trace_axes = (trace_axes,)
    if not isinstance(trace_axes, tuple | list) or not all(
        isinstance(a, int) and not isinstance(a, bool) for a in trace_axes
    ):
        raise TypeError(f"trace_axes must be a tuple of ints, (-1,) or (), got {trace_axes!r}")
    axes = tuple(trace_axes)
    if axes == ():
        return False
    if axes in ((-1,), (1,)):
        return True
    raise ValueError(
        f"trace_axes out of range: the output of apply is (n, k), so trace_axes must be (-1,) (equivalently "
        f"(1,)) for an (n1, n2) kernel or () for the full (n1, n2, k, k) one, got {axes!r}"
    )


def ntk_vp(apply: ApplyFn, params: Params, x1: Any, x2: Any | None = None) -> Callable:
    r"""The NTK-vector product :math:`v \mapsto \Theta(x_1, x_2)\, v` without forming the Jacobian.

    Computed as a ``vjp`` through the network on ``x2`` (giving :math:`J_2^\top v`, a parameter
    pytree) followed by a ``jvp`` on ``x1``. For an ``(n, k)`` output, :math:`v` has the output's shape
    ``(n2, k)`` and the product is :math:`\sum_{j,b}\Theta(x_{1,i}, x_{2,j})_{ab} v_{jb}`, shape ``(n1, k)``.

    Args:
        apply: any ``apply(params, x)``.
        params: parameters.
        x1: ``(n1, ...)`` inputs (rows of the kernel), an array or a pytree of arrays.
        x2: ``(n2, ...)`` inputs (columns); ``None`` means ``x1``.

    Returns:
        A jitted function ``v: (n2,) -> (n1,)`` (or ``(n2, k) -> (n1, k)``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(32, activation="erf")
        >>> p = net.init(jax.random.key(0), 3)
        >>> x = jax.random.normal(jax.random.key(1), (5, 3))
        >>> K = tl.ntk.empirical_ntk(net.apply, p, x)
        >>> v = jnp.arange(5.0)
        >>> bool(jnp.allclose(tl.ntk.ntk_vp(net.apply, p, x)(v), K @ v, rtol=1e-4, atol=1e-4))
        True
    """
    if not callable(apply):
        raise TypeError(f"apply must be callable, got {type(apply).__name__}")
    x1, x2 = check_input_pair(x1, x2)
    k = output_dim(apply, params, x1, "x1")
    n2 = _leading(x2)
    shape = (n2,) if k == 1 and len(jax.eval_shape(apply, params, x2).shape) == 1 else (n2, k)

    def mv(v):
        v = jnp.asarray(v)
        if v.shape != shape:
            want = "(n2,)" if len(shape) == 1 else "(n2, k)"
            raise ValueError(
                f"v must have shape {want} = {shape} (the output's shape on x2), got {tuple(v.shape)}"
            )
        return _ntk_vp(apply, params, x1, x2, v)

    return mv


@functools.partial(jax.jit, static_argnums=(0,))
def _ntk_vp(apply, params, x1, x2, v):
    # params and inputs are arguments, not closure constants, so they are not baked into the program
    y2, pullback = jax.vjp(lambda p: apply(p, x2), params)
    (ct,) = pullback(v.astype(y2.dtype))
    return jax.jvp(lambda p: apply(p, x1), (params,), (ct,))[1]


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _ntk_ntvp(apply, params, x1, x2, batch, trace):
    y2, pullback = jax.vjp(lambda p: apply(p, x2), params)
    n2, k = y2.shape[0], (1 if y2.ndim == 1 else y2.shape[1])

    def column(e):
        (ct,) = pullback(e)
        y1 = jax.jvp(lambda p: apply(p, x1), (params,), (ct,))[1]
        return y1.reshape(y1.shape[0], -1)

    # one cotangent per output entry (j, b); cotangents must have the output's dtype, not x's
    eye = jnp.eye(n2 * k, dtype=y2.dtype).reshape((n2 * k,) + y2.shape)
    cols = jax.lax.map(column, eye, batch_size=batch)  # (n2 k, n1, k): [(j, b), i, a]
    full = cols.reshape(n2, k, cols.shape[1], k).transpose(2, 0, 3, 1)  # [i, j, a, b]
    if trace:
        return jnp.trace(full, axis1=2, axis2=3) / k
    return full


def empirical_ntk(
    apply: ApplyFn,
    params: Params,
    x1: Any,
    x2: Any | None = None,
    *,
    method: str = "auto",
    trace_axes: Sequence[int] = (-1,),
    chunk_size: int | None = None,
) -> Float[Array, "n1 n2"] | Float[Array, "n1 n2 k k"]:
    r"""The empirical NTK :math:`\Theta(x_1, x_2) = J(x_1) J(x_2)^\top` of any network.

    Inputs have a leading batch axis and any trailing shape (images ``(n, H, W, C)``, sequences), or are
    pytrees of such arrays. The output of ``apply`` may be ``(n,)`` (treated as ``(n, 1)``) or ``(n, k)``;
    :math:`\Theta(x, x')_{ab} = \langle\nabla_\theta f_a(x), \nabla_\theta f_b(x')\rangle`.

    With ``x2=None`` the kernel is symmetric: each block of the Jacobian method is computed once (the
    lower blocks are transposes). Blocks of ``chunk_size`` samples stream through the computation so that
    memory stays bounded; with more than one JAX device, every block's samples are split over a
    one-axis :class:`jax.sharding.Mesh` of all devices.

    Args:
        apply: any ``apply(params, x)`` acting on samples independently.
        params: the parameters at which the kernel is evaluated (any pytree).
        x1: ``(n1, ...)`` inputs, an array or a pytree of arrays.
        x2: ``(n2, ...)`` inputs with ``x1``'s trailing shapes, or ``None`` for ``x1``.
        method: ``"jacobian"``, ``"ntvp"`` or ``"auto"``.
        chunk_size: samples per Jacobian block (``"jacobian"``) or columns per batch (``"ntvp"``);
            ``None`` picks the largest size whose Jacobian block stays below 256 MiB.
        trace_axes: ``(-1,)`` (default) averages over the output axis, :math:`\frac1k\sum_a
            \Theta_{aa}`, shape ``(n1, n2)``; ``()`` returns the full ``(n1, n2, k, k)`` kernel
            (the convention of neural-tangents).

    Returns:
        ``(n1, n2)`` kernel matrix, or ``(n1, n2, k, k)`` with ``trace_axes=()``.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(64, activation="relu")
        >>> p = net.init(jax.random.key(0), 4)
        >>> x = tl.data.sphere(jax.random.key(1), 6, 4)
        >>> K = tl.ntk.empirical_ntk(net.apply, p, x)
        >>> K2 = tl.ntk.two_layer_ntk(p, x, activation="relu")
        >>> K.shape, bool(abs(K - K2).max() < 1e-4)
        ((6, 6), True)
        >>> tl.ntk.empirical_ntk(net.apply, p, x, trace_axes=()).shape
        (6, 6, 1, 1)

    References:
        Jacot et al. 2018 (arXiv:1806.07572); Novak et al. 2022 (arXiv:2206.08720).
    """
    method = check_choice(method, "method", _METHODS)
    if not callable(apply):
        raise TypeError(f"apply must be callable, got {type(apply).__name__}")
    trace = check_trace_axes(trace_axes)
    same = x2 is None
    x1, x2 = check_input_pair(x1, x2)
    check_float_leaves(params, "params")
    k = output_dim(apply, params, x1, "x1")
    if not same:
        output_dim(apply, params, x2, "x2")
    p = _tree.tree_size(params) * k  # Jacobian row length per sample
    if chunk_size is None:
        chunk = max(1, _MAX_BLOCK // max(p, 1))
    else:
        chunk = check_int(chunk_size, "chunk_size", minimum=1)
    if method == "auto":
        # Jacobian rows are cheap (one backward pass per output each) but take p floats; fall back to
        # products when even 8 rows of J would exceed the block budget.
        method = "jacobian" if p * 8 <= _MAX_BLOCK else "ntvp"
    if method == "jacobian":
        return _ntk_jacobian(apply, params, x1, x2, same, chunk, trace)
    # ntvp holds one parameter-sized cotangent per column in flight: by default push at most 8 columns at a
    # time so its peak memory stays far below the Jacobian's (benchmarks: 913 -> 144 MiB at p = 2^20).
    batch = chunk if chunk_size is not None else min(chunk, _NTVP_BATCH)
    return _ntk_ntvp(apply, params, x1, x2, max(1, min(batch, _leading(x2) * k)), trace)


def _two_layer_features(params, x, act, trainable):
    W, a = params["W"], params["a"]
    u = x @ W.T
    feats = {}
    if "W" in trainable:
        feats["W"] = _act.derivative(act, 1)(u) * a[None, :]
    if "a" in trainable:
        feats["a"] = act(u)
    return feats


@functools.partial(jax.jit, static_argnames=("act", "trainable", "same"))
def _two_layer_ntk(params, x1, x2, act, trainable, same=False):
    m = params["W"].shape[0]
    f1 = _two_layer_features(params, x1, act, trainable)
    # x2 is None: reuse the features (saves the second feature pass, ~20% at n = 256, m = 4096).
    f2 = f1 if same else _two_layer_features(params, x2, act, trainable)
    K = jnp.zeros((x1.shape[0], x2.shape[0]), dtype=x1.dtype)
    if "W" in trainable:
        K = K + (x1 @ x2.T) * (f1["W"] @ f2["W"].T)
    if "a" in trainable:
        K = K + f1["a"] @ f2["a"].T
    return K / m


def check_trainable(trainable: Any) -> tuple[str, ...]:
    """Validate a ``trainable`` subset of ``{"W", "a"}`` (shared with :mod:`taylorlib.kernels`)."""
    if isinstance(trainable, str) or not isinstance(trainable, Sequence | set | frozenset):
        raise TypeError(f"trainable must be a tuple of names from ('W', 'a'), got {trainable!r}")
    names = tuple(sorted(set(trainable)))
    bad = [t for t in names if t not in ("W", "a")]
    if bad or not names:
        raise ValueError(f"trainable must be a non-empty subset of ('W', 'a'), got {tuple(trainable)!r}")
    return names


def two_layer_ntk(
    params: Params,
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    activation: Any = "relu",
    trainable: Sequence[str] = ("W", "a"),
) -> Float[Array, "n1 n2"]:
    r"""Closed-form empirical NTK of :func:`taylorlib.nets.two_layer` (matrix products only).

    .. math::
        \Theta(x,x') = \underbrace{(x\cdot x')\,\frac1m\sum_r a_r^2\sigma'(w_r\cdot x)\sigma'(w_r\cdot x')}_{W}
        + \underbrace{\frac1m\sum_r \sigma(w_r\cdot x)\sigma(w_r\cdot x')}_{a}.

    Args:
        params: ``{"W": (m, d), "a": (m,)}``.
        x1: ``(n1, d)``; x2: ``(n2, d)`` or ``None``.
        activation: the network's activation.
        trainable: which blocks to include, a subset of ``("W", "a")``.

    Returns:
        ``(n1, n2)`` kernel. Cost :math:`O(n m d + n^2 m)`.

    Example:
        >>> import jax
        >>> import taylorlib as tl
        >>> net = tl.nets.two_layer(4096, activation="erf")
        >>> p = net.init(jax.random.key(0), 8)
        >>> x = tl.data.sphere(jax.random.key(1), 3, 8)
        >>> K = tl.ntk.two_layer_ntk(p, x, activation="erf", trainable=("W",))
        >>> Kinf = tl.kernels.ntk(x, activation="erf", trainable=("W",))
        >>> bool(abs(K - Kinf).max() < 0.1)
        True
    """
    if not isinstance(params, dict) or "W" not in params or "a" not in params:
        raise TypeError("params must be a two_layer dict {'W': (m, d), 'a': (m,)}")
    W = params["W"]
    if W.ndim != 2 or params["a"].shape != (W.shape[0],):
        raise ValueError(
            f"params['W'] must be (m, d) and params['a'] (m,), got {W.shape} and {params['a'].shape}"
        )
    same = x2 is None
    x1, x2 = check_pair(x1, x2, d=W.shape[1])
    check_float_leaves(params, "params")
    act = _act.get(activation)
    return _two_layer_ntk(params, x1, x2, act=act, trainable=check_trainable(trainable), same=same)
