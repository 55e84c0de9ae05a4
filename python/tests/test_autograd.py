"""okto.backward (okto/autograd.h) against central finite differences of the same graph's loss.

Each case records a forward pass and a scalar loss over marked parameters
(Tensor.requires_grad), then okto.backward; one graph does both. The finite differences
rewrite one parameter element at a time (x +- h, h = 1e-2) and replay the graph, so the
reference is the device's own forward in float32: with smooth losses of order 1 the central
difference's truncation and rounding errors stay below 2e-3, the tolerance used
(|grad - fd| <= 2e-3 * max(1, max |fd|) over 5 random elements of each parameter)."""

import numpy as np
import pytest

import okto
from conftest import make

H = 1e-2
TOL = 2e-3


def check_grads(ctx, rng, params, forward, coords=5):
    """forward(g) records the loss (one element) from params; checks okto.backward."""
    for p in params:
        p.requires_grad = True
    g = okto.Graph(ctx)
    loss = forward(g)
    grads = okto.backward(g, loss, params)
    lossv = g.download(loss)
    g.run()
    got = [d.numpy().astype(np.float64) for d in grads]
    for p, gp in zip(params, got):
        base = p.numpy()
        flat = base.reshape(-1)
        picks = rng.choice(flat.size, size=min(coords, flat.size), replace=False)
        fd = []
        for i in picks:
            vals = []
            for sgn in (1, -1):
                pert = flat.copy()
                pert[i] += sgn * H
                p.write(pert.reshape(base.shape))
                g.run()
                vals.append(float(lossv[0]))
            fd.append((vals[0] - vals[1]) / (2 * H))
        p.write(base)
        fd = np.array(fd)
        approx = gp.reshape(-1)[picks]
        scale = max(1.0, float(np.abs(fd).max()))
        assert np.abs(approx - fd).max() <= TOL * scale, (p.shape, approx, fd)
    g.close()
    return got


def test_mlp_matmul_bias_gelu_cross_entropy(ctx, rng):
    x, _ = make(ctx, rng, (6, 5), "f32")
    w1, _ = make(ctx, rng, (5, 7), "f32", -0.5, 0.5)
    b1, _ = make(ctx, rng, 7, "f32")
    w2, _ = make(ctx, rng, (7, 4), "f32", -0.5, 0.5)
    labels = ctx.tensor(rng.integers(0, 4, 6).astype(np.int32))

    def fwd(g):
        h, a, lo, loss = ctx.empty((6, 7)), ctx.empty((6, 7)), ctx.empty((6, 4)), ctx.empty(1)
        g.matmul(h, x, w1).zip(h, h, b1, "add").map(a, h, "gelu_tanh").matmul(lo, a, w2)
        g.cross_entropy(loss, lo, labels)
        return loss

    check_grads(ctx, rng, [w1, b1, w2], fwd)


def test_layernorm_attention_on_views(ctx, rng):
    B, T, Hh, D = 2, 5, 2, 3
    x, _ = make(ctx, rng, (B, T, Hh * D), "f32")
    lw, _ = make(ctx, rng, Hh * D, "f32", 0.5, 1.5)
    lb, _ = make(ctx, rng, Hh * D, "f32")
    wqkv, _ = make(ctx, rng, (Hh * D, 3 * Hh * D), "f32", -0.5, 0.5)

    def fwd(g):
        n, qkv = ctx.empty((B, T, Hh * D)), ctx.empty((B, T, 3 * Hh, D))
        g.layernorm(n, x, lw, lb)
        g.matmul(qkv.reshape(B, T, 3 * Hh * D), n, wqkv)
        q, k, v = (qkv.slice(2, i * Hh, Hh).permute(0, 2, 1, 3) for i in range(3))
        o, sq, loss = ctx.empty((B, Hh, T, D)), ctx.empty((B, Hh, T, D)), ctx.empty(1)
        g.attention(o, q, k, v, causal=True).map(sq, o, "square").reduce_all(loss, sq, "sum")
        return loss

    check_grads(ctx, rng, [lw, lb, wqkv], fwd)


def test_conv_pool_cross_entropy(ctx, rng):
    x, _ = make(ctx, rng, (2, 2, 6, 6), "f32")
    w, _ = make(ctx, rng, (3, 2, 3, 3), "f32", -0.5, 0.5)
    b, _ = make(ctx, rng, 3, "f32")
    labels = ctx.tensor(np.array([1, 2], np.int32))

    def fwd(g):
        y, r = ctx.empty((2, 3, 6, 6)), ctx.empty((2, 3, 6, 6))
        p, a, loss = ctx.empty((2, 3, 3, 3)), ctx.empty((2, 3)), ctx.empty(1)
        g.conv2d(y, x, w, b, 1, 1).map(r, y, "tanh").avg_pool2d(p, r, 2, 2)
        g.global_avg_pool2d(a, p).cross_entropy(loss, a, labels)
        return loss

    check_grads(ctx, rng, [w, b], fwd)


def test_embedding_rmsnorm_concat_log_softmax(ctx, rng):
    table, _ = make(ctx, rng, (9, 4), "f32")
    rw, _ = make(ctx, rng, 4, "f32", 0.5, 1.5)
    extra, _ = make(ctx, rng, (5, 2), "f32")
    ids = ctx.tensor(np.array([3, 1, 3, 8, 0], np.int32))
    pick, _ = make(ctx, rng, (5, 6), "f32")  # a fixed weighting of the log-probabilities

    def fwd(g):
        e, n, cat = ctx.empty((5, 4)), ctx.empty((5, 4)), ctx.empty((5, 6))
        ls, m, loss = ctx.empty((5, 6)), ctx.empty((5, 6)), ctx.empty(1)
        g.embedding(e, table, ids).rmsnorm(n, e, rw).concat(cat, [n, extra], 1)
        g.log_softmax(ls, cat).zip(m, ls, pick, "mul").reduce_all(loss, m, "mean")
        return loss

    check_grads(ctx, rng, [table, rw, extra], fwd)


def test_batched_matmul_broadcast_and_softmax(ctx, rng):
    a, _ = make(ctx, rng, (3, 4, 5), "f32")
    w, _ = make(ctx, rng, (5, 6), "f32", -0.5, 0.5)  # one matrix for the whole batch
    t, _ = make(ctx, rng, (3, 4, 6), "f32")

    def fwd(g):
        c, s, m, loss = (ctx.empty((3, 4, 6)), ctx.empty((3, 4, 6)), ctx.empty((3, 4, 6)),
                         ctx.empty(1))
        g.matmul(c, a, w).softmax(s, c).zip(m, s, t, "mul").reduce_all(loss, m, "sum")
        return loss

    check_grads(ctx, rng, [a, w], fwd)


def test_accumulate_and_unused_parameter(ctx, rng):
    x, rx = make(ctx, rng, (4, 3), "f32")
    unused, _ = make(ctx, rng, 3, "f32")
    for p in (x, unused):
        p.requires_grad = True
    g = okto.Graph(ctx)
    sq, loss = ctx.empty((4, 3)), ctx.empty(1)
    g.map(sq, x, "square").reduce_all(loss, sq, "sum")
    dx, du = okto.backward(g, loss, [x, unused])
    okto.backward(g, loss, [x], grads=[dx], accumulate=True)  # dx += the same again
    g.run()
    np.testing.assert_allclose(dx.numpy(), 4 * rx, rtol=1e-6)
    assert not du.numpy().any()


def test_requires_grad_is_the_storage_s(ctx, rng):
    t, _ = make(ctx, rng, (4, 3), "f32")
    v = t[1:3]
    assert not v.requires_grad
    t.requires_grad = True
    assert v.requires_grad and t.T.requires_grad
    t.requires_grad = False
    assert not v.requires_grad


def test_i32_cannot_be_marked(ctx):
    with pytest.raises(okto.InvalidArgument, match="i32"):
        ctx.zeros(3, "i32").requires_grad = True


def test_backward_errors(ctx, rng):
    x, _ = make(ctx, rng, 4, "f32")
    loss = ctx.empty(1)
    g = okto.Graph(ctx).reduce_all(loss, x, "sum")
    with pytest.raises(okto.InvalidArgument, match="okto_backward") as e:
        okto.backward(g, loss, [x])  # x was not marked
    assert "params[0]" in str(e.value) or "requires" in str(e.value)
    with pytest.raises(okto.InvalidArgument):
        okto.backward(g, loss, [])
    with pytest.raises(okto.InvalidArgument, match="2 gradients for 1"):
        okto.backward(g, loss, [x], grads=[ctx.empty(4), ctx.empty(4)])
    with pytest.raises(okto.InvalidArgument, match="okto.Graph"):
        okto.backward("graph", loss, [x])


TWICE = r"""
__kernel void twice(__global float *y, ulong yo, __global const float *x, ulong xo)
{ size_t i = get_global_id(0); y[yo + i] = 2 * x[xo + i]; }
__kernel void twice_rw(__global float *y, ulong yo)
{ size_t i = get_global_id(0); y[yo + i] = 2 * y[yo + i]; }
"""


def test_backward_through_a_user_kernel_is_refused(ctx, rng):
    x, _ = make(ctx, rng, 3, "f32")
    x.requires_grad = True
    k = okto.Kernel(ctx, TWICE, "twice")
    y, loss = ctx.empty(3), ctx.empty(1)
    g = okto.Graph(ctx).launch_kernel(k, 3, [okto.W(y), okto.R(x)]).reduce_all(loss, y)
    with pytest.raises(okto.InvalidArgument, match="has no gradient") as e:
        okto.backward(g, loss, [x])
    assert "okto_launch" in str(e.value)


def test_backward_through_an_in_place_user_kernel_is_refused(ctx, rng):
    # the kernel reads the old value too (RW), so it is on the gradient's path and has no rule
    x, _ = make(ctx, rng, 3, "f32")
    x.requires_grad = True
    k = okto.Kernel(ctx, TWICE, "twice_rw")
    y, loss = ctx.empty(3), ctx.empty(1)
    g = okto.Graph(ctx).copy(y, x).launch_kernel(k, 3, [okto.RW(y)]).reduce_all(loss, y)
    with pytest.raises(okto.InvalidArgument, match="has no gradient"):
        okto.backward(g, loss, [x])
