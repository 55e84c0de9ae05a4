"""Every op the package wraps, against NumPy references in float64 computed from the inputs as
the device holds them, in every dtype the op takes, on odd shapes and on views. Tolerances
per dtype (conftest.RTOL): f32 1e-5, f16 2e-3, bf16 1e-2, relative to max(1, |ref|).

The map, zip and reduce loops run over the enums generated from the C tables; an op added in C
without a reference here shows up as a skip that names it."""

import math

import numpy as np
import pytest

import okto
from conftest import DTYPES, FLOATS, close, got, host, make


def run(ctx, record):
    g = okto.Graph(ctx)
    record(g)
    g.run()
    return g


# ---- data movement and BLAS-1 -------------------------------------------------------------


@pytest.mark.parametrize("dt", DTYPES)
def test_fill(ctx, dt):
    t = ctx.empty((3, 7), dt)
    v = t.slice(1, 2, 3)  # a strided view: only those columns
    run(ctx, lambda g: g.fill(t, 0).fill(v, -2.75))
    ref = np.zeros((3, 7))
    ref[:, 2:5] = -2 if dt == "i32" else -2.75  # i32: rounded toward zero
    close(got(t), ref, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_copy_any_strides(ctx, rng, dt):
    src, ref = make(ctx, rng, (4, 5, 3), dt, -100, 100)
    dst = ctx.empty((3, 5, 4), dt)
    run(ctx, lambda g: g.copy(dst, src.permute(2, 1, 0)))
    np.testing.assert_array_equal(got(dst), ref.transpose(2, 1, 0))


@pytest.mark.parametrize("src_dt", DTYPES)
@pytest.mark.parametrize("dst_dt", DTYPES)
def test_cast(ctx, rng, src_dt, dst_dt):
    src, ref = make(ctx, rng, (5, 3), src_dt, -60, 60)
    dst = ctx.empty((5, 3), dst_dt)
    run(ctx, lambda g: g.cast(dst, src))
    if dst_dt == "i32":
        want = np.trunc(ref)
    else:
        want = host(ref, dst_dt)[1]  # the value rounded to dst's dtype
    close(got(dst), want, dst_dt if dst_dt != "i32" else "f32")


def test_contiguous(ctx, rng):
    src, ref = make(ctx, rng, (4, 6), "f32")
    g = okto.Graph(ctx)
    c = g.contiguous(src.T)
    g.run()
    assert c.is_contiguous and c.shape == (6, 4)
    np.testing.assert_array_equal(got(c), ref.T)


@pytest.mark.parametrize("dt", FLOATS)
def test_axpy_and_scale(ctx, rng, dt):
    y, yr = make(ctx, rng, (3, 17), dt)
    x, xr = make(ctx, rng, (3, 17), dt)
    z, zr = make(ctx, rng, (2, 5), dt)
    run(ctx, lambda g: g.axpy(y, -0.75, x).scale(z, 1.5))
    close(got(y), yr - 0.75 * xr, dt)
    close(got(z), 1.5 * zr, dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_upload_download_replayed(ctx, rng, dt):
    a, _ = host(rng.uniform(-9, 9, size=(6, 5)), dt)
    src = a.copy()
    t = ctx.empty((6, 5), dt)
    u = ctx.empty((6, 5), dt)
    g = okto.Graph(ctx).upload(t, src).copy(u, t)
    out = g.download(u)
    g.run()
    np.testing.assert_array_equal(out, a)
    # the graph reads the same host array on every launch: change it in place, run again
    src[...] = src[::-1]
    g.run()
    np.testing.assert_array_equal(out, a[::-1])
    mine = np.zeros_like(a)
    g2 = okto.Graph(ctx)
    assert g2.download(t, mine) is mine
    g2.run()
    np.testing.assert_array_equal(mine, a[::-1])


# ---- matmul -------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(ctx, rng, dt, ta, tb):
    m, k, n = 7, 13, 5
    a, ar = make(ctx, rng, (k, m) if ta else (m, k), dt)
    b, br = make(ctx, rng, (n, k) if tb else (k, n), dt)
    c, cr = make(ctx, rng, (m, n), dt)
    ref_p = (ar.T if ta else ar) @ (br.T if tb else br)
    run(ctx, lambda g: g.matmul(c, a, b, trans_a=ta, trans_b=tb, accumulate=True))
    close(got(c), cr + ref_p, dt, math.sqrt(k))
    run(ctx, lambda g: g.matmul(c, a, b, trans_a=ta, trans_b=tb))
    close(got(c), ref_p, dt, math.sqrt(k))


def test_matmul_on_views(ctx, rng):
    a, ar = make(ctx, rng, (9, 11), "f32")
    b, br = make(ctx, rng, (6, 11), "f32")
    c = ctx.empty((4, 6))
    run(ctx, lambda g: g.matmul(c, a[2:6], b.T))  # a row view, a transposed operand
    close(got(c), ar[2:6] @ br.T, "f32", math.sqrt(11))


@pytest.mark.parametrize("dt", FLOATS)
def test_gemm(ctx, rng, dt):
    a, ar = make(ctx, rng, (5, 8), dt)
    b, br = make(ctx, rng, (5, 3), dt)
    c, cr = make(ctx, rng, (8, 3), dt)
    run(ctx, lambda g: g.gemm(c, a, b, alpha=0.5, beta=-2.0, trans_a=True))
    close(got(c), 0.5 * ar.T @ br - 2.0 * cr, dt, math.sqrt(5) * 2)


# ---- reductions ---------------------------------------------------------------------------

REDUCE_REF = {"sum": np.sum, "max": np.max, "min": np.min, "mean": np.mean}


@pytest.mark.parametrize("op", list(okto.REDUCE), ids=str)
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_reduce(ctx, rng, op, dt, axis):
    ref_fn = REDUCE_REF.get(op.label)
    if ref_fn is None:
        pytest.skip("no NumPy reference for reduce op %s yet" % op.label)
    x, xr = make(ctx, rng, (5, 7, 3), dt)
    keep = list(xr.shape)
    keep[axis] = 1
    out_keep = ctx.empty(keep, dt)
    dropped = [d for i, d in enumerate(xr.shape) if i != axis % 3]
    out_drop = ctx.empty(dropped, dt)
    run(ctx, lambda g: g.reduce(out_keep, x, op, axis).reduce(out_drop, x, op.label, axis))
    want = ref_fn(xr, axis=axis, keepdims=True)
    n = xr.shape[axis]
    close(got(out_keep), want, dt, math.sqrt(n))
    close(got(out_drop), want.reshape(dropped), dt, math.sqrt(n))


@pytest.mark.parametrize("op", list(okto.REDUCE), ids=str)
@pytest.mark.parametrize("dt", FLOATS)
def test_reduce_all(ctx, rng, op, dt):
    ref_fn = REDUCE_REF.get(op.label)
    if ref_fn is None:
        pytest.skip("no NumPy reference for reduce op %s yet" % op.label)
    x, xr = make(ctx, rng, (3, 4, 5, 2), dt)
    out = ctx.empty(1, dt)
    run(ctx, lambda g: g.reduce_all(out, x, op))
    close(got(out), np.array([ref_fn(xr)]), dt, math.sqrt(xr.size))


def test_reduce_over_a_view(ctx, rng):
    x, xr = make(ctx, rng, (6, 8), "f32")
    out = ctx.empty((1, 8))
    run(ctx, lambda g: g.reduce(out, x[1:5], "sum", 0))
    close(got(out), xr[1:5].sum(axis=0, keepdims=True), "f32", 2)


# ---- elementwise --------------------------------------------------------------------------


_erf = np.vectorize(math.erf)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


MAP_REF = {  # reference, input range
    "relu": (lambda x: np.maximum(x, 0), (-3, 3)),
    "gelu_tanh": (_gelu_tanh, (-3, 3)),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-6, 6)),
    "tanh": (np.tanh, (-3, 3)),
    "exp": (np.exp, (-3, 3)),
    "log": (np.log, (0.05, 8)),
    "neg": (np.negative, (-3, 3)),
    "sqrt": (np.sqrt, (0.0, 9)),
    "abs": (np.abs, (-3, 3)),
    "square": (np.square, (-3, 3)),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 9)),
    # in okto's main since ad7f581; unused where the C table does not have them yet
    "gelu_erf": (lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), (-3, 3)),
    "silu": (lambda x: x / (1 + np.exp(-x)), (-6, 6)),
}


@pytest.mark.parametrize("op", list(okto.MAP), ids=str)
@pytest.mark.parametrize("dt", FLOATS)
def test_map(ctx, rng, op, dt):
    if op.label not in MAP_REF:
        pytest.skip("no NumPy reference for map op %s yet" % op.label)
    fn, (lo, hi) = MAP_REF[op.label]
    x, xr = make(ctx, rng, (3, 5, 7), dt, lo, hi)
    out = ctx.empty((3, 5, 7), dt)
    inplace, ir = make(ctx, rng, (2, 9), dt, lo, hi)
    run(ctx, lambda g: g.map(out, x, op).map(inplace, inplace, op.label))
    close(got(out), fn(xr), dt)
    close(got(inplace), fn(ir), dt)


def test_map_strided(ctx, rng):
    x, xr = make(ctx, rng, (6, 4), "f32")
    out = ctx.empty((4, 6))
    run(ctx, lambda g: g.map(out, x.T, "exp"))
    close(got(out), np.exp(xr.T), "f32")


ZIP_REF = {  # reference, range of b
    "add": (np.add, (-2, 2)),
    "sub": (np.subtract, (-2, 2)),
    "mul": (np.multiply, (-2, 2)),
    "div": (np.divide, (0.5, 3)),
    "max": (np.maximum, (-2, 2)),
    "min": (np.minimum, (-2, 2)),
    "relu_grad": (lambda a, b: a * (b > 0), (-2, 2)),
}


@pytest.mark.parametrize("op", list(okto.ZIP), ids=str)
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("sa,sb", [((4, 6), (4, 6)), ((3, 4, 6), (6,)), ((4, 1), (1, 5)),
                                   ((2, 1, 3, 1), (5, 1, 4))])
def test_zip_broadcast(ctx, rng, op, dt, sa, sb):
    if op.label not in ZIP_REF:
        pytest.skip("no NumPy reference for zip op %s yet" % op.label)
    fn, (lo, hi) = ZIP_REF[op.label]
    a, ar = make(ctx, rng, sa, dt)
    b, br = make(ctx, rng, sb, dt, lo, hi)
    want = fn(ar, br)
    out = ctx.empty(want.shape, dt)
    run(ctx, lambda g: g.zip(out, a, b, op))
    close(got(out), want, dt)


@pytest.mark.parametrize("op", list(okto.ZIP), ids=str)
@pytest.mark.parametrize("dt", FLOATS)
def test_zip_scalar(ctx, rng, op, dt):
    if op.label not in ZIP_REF:
        pytest.skip("no NumPy reference for zip op %s yet" % op.label)
    fn, _ = ZIP_REF[op.label]
    a, ar = make(ctx, rng, (5, 3), dt)
    out = ctx.empty((5, 3), dt)
    s = 1.25 if op.label != "relu_grad" else -0.5
    run(ctx, lambda g: g.zip_scalar(out, a, s, op).zip_scalar(a, a, s, op))
    sv = host([s], dt)[1][0]
    close(got(out), fn(ar, sv), dt)
    close(got(a), fn(ar, sv), dt)  # out may be a


def test_zip_in_place_and_views(ctx, rng):
    a, ar = make(ctx, rng, (4, 6), "f32")
    b, br = make(ctx, rng, (6,), "f32")
    run(ctx, lambda g: g.zip(a, a, b, "add"))
    close(got(a), ar + br, "f32")
    c, cr = make(ctx, rng, (6, 4), "f32")
    out = ctx.empty((4, 6))
    run(ctx, lambda g: g.zip(out, a, c.T, okto.ZIP.MUL))
    close(got(out), (ar + br) * cr.T, "f32")


# ---- softmax and loss ---------------------------------------------------------------------


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("dt", FLOATS)
def test_softmax(ctx, rng, dt):
    x, xr = make(ctx, rng, (3, 4, 9), dt, -20, 20)
    out = ctx.empty((3, 4, 9), dt)
    run(ctx, lambda g: g.softmax(out, x))
    close(got(out), _softmax(xr), dt)
    big, br = make(ctx, rng, (2, 5), dt, 500, 800)  # stable for large logits
    run(ctx, lambda g: g.softmax(big, big))
    close(got(big), _softmax(br), dt)


@pytest.mark.parametrize("dt", FLOATS)
def test_softmax_xent(ctx, rng, dt):
    rows, classes = 11, 7
    logits, lr = make(ctx, rng, (rows, classes), dt, -4, 4)
    lab = rng.integers(0, classes, size=rows).astype(np.int32)
    labels = ctx.tensor(lab)
    loss = ctx.empty(1, dt)
    grad = ctx.empty((rows, classes), dt)
    run(ctx, lambda g: g.softmax_xent(loss, grad, logits, labels))
    p = _softmax(lr)
    want_loss = -np.mean(np.log(p[np.arange(rows), lab]))
    onehot = np.eye(classes)[lab]
    close(got(loss), np.array([want_loss]), dt)
    close(got(grad), (p - onehot) / rows, dt, 1.0 / rows)
    # grad only, labels as [rows, 1]
    grad2 = ctx.empty((rows, classes), dt)
    run(ctx, lambda g: g.softmax_xent(None, grad2, logits, labels.reshape(rows, 1)))
    close(got(grad2), (p - onehot) / rows, dt, 1.0 / rows)


# ---- user kernels -------------------------------------------------------------------------

SAXPY = r"""
__kernel void saxpy(__global float *y, ulong yoff, __global const float *x, ulong xoff,
                    float a, uint n)
{
    for (size_t i = get_global_id(0); i < n; i += get_global_size(0))
        y[yoff + i] += a * x[xoff + i];
}
"""


def test_user_kernel(ctx, rng):
    k = okto.Kernel(ctx, SAXPY, "saxpy")
    y, yr = make(ctx, rng, (40,), "f32")
    x, xr = make(ctx, rng, (50,), "f32")
    g = okto.Graph(ctx)
    g.launch_kernel(k, 16, [okto.RW(y[5:35]), okto.R(x[10:40]), np.float32(2.0),
                            np.uint32(30)], local_size=16)
    k.close()  # recorded launches keep working
    g.run().run()
    want = yr.copy()
    want[5:35] += 2 * 2.0 * xr[10:40]
    close(got(y), want, "f32")
