"""Versions, devices, contexts, the generated enums, tensors of every dtype and rank, views."""

import re

import numpy as np
import pytest

import okto
from conftest import DTYPES, host

def test_version_matches_library_and_meson_build():
    assert okto.__version__ == okto.library_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", okto.__version__)


def test_devices():
    devs = okto.devices()
    assert devs, "PoCL is always there on CI"
    assert sum(d.default for d in devs) == 1
    for i, d in enumerate(devs):
        assert d.index == i
        assert d.name and d.platform
        assert d.compute_lanes >= 1 and d.copy_lanes >= 0
        assert d.type in ("CPU", "GPU", "ACCELERATOR", "CUSTOM") or "|" in d.type


def test_context_config():
    with okto.Context(lanes=3, sched="round-robin", in_order=True, copy_lanes=1) as c:
        assert c.compute_lanes == 3
        assert c.copy_lanes == 1
        assert c.lanes == 4
        assert c.in_order
        assert c.sched == okto.SCHED.ROUND_ROBIN
        assert "lanes" in repr(c)
    assert c.closed
    dev = okto.devices()[0]
    with okto.Context(device=dev.index, sched=okto.SCHED.SEQUENTIAL) as c:
        assert c.device_name == dev.name
        assert c.sched.label == "sequential"
    with okto.Context(device=dev.name[:5]) as c:
        assert c.device_name == dev.name


def test_enums_come_from_the_c_tables():
    # every member the headers define, in the tables' order, with their C strings
    assert [m.label for m in okto.MAP][:4] == ["relu", "gelu_tanh", "sigmoid", "tanh"]
    assert okto.MAP.of("relu") is okto.MAP.RELU is okto.MAP.of("RELU")
    assert okto.ZIP.of("relu_grad") is okto.ZIP.RELU_GRAD
    assert okto.REDUCE.of("mean") is okto.REDUCE.MEAN
    assert okto.SCHED.of("round-robin") is okto.SCHED.of("round_robin")
    assert okto.SCHED.AUTO.value == 0 and okto.SCHED.HEFT.label == "heft"
    assert [m.label for m in okto.DTYPE][:4] == ["f32", "f16", "bf16", "i32"]
    assert okto.STATUS.OK.value == 0 and okto.STATUS.EINVAL.value == -1
    assert okto.STATUS.EBUSY.label == "resource busy"
    with pytest.raises(okto.InvalidArgument, match="unknown MAP 'nope'.*relu"):
        okto.MAP.of("nope")
    with pytest.raises(okto.InvalidArgument):
        okto.MAP.of(okto.ZIP.ADD)  # another enum's member is not reinterpreted


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 5)])
def test_roundtrip_every_dtype_and_rank(ctx, rng, dt, shape):
    a, _ = host(rng.uniform(-50, 50, size=shape), dt)
    t = ctx.tensor(a)  # the dtype comes from the array (uint16 means bf16 bits)
    assert t.dtype.label == dt
    assert t.shape == shape and t.rank == len(shape) and t.size == a.size
    assert t.strides == tuple(s // a.itemsize for s in a.strides)
    assert t.is_contiguous
    assert t.nbytes == a.nbytes
    back = t.numpy()
    assert back.dtype == okto.np_dtype(dt)
    np.testing.assert_array_equal(back, a)


def test_float_data_for_half_tensors_is_rounded_by_okto(ctx):
    x = np.array([1.0, 1 / 3, -2.5e-3, 65504.0, 3.0e38], np.float32)
    t16 = ctx.tensor(x, dtype="f16")
    with np.errstate(over="ignore"):  # 3e38 is inf in f16, for NumPy and okto alike
        np.testing.assert_array_equal(t16.numpy(), x.astype(np.float16))
    tb = ctx.tensor(x, dtype="bf16")
    np.testing.assert_array_equal(tb.numpy(), okto.bf16_from_f32(x))
    np.testing.assert_array_equal(tb.numpy(np.float32), okto.bf16_to_f32(okto.bf16_from_f32(x)))
    # float64 with an explicit dtype is converted; i32 from Python ints too
    np.testing.assert_array_equal(ctx.tensor([1.5, 2.5], dtype="f32").numpy(), [1.5, 2.5])
    np.testing.assert_array_equal(ctx.tensor([1, -2, 3], dtype="i32").numpy(), [1, -2, 3])


def test_bf16_host_conversion_matches_okto(ctx):
    vals = np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, np.inf, -np.inf, np.nan, 1e-40,
                     3.4e38], np.float32)
    bits = okto.bf16_from_f32(vals)
    for v, b in zip(vals, bits):
        assert okto._lib.okto_f32_to_bf16(float(v)) == b
    for b in bits:
        f = okto._lib.okto_bf16_to_f32(int(b))
        g = okto.bf16_to_f32(np.array([b], np.uint16))[0]
        assert (np.isnan(f) and np.isnan(g)) or f == g


def test_ml_dtypes_bfloat16_if_installed(ctx):
    ml = pytest.importorskip("ml_dtypes")
    x = np.array([1.0, 2.5, -3.0], dtype=ml.bfloat16)
    t = ctx.tensor(x)
    assert t.dtype.label == "bf16"
    np.testing.assert_array_equal(t.numpy(okto.bfloat16), x)


def test_non_contiguous_arrays_are_copied(ctx):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    assert not a.flags.c_contiguous
    t = ctx.tensor(a)
    np.testing.assert_array_equal(t.numpy(), a)
    t.write(a.T.copy().T * 2)
    np.testing.assert_array_equal(t.numpy(), a * 2)


def test_empty_zeros_and_write(ctx):
    t = ctx.zeros((2, 3), "i32")
    np.testing.assert_array_equal(t.numpy(), np.zeros((2, 3), np.int32))
    t.write(np.full((2, 3), 7, np.int32))
    assert (t.numpy() == 7).all()
    e = ctx.empty(5, okto.DTYPE.F16)
    assert e.shape == (5,) and e.dtype == okto.DTYPE.F16
    assert okto.tensor(ctx, np.ones(3, np.float32)).numpy().sum() == 3


def test_views(ctx):
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    t = ctx.tensor(a)
    s = t.slice(2, 1, 2)
    assert s.shape == (2, 3, 2, 5) and not s.is_contiguous
    assert s.strides == t.strides
    np.testing.assert_array_equal(s.numpy(), a[:, :, 1:3])
    np.testing.assert_array_equal(t.slice(-1, 4, 1).numpy(), a[..., 4:5])
    np.testing.assert_array_equal(t.view(1, 1).numpy(), a[1:2])
    r = t.reshape(6, 20)
    np.testing.assert_array_equal(r.numpy(), a.reshape(6, 20))
    np.testing.assert_array_equal(t.reshape(-1, 5).numpy(), a.reshape(-1, 5))
    p = t.permute(3, 1, 0, 2)
    assert p.shape == (5, 3, 2, 4)
    assert p.strides == (1, 20, 60, 5)
    np.testing.assert_array_equal(p.numpy(), a.transpose(3, 1, 0, 2))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.swapaxes(0, 2))
    m = ctx.tensor(a[0, 0])
    np.testing.assert_array_equal(m.T.numpy(), a[0, 0].T)
    row = ctx.tensor(np.arange(4, dtype=np.float32).reshape(1, 4))
    e = row.expand(3, 4)
    assert e.strides == (0, 1)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(row.numpy(), (3, 4)))
    np.testing.assert_array_equal(row.expand(2, 3, 4).numpy(),
                                  np.broadcast_to(row.numpy(), (2, 3, 4)))
    # a view of a view, and writes through a view land in the base
    v = t.slice(0, 1, 1).slice(3, 2, 3)
    v.write(np.full(v.shape, -1, np.float32))
    b = a.copy()
    b[1:2, :, :, 2:5] = -1
    np.testing.assert_array_equal(t.numpy(), b)
    assert v.offset == 60 + 2


def test_indexing_sugar(ctx):
    a = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    t = ctx.tensor(a)
    np.testing.assert_array_equal(t[2:5].numpy(), a[2:5])
    np.testing.assert_array_equal(t[-2:].numpy(), a[-2:])
    np.testing.assert_array_equal(t[1].numpy(), a[1])
    assert t[1].shape == (4,)
    np.testing.assert_array_equal(t[:, 1:3].numpy(), a[:, 1:3])
    np.testing.assert_array_equal(t[1:3, 2:].numpy(), a[1:3, 2:])
    np.testing.assert_array_equal(t[-1, 3].numpy(), a[-1, 3:4])  # no rank 0: one element
    assert len(t) == 6
    with pytest.raises(okto.InvalidArgument, match="steps of 1"):
        t[::2]
    with pytest.raises(IndexError):
        t[6]
    with pytest.raises(okto.InvalidArgument, match="contiguous"):
        t[:, 1]  # dropping a strided dimension needs a reshape okto refuses
    with pytest.raises(okto.InvalidArgument, match="empty"):
        t[3:3]
