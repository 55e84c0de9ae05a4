"""pyopencl interop both ways (skipped when pyopencl is not installed).

The rule these tests follow (README, "Python"): okto and pyopencl have their own queues. Data
pyopencl wrote is okto's to use once pyopencl's queue has finished it (queue.finish(), or pass
its event to Graph.launch_ex); data okto wrote is pyopencl's once okto_graph_wait returned (or
okto's done event completed, for launch_ex), or after a blocking okto transfer."""

import numpy as np
import pytest

import okto

cl = pytest.importorskip("pyopencl")
import pyopencl.array as cla  # noqa: E402


@pytest.fixture(scope="module")
def clctx():
    platforms = cl.get_platforms()
    devs = [d for p in platforms for d in p.get_devices()]
    return cl.Context([devs[0]])


def test_okto_context_over_a_pyopencl_context(clctx):
    with okto.Context.from_cl(clctx, lanes=2, log="error") as ctx:
        assert ctx.cl_context_ptr == clctx.int_ptr
        assert ctx.cl_device_ptr == clctx.devices[0].int_ptr
        assert ctx.cl_context() == clctx
        assert ctx.cl_device() == clctx.devices[0]
        t = ctx.tensor(np.arange(5, dtype=np.float32))
        okto.Graph(ctx).map(t, t, "square").run()
        np.testing.assert_array_equal(t.numpy(), np.arange(5) ** 2)


def test_okto_tensor_over_a_pyopencl_buffer(clctx):
    queue = cl.CommandQueue(clctx)
    host = np.arange(20, dtype=np.float32)
    buf = cl.Buffer(clctx, cl.mem_flags.READ_WRITE, host.nbytes)
    cl.enqueue_copy(queue, buf, host)
    queue.finish()  # pyopencl's write is done before okto reads
    ctx = okto.Context.from_cl(clctx, log="error")
    t = okto.Tensor.from_cl(ctx, buf, (3, 4), "f32", offset=4)  # elements 4..15
    np.testing.assert_array_equal(t.numpy(), host[4:16].reshape(3, 4))
    okto.Graph(ctx).scale(t, 10).run()  # okto_graph_wait returned: pyopencl may read
    back = np.empty_like(host)
    cl.enqueue_copy(queue, back, buf)
    queue.finish()
    want = host.copy()
    want[4:16] *= 10
    np.testing.assert_array_equal(back, want)
    del buf  # okto retained the cl_mem: the tensor outlives pyopencl's object
    assert t.numpy()[0, 0] == 40
    t.close()
    ctx.close()


def test_okto_tensor_as_a_pyopencl_array(clctx):
    ctx = okto.Context.from_cl(clctx, log="error")
    queue = cl.CommandQueue(clctx)
    a = np.arange(24, dtype=np.float32).reshape(6, 4)
    t = ctx.tensor(a)
    arr = t.to_pyopencl(queue)
    assert isinstance(arr, cla.Array) and arr.shape == (6, 4) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr.get(), a)
    rows = t[2:5].to_pyopencl(queue)  # a view: the Array starts at the view's offset
    assert rows.offset == 8 * 4
    np.testing.assert_array_equal(rows.get(), a[2:5])
    arr.fill(np.float32(-1.0))  # pyopencl writes ...
    queue.finish()  # ... and finishes before okto reads
    okto.Graph(ctx).zip_scalar(t, t, 3.0, "add").run()
    np.testing.assert_array_equal(arr.get(), np.full((6, 4), 2.0, np.float32))
    # i32 and f16 too
    i = ctx.tensor(np.arange(5, dtype=np.int32))
    np.testing.assert_array_equal(i.to_pyopencl(queue).get(), np.arange(5))
    h = ctx.tensor(np.linspace(0, 1, 7).astype(np.float16))
    np.testing.assert_array_equal(h.to_pyopencl(queue).get(), h.numpy())


def test_launch_ex_waits_for_pyopencl_and_signals_done(clctx):
    ctx = okto.Context.from_cl(clctx, log="error")
    queue = cl.CommandQueue(clctx)
    t = ctx.zeros(1024)
    arr = t.to_pyopencl(queue)
    prg = cl.Program(clctx, """
        __kernel void slow_fill(__global float *y, float v)
        {
            float x = 0;
            for (int i = 0; i < 100000; i++) x = x * 0.5f + v;  /* keep it busy */
            y[get_global_id(0)] = v + x - x;
        }""").build()
    ev = prg.slow_fill(queue, (1024,), None, arr.data, np.float32(7.0))
    queue.flush()
    out = ctx.empty(1024)
    g = okto.Graph(ctx).zip_scalar(out, t, 1.0, "mul")
    done = g.launch_ex(wait_for=[ev])  # okto's first task waits for pyopencl's kernel
    pdone = done.to_pyopencl()
    pdone.wait()  # pyopencl waits for okto's run
    assert done.status == 0  # CL_COMPLETE
    np.testing.assert_array_equal(out.to_pyopencl(queue).get(), np.full(1024, 7.0))
    g.wait()
    done.close()
    # without a done event, and waiting on okto's own Event type
    g.launch_ex(done_event=False)
    g.wait()
    e = g.launch_ex()
    e.wait()
    g.wait()


def test_queue_of_another_context_is_refused(clctx):
    ctx = okto.Context(log="error")  # a context of okto's own
    other = cl.CommandQueue(clctx)
    t = ctx.empty(3)
    with pytest.raises(okto.InvalidArgument, match="another OpenCL context"):
        t.to_pyopencl(other)
    q = cl.CommandQueue(ctx.cl_context())
    assert t.to_pyopencl(q).shape == (3,)
    ctx.close()
