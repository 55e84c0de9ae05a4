"""Lifetimes: objects freed in any order, garbage collection while a graph runs, closed objects,
closing a context with live tensors. None of these may crash."""

import gc
import itertools
import weakref

import numpy as np
import pytest

import okto
from conftest import slow_graph


NAMES = ("ctx", "t", "view", "out", "graph", "host")
# 24 of the 720 orders (a fixed sample, every object first and last at least once)
ORDERS = [p for i, p in enumerate(itertools.permutations(NAMES)) if i % 30 == 0]


@pytest.mark.parametrize("order", ORDERS, ids="-".join)
def test_free_in_any_order(order):
    ctx = okto.Context(lanes=1, log="error")
    t = ctx.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    view = t[1:3]
    out = ctx.empty((2, 4))
    graph = okto.Graph(ctx).map(out, view, "neg")
    host = graph.download(out)
    objs = dict(ctx=ctx, t=t, view=view, out=out, graph=graph, host=host)
    refs = {k: weakref.ref(o) for k, o in objs.items()}
    del ctx, t, view, out, graph, host
    want = -np.arange(4, 12, dtype=np.float32).reshape(2, 4)
    for name in order:
        del objs[name]
        gc.collect()
        g = refs["graph"]()
        if g is not None:  # whatever else is gone, the graph still runs
            g.run()
            np.testing.assert_array_equal(refs["host"](), want)
        for k in ("t", "view", "out"):
            x = refs[k]()
            if x is not None:  # and a tensor still reads
                assert x.numpy().shape == x.shape
        del g, x
    gc.collect()
    assert all(r() is None for r in refs.values())


def test_graph_keeps_its_tensors_and_host_arrays(ctx):
    g = okto.Graph(ctx)
    a = ctx.tensor(np.full((2, 3), 2.0, np.float32))
    b = ctx.empty((2, 3))
    src = np.full((2, 3), 5.0, np.float32)
    g.upload(a, src).zip(b, a, a, "mul")
    out = g.download(b)
    wa, wb, wsrc, wout = weakref.ref(a), weakref.ref(b), weakref.ref(src), weakref.ref(out)
    del a, b, src, out
    gc.collect()
    assert all(w() is not None for w in (wa, wb, wsrc, wout))  # held by the graph
    g.run()
    np.testing.assert_array_equal(wout(), np.full((2, 3), 25.0, np.float32))
    g.close()
    gc.collect()
    assert all(w() is None for w in (wa, wb, wsrc, wout))


def test_tensor_keeps_its_context():
    ctx = okto.Context(lanes=1, log="error")
    t = ctx.tensor(np.ones(4, np.float32))
    wctx = weakref.ref(ctx)
    del ctx
    gc.collect()
    assert wctx() is not None
    okto.Graph(t.context).scale(t, 3).run()
    np.testing.assert_array_equal(t.numpy(), np.full(4, 3.0, np.float32))
    del t
    gc.collect()
    assert wctx() is None


def test_gc_while_a_graph_runs(ctx):
    g, y = slow_graph(ctx, tasks=3)
    out = g.download(y)
    keep = g.download(y)
    wg, wy, wout = weakref.ref(g), weakref.ref(y), weakref.ref(out)
    g.launch()
    del g, y, out
    gc.collect()
    # the launched graph (and what it recorded, and its host buffers) is still there
    assert wg() is not None and wy() is not None and wout() is not None
    assert wg() in okto._core._INFLIGHT
    okto.wait_all()
    gc.collect()
    assert wg() is None and wy() is None and wout() is None  # freed once waited
    assert keep[0] > 0  # and it did run to the end


def test_closed_objects_raise(ctx):
    t = ctx.empty(3)
    t.close()
    t.close()  # twice is fine
    assert t.closed and "closed" in repr(t)
    for use in (lambda: t.numpy(), lambda: t.shape, lambda: t.slice(0, 0, 1),
                lambda: okto.Graph(ctx).fill(t, 1), lambda: t.write(np.zeros(3, np.float32))):
        with pytest.raises(okto.InvalidState, match="Tensor is closed"):
            use()
    with ctx.graph() as g:
        g.fill(ctx.empty(2), 1)
    with pytest.raises(okto.InvalidState, match="Graph is closed"):
        g.run()
    with pytest.raises(okto.InvalidState):
        with g:
            pass
    k = okto.Kernel(ctx, "__kernel void k(__global float *x, ulong o) { x[o] = 1; }", "k")
    k.close()
    with pytest.raises(okto.InvalidState, match="Kernel is closed"):
        okto.Graph(ctx).launch_kernel(k, 1, [okto.W(ctx.empty(1))])


def test_close_a_tensor_a_launched_graph_uses(ctx):
    g, y = slow_graph(ctx)
    g.launch()
    try:
        with pytest.raises(okto.Busy):
            y.close()
        assert not y.closed
        with pytest.raises(okto.Busy):
            y.numpy()  # a blocking read of a tensor in flight
    finally:
        g.wait()
    y.close()  # the graph holds the storage; it still runs
    g.run()


def test_closing_a_context_with_live_tensors():
    ctx = okto.Context(lanes=2, log="error")
    t = ctx.tensor(np.arange(6, dtype=np.float32))
    v = t[2:4]
    g = okto.Graph(ctx).scale(v, 10)
    ctx.close()
    assert ctx.closed and "closed" in repr(ctx)
    with pytest.raises(okto.InvalidState, match="Context is closed"):
        ctx.tensor(np.ones(2, np.float32))
    with pytest.raises(okto.InvalidState):
        okto.Graph(ctx)
    with pytest.raises(okto.InvalidState):
        ctx.lanes
    # what was made from it keeps working: okto keeps the C context until they are gone
    g.run()
    np.testing.assert_array_equal(t.numpy(), [0, 1, 20, 30, 4, 5])
    w = t.reshape(2, 3)
    g.close()
    t.close()
    np.testing.assert_array_equal(v.numpy(), [20, 30])
    v.close()
    w.close()


def test_context_manager_closes(ctx):
    with okto.Context(lanes=1, log="error") as c:
        with c.tensor(np.ones(2, np.float32)) as t:
            assert t.numpy().sum() == 2
        assert t.closed
    assert c.closed
