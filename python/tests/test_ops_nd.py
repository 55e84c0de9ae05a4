"""The N-D op set (okto/ops.h: ops1 and ops2, batched matmul, the elementwise gradients)
against NumPy references in float64 computed from the inputs as the device holds them, on odd
shapes and on views (transposed, permuted, sliced). Tolerances: conftest.RTOL per dtype
(f32 1e-5, f16 2e-3, bf16 1e-2, relative to max(1, |ref|)), times a stated factor where an op
sums many terms in float32."""

import numpy as np
import pytest

import okto
from conftest import FLOATS, close, got, host, make


def run(ctx, record):
    g = okto.Graph(ctx)
    record(g)
    g.run()
    return g


def sm(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---- batched matmul -------------------------------------------------------------------------


@pytest.mark.parametrize("ashape,bshape", [((3, 5, 7), (7, 4)), ((2, 3, 5, 7), (1, 3, 7, 4)),
                                           ((5, 7), (2, 7, 3)), ((2, 1, 3, 7), (4, 7, 5))])
def test_batched_matmul_broadcasts(ctx, rng, ashape, bshape):
    a, ra = make(ctx, rng, ashape, "f32")
    b, rb = make(ctx, rng, bshape, "f32")
    ref = np.matmul(ra, rb)
    c = ctx.empty(ref.shape)
    run(ctx, lambda g: g.matmul(c, a, b))
    close(got(c), ref, "f32", 10)


def test_batched_matmul_transposed_views_and_gemm(ctx, rng):
    a, ra = make(ctx, rng, (3, 7, 5), "f32")  # used as a^T: [3, 5, 7]
    b, rb = make(ctx, rng, (3, 4, 7), "f32")  # used as b^T: [3, 7, 4]
    c0, rc = make(ctx, rng, (3, 5, 4), "f32")
    run(ctx, lambda g: g.gemm(c0, a.transpose(1, 2), b, alpha=0.5, beta=2.0, trans_b=True))
    ref = 0.5 * np.matmul(ra.transpose(0, 2, 1), rb.transpose(0, 2, 1)) + 2.0 * rc
    close(got(c0), ref, "f32", 10)


def test_matmul_batch_mismatch_raises(ctx, rng):
    a, _ = make(ctx, rng, (3, 5, 7), "f32")
    b, _ = make(ctx, rng, (2, 7, 4), "f32")
    c = ctx.empty((3, 5, 4))
    with pytest.raises(okto.InvalidArgument, match="okto_matmul"):
        okto.Graph(ctx).matmul(c, a, b)


# ---- elementwise gradients ------------------------------------------------------------------


def test_zip_backward_sums_broadcast_dims(ctx, rng):
    a, ra = make(ctx, rng, (4, 1, 5), "f32")
    b, rb = make(ctx, rng, (3, 1), "f32", 0.5, 2)
    dy, rdy = make(ctx, rng, (4, 3, 5), "f32")
    da, db = ctx.empty((4, 1, 5)), ctx.empty((3, 1))
    run(ctx, lambda g: g.zip_backward(da, db, dy, a, b, "div"))
    close(got(da), (rdy / rb).sum(1, keepdims=True), "f32", 10)
    close(got(db), (-rdy * ra / rb ** 2).sum((0, 2), keepdims=True)[0], "f32", 10)


@pytest.mark.parametrize("op,deriv", [("tanh", lambda x: 1 - np.tanh(x) ** 2),
                                      ("sigmoid", lambda x: sm2(x) * (1 - sm2(x))),
                                      ("square", lambda x: 2 * x), ("relu", lambda x: x > 0)])
def test_map_backward(ctx, rng, op, deriv):
    x, rx = make(ctx, rng, (3, 7), "f32")
    dy, rdy = make(ctx, rng, (3, 7), "f32")
    dx, r0 = make(ctx, rng, (3, 7), "f32")
    run(ctx, lambda g: g.map_backward(dx, dy, x, op, accumulate=True))
    close(got(dx), r0 + rdy * deriv(rx), "f32", 10)


def sm2(x):
    return 1 / (1 + np.exp(-x))


def test_sum_to(ctx, rng):
    x, rx = make(ctx, rng, (2, 3, 5), "f32")
    out = ctx.empty((3, 1))
    run(ctx, lambda g: g.sum_to(out, x))
    close(got(out), rx.sum((0, 2))[:, None], "f32", 10)


# ---- normalisation --------------------------------------------------------------------------


def ln_ref(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    return (x - mu) * rstd * w + b, mu[..., 0], rstd[..., 0]


@pytest.mark.parametrize("dt", FLOATS)
def test_layernorm_forward_and_backward(ctx, rng, dt):
    x, rx = make(ctx, rng, (2, 3, 13), dt)
    w, rw = make(ctx, rng, 13, dt)
    b, rb = make(ctx, rng, 13, dt)
    y, mean, rstd = ctx.empty((2, 3, 13), dt), ctx.empty(6), ctx.empty(6)
    dy, rdy = make(ctx, rng, (2, 3, 13), dt)
    dx, dw, db = ctx.empty((2, 3, 13), dt), ctx.empty(13, dt), ctx.empty(13, dt)
    run(ctx, lambda g: g.layernorm(y, x, w, b, 1e-5, mean=mean, rstd=rstd)
        .layernorm_backward(dx, dw, db, dy, x, w, mean, rstd))
    ry, rmu, rr = ln_ref(rx, rw, rb, 1e-5)
    close(got(y), host(ry, dt)[1], dt, 4)
    close(got(mean).reshape(2, 3), rmu, "f32", 4)
    close(got(rstd).reshape(2, 3), rr, "f32", 10)
    xh = (rx - rmu[..., None]) * rr[..., None]
    dxh = rdy * rw
    rdx = rr[..., None] * (dxh - dxh.mean(-1, keepdims=True)
                           - xh * (dxh * xh).mean(-1, keepdims=True))
    close(got(dx), rdx, dt, 20)
    close(got(dw), (rdy * xh).sum((0, 1)), dt, 20)
    close(got(db), rdy.sum((0, 1)), dt, 20)


def test_layernorm_on_a_transposed_view_without_affine(ctx, rng):
    x, rx = make(ctx, rng, (9, 4), "f32")  # normalised over the 9 of x^T
    y = ctx.empty((4, 9))
    run(ctx, lambda g: g.layernorm(y, x.T, eps=1e-3))
    close(got(y), ln_ref(rx.T, 1, 0, 1e-3)[0], "f32", 4)


def test_rmsnorm_forward_and_backward(ctx, rng):
    x, rx = make(ctx, rng, (5, 11), "f32")
    w, rw = make(ctx, rng, 11, "f32")
    dy, rdy = make(ctx, rng, (5, 11), "f32")
    y, rstd, dx, dw = ctx.empty((5, 11)), ctx.empty(5), ctx.empty((5, 11)), ctx.empty(11)
    run(ctx, lambda g: g.rmsnorm(y, x, w, 1e-6, rstd=rstd)
        .rmsnorm_backward(dx, dw, dy, x, w, rstd))
    r = 1 / np.sqrt((rx ** 2).mean(-1, keepdims=True) + 1e-6)
    close(got(y), rx * r * rw, "f32", 4)
    close(got(rstd), r[:, 0], "f32", 4)
    rdx = r * rdy * rw - rx * r ** 3 * (rdy * rw * rx).mean(-1, keepdims=True)
    close(got(dx), rdx, "f32", 20)
    close(got(dw), (rdy * rx * r).sum(0), "f32", 20)


def test_layernorm_bad_weight_shape_names_it(ctx, rng):
    x, _ = make(ctx, rng, (3, 8), "f32")
    w = ctx.zeros(7)
    with pytest.raises(okto.InvalidArgument, match="weight") as e:
        okto.Graph(ctx).layernorm(ctx.empty((3, 8)), x, w)
    assert "okto_layernorm" in str(e.value)


# ---- softmax family, cross-entropy ------------------------------------------------------------


def test_softmax_and_log_softmax_with_backward(ctx, rng):
    x, rx = make(ctx, rng, (3, 2, 17), "f32", -30, 30)
    dy, rdy = make(ctx, rng, (3, 2, 17), "f32")
    y, ly = ctx.empty((3, 2, 17)), ctx.empty((3, 2, 17))
    dx, dlx = ctx.empty((3, 2, 17)), ctx.empty((3, 2, 17))
    run(ctx, lambda g: g.softmax(y, x).log_softmax(ly, x).softmax_backward(dx, dy, y)
        .log_softmax_backward(dlx, dy, ly))
    ry = sm(rx)
    close(got(y), ry, "f32", 4)
    lref = rx - rx.max(-1, keepdims=True)
    lref = lref - np.log(np.exp(lref).sum(-1, keepdims=True))
    close(got(ly), lref, "f32", 4)
    close(got(dx), ry * (rdy - (rdy * ry).sum(-1, keepdims=True)), "f32", 10)
    close(got(dlx), rdy - ry * rdy.sum(-1, keepdims=True), "f32", 10)


def test_log_softmax_keeps_precision_far_below_flt_min(ctx):
    x = ctx.tensor(np.array([[0.0, -200.0, -1000.0]], np.float32))
    y = ctx.empty((1, 3))
    run(ctx, lambda g: g.log_softmax(y, x))
    close(got(y), [[0.0, -200.0, -1000.0]], "f32")


@pytest.mark.parametrize("ignore", [None, -100])
def test_cross_entropy_and_backward(ctx, rng, ignore):
    logits, rl = make(ctx, rng, (7, 5), "f32", -4, 4)
    lab = rng.integers(0, 5, 7).astype(np.int32)
    if ignore is not None:
        lab[[1, 4]] = ignore
    labels = ctx.tensor(lab)
    loss, stat, dl = ctx.empty(1), ctx.empty(14), ctx.empty((7, 5))
    dloss = ctx.tensor(np.array([2.0], np.float32))
    run(ctx, lambda g: g.cross_entropy(loss, logits, labels, ignore, stat=stat)
        .cross_entropy_backward(dl, dloss, logits, labels, stat, ignore))
    keep = lab != (ignore if ignore is not None else -(2 ** 31))
    p = sm(rl)
    rows = np.flatnonzero(keep)
    ref = -np.log(p[rows, lab[rows]]).mean()
    close(got(loss), [ref], "f32", 4)
    onehot = np.zeros_like(p)
    onehot[rows, lab[rows]] = 1
    rdl = 2.0 * (p - onehot) * keep[:, None] / keep.sum()
    close(got(dl), rdl, "f32", 10)


def test_cross_entropy_label_out_of_range_fails_the_run(ctx, rng):
    logits, _ = make(ctx, rng, (4, 3), "f32")
    labels = ctx.tensor(np.array([0, 1, 7, 2], np.int32))
    g = okto.Graph(ctx).cross_entropy(ctx.empty(1), logits, labels)
    with pytest.raises(okto.InvalidArgument, match="row 2"):
        g.run()


# ---- embedding, dropout, argmax ---------------------------------------------------------------


def test_embedding_and_backward(ctx, rng):
    table, rt = make(ctx, rng, (11, 6), "f32")
    ids_h = np.array([[3, 0, 3], [10, 5, 3]], np.int32)
    ids = ctx.tensor(ids_h)
    dout, rd = make(ctx, rng, (2, 3, 6), "f32")
    out, dt_ = ctx.empty((2, 3, 6)), ctx.empty((11, 6))
    run(ctx, lambda g: g.embedding(out, table, ids).embedding_backward(dt_, dout, ids,
                                                                       padding_idx=5))
    close(got(out), rt[ids_h], "f32")
    ref = np.zeros((11, 6))
    for t, i in enumerate(ids_h.ravel()):
        if i != 5:
            ref[i] += rd.reshape(6, 6)[t]
    close(got(dt_), ref, "f32", 4)


def test_embedding_bad_id_fails_the_run_naming_it(ctx, rng):
    table, _ = make(ctx, rng, (4, 3), "f32")
    ids = ctx.tensor(np.array([1, 4], np.int32))
    g = okto.Graph(ctx).embedding(ctx.empty((2, 3)), table, ids)
    with pytest.raises(okto.InvalidArgument, match="okto_embedding"):
        g.run()


def test_embedding_float_ids_refused(ctx, rng):
    table, _ = make(ctx, rng, (4, 3), "f32")
    with pytest.raises(okto.InvalidArgument, match="ids"):
        okto.Graph(ctx).embedding(ctx.empty((2, 3)), table, ctx.zeros(2))


def test_dropout_mask_scale_and_backward(ctx, rng):
    x, rx = make(ctx, rng, (64, 33), "f32", 0.5, 1.5)
    dy, rdy = make(ctx, rng, (64, 33), "f32")
    seed = ctx.tensor(np.array([12345, 678], np.int32))
    y, y2, dx = ctx.empty((64, 33)), ctx.empty((64, 33)), ctx.empty((64, 33))
    run(ctx, lambda g: g.dropout(y, x, 0.25, seed, 3).dropout_backward(dx, dy, 0.25, seed, 3)
        .seed_advance(seed).dropout(y2, x, 0.25, seed, 3))
    ry = got(y)
    kept = ry != 0
    assert abs(1 - kept.mean() - 0.25) < 0.03  # 2112 draws: 4 sigma is 0.038
    close(ry[kept], rx[kept] / 0.75, "f32")
    close(got(dx), np.where(kept, rdy / 0.75, 0), "f32")
    assert (got(y2) != 0).tolist() != kept.tolist()  # the advanced seed draws another mask
    assert got(seed).tolist() == [12346, 678]


def test_argmax_first_on_ties_and_views(ctx):
    a = np.array([[1, 3, 3, 0], [5, 5, 5, 5], [-1, -2, -0.5, -7]], np.float32)
    t = ctx.tensor(a)
    out, outT = ctx.empty(3, "i32"), ctx.empty(4, "i32")
    run(ctx, lambda g: g.argmax(out, t).argmax(outT, t.T))
    assert out.numpy().tolist() == [1, 0, 2]
    assert outT.numpy().tolist() == a.T.argmax(-1).tolist()


# ---- optimizers -----------------------------------------------------------------------------


def test_adamw_two_steps(ctx, rng):
    p, rp = make(ctx, rng, (5, 3), "f32")
    gr, rg = make(ctx, rng, (5, 3), "f32")
    m, v = ctx.zeros((5, 3)), ctx.zeros((5, 3))
    sched = ctx.tensor(np.array([0.01, 0, 0, 0], np.float32))
    g = okto.Graph(ctx).sched_advance(sched).adamw_prepare(sched, 0.9, 0.99) \
        .adamw(p, gr, m, v, sched, 0.9, 0.99, 1e-8, 0.1)
    g.run()
    g.run()
    rm, rv, w = np.zeros_like(rp), np.zeros_like(rp), rp.copy()
    for t in (1, 2):
        rm = 0.9 * rm + 0.1 * rg
        rv = 0.99 * rv + 0.01 * rg ** 2
        w = w * (1 - 0.01 * 0.1) - 0.01 / (1 - 0.9 ** t) * rm / (
            np.sqrt(rv) / np.sqrt(1 - 0.99 ** t) + 1e-8)
    close(got(p), w, "f32", 10)
    close(got(m), rm, "f32", 10)
    assert got(sched)[1] == 2


def test_sgd_momentum_nesterov_and_clip(ctx, rng):
    p, rp = make(ctx, rng, 7, "f32")
    gr, rg = make(ctx, rng, 7, "f32")
    buf = ctx.zeros(7)
    clip = ctx.empty(2)
    sched = ctx.tensor(np.array([0.1, 0, 0, 0], np.float32))
    g = okto.Graph(ctx).clip_grad_norm([gr], 0.5, clip) \
        .sgd(p, gr, sched, buf, momentum=0.9, weight_decay=0.01, nesterov=True,
             gscale=clip[0:1])
    g.run()
    norm = np.sqrt((rg ** 2).sum())
    scale = min(1, 0.5 / (norm + 1e-6))
    close(got(clip), [scale, norm], "f32", 4)
    d = rg * scale + 0.01 * rp
    rbuf = d
    close(got(p), rp - 0.1 * (d + 0.9 * rbuf), "f32", 4)


# ---- attention ------------------------------------------------------------------------------


def attn_ref(q, k, v, scale, causal):
    s = scale * np.einsum("bhqd,bhkd->bhqk", q, k)
    if causal:
        T = s.shape[-1]
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    mx = s.max(-1, keepdims=True)
    lse = mx[..., 0] + np.log(np.exp(s - mx).sum(-1))
    p = np.exp(s - lse[..., None])
    return np.einsum("bhqk,bhkd->bhqd", p, v), lse, p


@pytest.mark.parametrize("causal", [False, True])
def test_attention_forward_backward_on_fused_qkv_views(ctx, rng, causal):
    B, T, H, D = 2, 7, 3, 5
    qkv, rqkv = make(ctx, rng, (B, T, 3 * H, D), "f32")  # heads sliced and permuted out
    q, k, v = (qkv.slice(2, i * H, H).permute(0, 2, 1, 3) for i in range(3))
    rq, rk, rv = (rqkv[:, :, i * H:(i + 1) * H].transpose(0, 2, 1, 3) for i in range(3))
    o, lse = ctx.empty((B, H, T, D)), ctx.empty((B, H, T))
    dout, rdo = make(ctx, rng, (B, H, T, D), "f32")
    dq, dk, dv = (ctx.empty((B, H, T, D)) for _ in range(3))
    scale = 0.3
    run(ctx, lambda g: g.attention(o, q, k, v, scale, causal, lse=lse)
        .attention_backward(dq, dk, dv, dout, q, k, v, o, lse, scale, causal))
    ro, rlse, p = attn_ref(rq, rk, rv, scale, causal)
    close(got(o), ro, "f32", 10)
    close(got(lse), rlse, "f32", 10)
    rdv = np.einsum("bhqk,bhqd->bhkd", p, rdo)
    dp = np.einsum("bhqd,bhkd->bhqk", rdo, rv)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    close(got(dv), rdv, "f32", 20)
    close(got(dq), scale * np.einsum("bhqk,bhkd->bhqd", ds, rk), "f32", 20)
    close(got(dk), scale * np.einsum("bhqk,bhqd->bhkd", ds, rq), "f32", 20)


def test_attention_default_scale_and_cross_lengths(ctx, rng):
    q, rq = make(ctx, rng, (1, 2, 3, 4), "f32")
    k, rk = make(ctx, rng, (1, 2, 6, 4), "f32")
    v, rv = make(ctx, rng, (1, 2, 6, 4), "f32")
    o = ctx.empty((1, 2, 3, 4))
    run(ctx, lambda g: g.attention(o, q, k, v))
    close(got(o), attn_ref(rq, rk, rv, 0.5, False)[0], "f32", 10)


def test_attention_refusals(ctx, rng):
    q, _ = make(ctx, rng, (1, 1, 3, 4), "f32")
    k, _ = make(ctx, rng, (1, 1, 5, 4), "f32")
    with pytest.raises(okto.NotSupported, match="causal"):
        okto.Graph(ctx).attention(ctx.empty((1, 1, 3, 4)), q, k, k, causal=True)
    big = ctx.empty((1, 1, 2, 129))
    with pytest.raises(okto.NotSupported, match="128"):
        okto.Graph(ctx).attention(ctx.empty((1, 1, 2, 129)), big, big, big)


# ---- convolution and pooling ----------------------------------------------------------------


def conv_ref(x, w, b, stride, pad, dil, dy=None):
    N, C, H, W = x.shape
    Co, _, KH, KW = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dil
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, Co, OH, OW))
    dxp, dwr = np.zeros_like(xp), np.zeros_like(w)
    for i in range(KH):
        for j in range(KW):
            patch = xp[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                       j * dw:j * dw + sw * (OW - 1) + 1:sw]  # [N, C, OH, OW]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
            if dy is not None:
                dwr[:, :, i, j] = np.einsum("nohw,nchw->oc", dy, patch)
                dxp[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                    j * dw:j * dw + sw * (OW - 1) + 1:sw] += np.einsum("nohw,oc->nchw", dy,
                                                                       w[:, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    dx = dxp[:, :, ph:ph + H, pw:pw + W]
    return y, dx, dwr


@pytest.mark.parametrize("stride,pad,dil", [((1, 1), (1, 1), (1, 1)), ((2, 1), (0, 2), (1, 2))])
def test_conv2d_forward_backward(ctx, rng, stride, pad, dil):
    x, rx = make(ctx, rng, (2, 3, 7, 6), "f32")
    w, rw = make(ctx, rng, (4, 3, 3, 2), "f32")
    b, rb = make(ctx, rng, 4, "f32")
    ry, _, _ = conv_ref(rx, rw, rb, stride, pad, dil)
    dy, rdy = make(ctx, rng, ry.shape, "f32")
    _, rdx, rdw = conv_ref(rx, rw, rb, stride, pad, dil, rdy)
    y, dx, dw, db = ctx.empty(ry.shape), ctx.empty(rx.shape), ctx.empty(rw.shape), ctx.empty(4)
    run(ctx, lambda g: g.conv2d(y, x, w, b, stride, pad, dil)
        .conv2d_backward(dx, dw, db, dy, x, w, stride, pad, dil))
    close(got(y), ry, "f32", 20)
    close(got(dx), rdx, "f32", 20)
    close(got(dw), rdw, "f32", 20)
    close(got(db), rdy.sum((0, 2, 3)), "f32", 20)


def test_conv2d_on_a_permuted_view_in_f16(ctx, rng):
    xh, rx = make(ctx, rng, (2, 5, 6, 3), "f16")  # NHWC storage, read as NCHW
    w, rw = make(ctx, rng, (2, 3, 3, 3), "f16")
    y = ctx.empty((2, 2, 5, 6), "f16")
    run(ctx, lambda g: g.conv2d(y, xh.permute(0, 3, 1, 2), w, None, 1, 1))
    ry = conv_ref(rx.transpose(0, 3, 1, 2), rw, None, (1, 1), (1, 1), (1, 1))[0]
    close(got(y), ry, "f16", 10)


def test_conv2d_window_larger_than_input_refused(ctx, rng):
    x, _ = make(ctx, rng, (1, 1, 2, 2), "f32")
    w, _ = make(ctx, rng, (1, 1, 3, 3), "f32")
    with pytest.raises(okto.InvalidArgument, match="okto_conv2d"):
        okto.Graph(ctx).conv2d(ctx.empty((1, 1, 1, 1)), x, w)


def pool_windows(x, k, s, p, fill):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    win = np.empty((N, C, OH, OW, k[0] * k[1]))
    for i in range(k[0]):
        for j in range(k[1]):
            win[..., i * k[1] + j] = xp[:, :, i:i + s[0] * (OH - 1) + 1:s[0],
                                        j:j + s[1] * (OW - 1) + 1:s[1]]
    return win, OH, OW


def test_max_pool2d_argmax_and_backward(ctx, rng):
    x, rx = make(ctx, rng, (2, 3, 7, 8), "f32")
    k, s, p = (3, 2), (2, 2), (1, 1)
    win, OH, OW = pool_windows(rx, k, s, p, -np.inf)
    y, am = ctx.empty((2, 3, OH, OW)), ctx.empty((2, 3, OH, OW), "i32")
    dy, rdy = make(ctx, rng, (2, 3, OH, OW), "f32")
    dx = ctx.empty(rx.shape)
    run(ctx, lambda g: g.max_pool2d(y, x, k, s, p, argmax=am)
        .max_pool2d_backward(dx, dy, am, k, s, p))
    close(got(y), win.max(-1), "f32")
    # argmax: the plane index of each window's first maximum
    wi = win.argmax(-1)
    oh, ow = np.meshgrid(np.arange(OH), np.arange(OW), indexing="ij")
    ih = oh * s[0] - p[0] + wi // k[1]
    iw = ow * s[1] - p[1] + wi % k[1]
    ram = ih * 8 + iw
    np.testing.assert_array_equal(am.numpy(), ram)
    rdx = np.zeros(rx.shape)
    for n in range(2):
        for c in range(3):
            np.add.at(rdx[n, c].reshape(-1), ram[n, c].ravel(), rdy[n, c].ravel())
    close(got(dx), rdx, "f32", 4)


def test_avg_pool2d_count_include_pad_and_backward(ctx, rng):
    x, rx = make(ctx, rng, (1, 2, 5, 6), "f32")
    k, s, p = (2, 3), (2, 2), (1, 1)
    win, OH, OW = pool_windows(rx, k, s, p, 0.0)
    y, dx = ctx.empty((1, 2, OH, OW)), ctx.empty(rx.shape)
    dy, rdy = make(ctx, rng, (1, 2, OH, OW), "f32")
    run(ctx, lambda g: g.avg_pool2d(y, x, k, s, p).avg_pool2d_backward(dx, dy, k, s, p))
    close(got(y), win.mean(-1), "f32", 4)
    rdxp = np.zeros((1, 2, 5 + 2, 6 + 2))
    for i in range(k[0]):
        for j in range(k[1]):
            rdxp[:, :, i:i + s[0] * (OH - 1) + 1:s[0], j:j + s[1] * (OW - 1) + 1:s[1]] += \
                rdy / (k[0] * k[1])
    close(got(dx), rdxp[:, :, 1:6, 1:7], "f32", 4)


def test_global_avg_pool2d_and_backward(ctx, rng):
    x, rx = make(ctx, rng, (3, 4, 5, 7), "f32")
    y, dx = ctx.empty((3, 4)), ctx.empty((3, 4, 5, 7))
    dy, rdy = make(ctx, rng, (3, 4), "f32")
    run(ctx, lambda g: g.global_avg_pool2d(y, x).global_avg_pool2d_backward(dx, dy))
    close(got(y), rx.mean((2, 3)), "f32", 4)
    close(got(dx), np.broadcast_to(rdy[:, :, None, None] / 35, rx.shape), "f32", 4)


def test_pool_padding_over_half_the_window_refused(ctx, rng):
    x, _ = make(ctx, rng, (1, 1, 6, 6), "f32")
    with pytest.raises(okto.InvalidArgument, match="okto_max_pool2d"):
        okto.Graph(ctx).max_pool2d(ctx.empty((1, 1, 4, 4)), x, 2, 2, 2)


# ---- concat and split -----------------------------------------------------------------------


@pytest.mark.parametrize("dt", ["f32", "bf16", "i32"])
def test_concat_split_round_trip(ctx, rng, dt):
    a, ra = make(ctx, rng, (3, 2, 5), dt)
    b, rb = make(ctx, rng, (3, 4, 5), dt)
    cT, rc = make(ctx, rng, (5, 1, 3), dt)  # a transposed view joins too
    out = ctx.empty((3, 7, 5), dt)
    p0, p1 = ctx.empty((3, 3, 5), dt), ctx.empty((3, 4, 5), dt)
    run(ctx, lambda g: g.concat(out, [a, b, cT.permute(2, 1, 0)], dim=-2)
        .split([p0, p1], out, 1))
    ref = np.concatenate([ra, rb, rc.transpose(2, 1, 0)], 1)
    np.testing.assert_array_equal(got(out), ref)
    np.testing.assert_array_equal(got(p0), ref[:, :3])
    np.testing.assert_array_equal(got(p1), ref[:, 3:])


def test_concat_sizes_must_add_up(ctx, rng):
    a, _ = make(ctx, rng, (2, 3), "f32")
    with pytest.raises(okto.InvalidArgument, match="okto_concat"):
        okto.Graph(ctx).concat(ctx.empty((2, 7)), [a, a], 1)
    with pytest.raises(okto.InvalidArgument, match="ins\\[1\\]"):
        okto.Graph(ctx).concat(ctx.empty((2, 7)), [a, "x"], 1)


def test_graph_tensor_belongs_to_the_graph(ctx):
    g = okto.Graph(ctx)
    t = g.tensor((2, 3))
    g.fill(t, 1.5)
    out = g.download(t)
    g.run()
    assert out.tolist() == [[1.5] * 3] * 2
    g.close()
    with pytest.raises(okto.InvalidState):
        t.numpy()


def test_bad_arguments_raise_okto_errors_not_crashes(ctx, rng):
    x, _ = make(ctx, rng, (2, 3), "f32")
    seed = ctx.zeros(2, "i32")
    g = okto.Graph(ctx)
    with pytest.raises(okto.InvalidArgument, match="stream"):
        g.dropout(ctx.empty((2, 3)), x, 0.5, seed, -1)
    with pytest.raises(okto.InvalidArgument, match="ignore_index"):
        g.cross_entropy(ctx.empty(1), x, ctx.zeros(2, "i32"), 2**40)
    with pytest.raises(okto.InvalidArgument, match="stride"):
        g.conv2d(ctx.empty((1, 1, 1, 1)), x, x, stride=(1, "2"))
    with pytest.raises(okto.InvalidArgument, match="okto_layernorm"):  # i32 data
        g.layernorm(ctx.empty((2, 3), "i32"), ctx.zeros((2, 3), "i32"))
    with pytest.raises(okto.InvalidArgument, match="y must be an okto.Tensor"):
        g.log_softmax(np.zeros((2, 3), np.float32), x)
    closed = ctx.empty((2, 3))
    closed.close()
    with pytest.raises(okto.InvalidState, match="closed"):
        g.rmsnorm(closed, x)
    g.clear_error()
    g.argmax(ctx.empty(2, "i32"), x)  # the graph still records after the refusals
    g.run()
