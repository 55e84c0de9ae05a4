"""Errors: one okto.Error subclass per status of OKTO_STATUS_MAP, carrying okto_last_error's
message; bad input from Python raises, never crashes."""

import numpy as np
import pytest

import okto


def test_one_class_per_status():
    for st in okto.STATUS:
        if st == okto.STATUS.OK:
            continue
        cls = okto.error_class(st)
        assert issubclass(cls, okto.Error) and cls is not okto.Error
        assert cls.status is st
        assert getattr(okto, cls.__name__) is cls
        e = cls("detail")
        assert str(e) == "OKTO_%s: %s: detail" % (st.name, st.label)
        assert e.message == "detail"
    assert okto.error_class(okto.STATUS.EINVAL) is okto.InvalidArgument
    assert okto.error_class(-6) is okto.Busy
    assert okto.NoDevice.status == okto.STATUS.ENODEV
    assert okto.BuildError.status == okto.STATUS.EBUILD
    assert okto.InvalidState.status == okto.STATUS.ESTATE
    assert okto.OutOfMemory.status == okto.STATUS.ENOMEM
    assert okto.OpenCLError.status == okto.STATUS.ECL
    assert okto.InputOutputError.status == okto.STATUS.EIO
    assert okto.NotSupported.status == okto.STATUS.ENOTSUP
    assert issubclass(okto.InvalidArgument, ValueError)
    assert issubclass(okto.OutOfMemory, MemoryError)
    assert okto.error_class(-12345) is okto.Error


def test_invalid_argument_from_an_op_names_the_shapes(ctx):
    a, b, c = ctx.empty((3, 4)), ctx.empty((5, 6)), ctx.empty((3, 6))
    g = okto.Graph(ctx)
    with pytest.raises(okto.InvalidArgument) as ei:
        g.matmul(c, a, b)
    e = ei.value
    assert e.status == okto.STATUS.EINVAL
    assert "okto_matmul" in e.message or "matmul" in e.message
    assert "f32[3,4]" in e.message and "f32[5,6]" in e.message
    assert str(e).startswith("OKTO_EINVAL: invalid argument: ")
    # the graph keeps its first recording error: later ops and the launch fail with it
    st, msg = g.status()
    assert st == okto.STATUS.EINVAL and msg == e.message
    with pytest.raises(okto.InvalidArgument):
        g.fill(a, 1)
    with pytest.raises(okto.InvalidArgument):
        g.run()
    g.clear_error()
    assert g.status() == (okto.STATUS.OK, "")
    g.fill(a, 1).run()
    assert (a.numpy() == 1).all()


def test_invalid_config():
    with pytest.raises(okto.InvalidArgument, match="65"):
        okto.Context(lanes=65)
    with pytest.raises(okto.InvalidArgument, match="lanes must be an int"):
        okto.Context(lanes="two")
    with pytest.raises(okto.InvalidArgument, match="unknown SCHED 'fastest'"):
        okto.Context(sched="fastest")
    with pytest.raises(okto.InvalidArgument, match="log must be one of"):
        okto.Context(log="loud")


def test_no_device():
    with pytest.raises(okto.NoDevice) as ei:
        okto.Context(device=99)
    assert "99" in ei.value.message
    with pytest.raises(okto.NoDevice):
        okto.Context(device="no-such-device-anywhere")


def test_build_error_carries_the_build_log(ctx):
    with pytest.raises(okto.BuildError) as ei:
        okto.Kernel(ctx, "__kernel void k(__global float *x) { x[0] = undefined_name; }", "k")
    assert "undefined_name" in ei.value.message
    with pytest.raises(okto.InvalidArgument, match="nokernel"):
        okto.Kernel(ctx, "__kernel void k(__global float *x) { x[0] = 1; }", "nokernel")


def test_out_of_memory(ctx):
    with pytest.raises(okto.OutOfMemory) as ei:
        ctx.empty((1 << 20, 1 << 20))
    assert "bytes" in ei.value.message or "limit" in ei.value.message


def test_report_before_a_run_is_invalid_state(ctx):
    g = okto.Graph(ctx).fill(ctx.empty(3), 0)
    with pytest.raises(okto.InvalidState, match="has not run"):
        g.report()


def test_trace_to_an_unwritable_path_is_io_error(ctx, tmp_path):
    g = okto.Graph(ctx).fill(ctx.empty(3), 0).run()
    with pytest.raises(okto.InputOutputError, match="cannot open"):
        g.trace(tmp_path / "no" / "such" / "dir" / "t.json")
    path = tmp_path / "t.json"
    g.trace(path)
    import json

    assert json.loads(path.read_text())  # Chrome trace-event JSON


def test_busy(ctx):
    t = ctx.empty((256, 256))
    g = okto.Graph(ctx)
    for _ in range(8):
        g.fill(t, 1)
    g.launch()
    try:
        with pytest.raises(okto.Busy):
            g.launch()
        with pytest.raises(okto.Busy):
            g.close()
        with pytest.raises(okto.Busy):
            g.fill(t, 2)
    finally:
        g.wait()
    # nothing changed: the graph records and runs again
    g.fill(t, 3).run()
    assert (t.numpy() == 3).all()


def test_run_time_error_names_the_task(ctx):
    logits = ctx.tensor(np.zeros((4, 3), np.float32))
    labels = ctx.tensor(np.array([0, 1, 7, 2], np.int32))  # 7 is out of range
    loss = ctx.empty(1)
    g = okto.Graph(ctx).softmax_xent(loss, None, logits, labels)
    with pytest.raises(okto.InvalidArgument) as ei:
        g.run()
    assert "row 2" in ei.value.message or "label" in ei.value.message


def test_numpy_input_errors(ctx):
    with pytest.raises(okto.InvalidArgument, match="float64 arrays have no okto dtype"):
        ctx.tensor(np.zeros(3))
    with pytest.raises(okto.InvalidArgument, match="int64"):
        ctx.tensor(np.arange(3))
    with pytest.raises(okto.InvalidArgument, match="rank 0"):
        ctx.tensor(np.float32(1))
    with pytest.raises(okto.InvalidArgument, match="rank 5"):
        ctx.tensor(np.zeros((1, 1, 1, 1, 2), np.float32))
    with pytest.raises(okto.InvalidArgument, match=">= 1"):
        ctx.tensor(np.zeros((0, 3), np.float32))
    with pytest.raises(okto.InvalidArgument, match="cannot make a tensor"):
        ctx.tensor([object()])
    with pytest.raises(okto.InvalidArgument, match="float data for an i32"):
        ctx.tensor(np.ones(3, np.float32), dtype="i32")
    with pytest.raises(okto.InvalidArgument, match="outside int32"):
        ctx.tensor(np.array([2**40]), dtype="i32")
    t = ctx.empty((2, 3))
    with pytest.raises(okto.InvalidArgument, match="shape"):
        t.write(np.zeros((3, 2), np.float32))
    i = ctx.empty(3, "i32")
    with pytest.raises(okto.InvalidArgument, match="float32 array for a i32 tensor"):
        i.write(np.zeros(3, np.float32))
    with pytest.raises(okto.InvalidArgument, match="no okto dtype"):
        ctx.empty(3, np.float64)
    with pytest.raises(TypeError, match="okto.tensor"):
        okto.Tensor()


def test_upload_and_download_refuse_what_they_would_have_to_copy(ctx):
    t = ctx.empty((4, 3))
    g = okto.Graph(ctx)
    with pytest.raises(okto.InvalidArgument, match="C-contiguous"):
        g.upload(t, np.zeros((3, 4), np.float32).T)
    with pytest.raises(okto.InvalidArgument, match="float64 array for a f32 tensor"):
        g.upload(t, np.zeros((4, 3)))
    with pytest.raises(okto.InvalidArgument, match="12 in the tensor"):
        g.download(t, np.zeros(5, np.float32))
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(okto.InvalidArgument, match="read-only"):
        g.download(t, ro)
    with pytest.raises(okto.InvalidArgument, match="NumPy array"):
        g.upload(t, [1, 2, 3])
    assert g.task_count == 0


def test_wrong_python_types(ctx):
    g = okto.Graph(ctx)
    t = ctx.empty(3)
    with pytest.raises(okto.InvalidArgument, match="must be an okto.Tensor"):
        g.fill(np.zeros(3, np.float32), 1)
    with pytest.raises(okto.InvalidArgument, match="unknown MAP"):
        g.map(t, t, "frobnicate")
    with pytest.raises(okto.InvalidArgument, match="Context"):
        okto.Graph("not a context")
    k = okto.Kernel(ctx, "__kernel void k(__global float *x, ulong o, int n) { }", "k")
    with pytest.raises(okto.InvalidArgument, match="okto.R"):
        g.launch_kernel(k, 1, [t, np.int32(1)])
    with pytest.raises(okto.InvalidArgument, match="NumPy scalars"):
        g.launch_kernel(k, 1, [okto.W(t), 1])
    with pytest.raises(okto.InvalidArgument):  # okto counts the parameters
        g.launch_kernel(k, 1, [okto.W(t)])
    g.clear_error()
    with pytest.raises(okto.InvalidArgument, match="slice"):
        t.slice(0, 2, 5)
    with pytest.raises(okto.InvalidArgument):
        t.reshape(2, 2)
