"""Shared fixtures: one context for the session (contexts cost a device set-up each), random
inputs in every dtype with their float64 values as the device holds them, and the per-dtype
tolerances the references are checked with."""

import numpy as np
import pytest

import okto

# |got - ref| <= RTOL * max(1, |ref|), ref computed in float64 from the inputs as stored
RTOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2, "i32": 0}
FLOATS = ("f32", "f16", "bf16")
DTYPES = ("f32", "f16", "bf16", "i32")


@pytest.fixture(scope="session")
def ctx():
    c = okto.Context()
    yield c
    okto.wait_all()
    c.close()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def host(values, dt):
    """values (float64) stored as dt: (the NumPy array to hand to okto, its float64 values)."""
    values = np.asarray(values, dtype=np.float64)
    if dt == "f32":
        a = values.astype(np.float32)
        return a, a.astype(np.float64)
    if dt == "f16":
        a = values.astype(np.float16)
        return a, a.astype(np.float64)
    if dt == "bf16":
        a = okto.bf16_from_f32(values.astype(np.float32))
        return a, okto.bf16_to_f32(a).astype(np.float64)
    if dt == "i32":
        a = np.round(values).astype(np.int32)
        return a, a.astype(np.float64)
    raise ValueError(dt)


def make(ctx, rng, shape, dt, lo=-2.0, hi=2.0):
    """A tensor of random values in [lo, hi) and its float64 values as stored."""
    a, ref = host(rng.uniform(lo, hi, size=shape), dt)
    t = ctx.tensor(a, dtype=dt)
    return t, ref


def got(t):
    """A tensor's values as float64 (f16/bf16 widened exactly)."""
    if t.dtype.label in ("f16", "bf16"):
        return t.numpy(np.float32).astype(np.float64)
    return t.numpy().astype(np.float64)


def close(actual, ref, dt, scale=1.0):
    ref = np.asarray(ref, dtype=np.float64)
    tol = RTOL[dt] * scale
    err = np.abs(np.asarray(actual, dtype=np.float64) - ref) / np.maximum(1.0, np.abs(ref))
    assert actual.shape == ref.shape, (actual.shape, ref.shape)
    worst = float(err.max()) if err.size else 0.0
    assert worst <= tol, "largest relative error %.3g > %.3g (%s)" % (worst, tol, dt)


SPIN = r"""
__kernel void spin(__global float *y, ulong yoff, uint n)
{
    float x = y[yoff];
    for (uint i = 0; i < n; i++)
        x = x * 0.9999999f + 1e-7f;
    y[yoff] = x;
}
"""


def slow_graph(ctx, iters=20_000_000, tasks=1):
    """A graph that keeps the device busy for a while (tens of ms per task on PoCL): a
    one-item kernel looping iters times, `tasks` times in a chain. One grid and local size
    throughout (PoCL 3.1's kernel cache, README "Known limits")."""
    k = okto.Kernel(ctx, SPIN, "spin")
    y = ctx.zeros(1)
    g = okto.Graph(ctx)
    for _ in range(tasks):
        g.launch_kernel(k, 1, [okto.RW(y), np.uint32(iters)], local_size=1)
    return g, y
