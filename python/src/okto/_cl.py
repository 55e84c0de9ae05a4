"""okto/_cl.py: pyopencl interop (imported only when used; pyopencl is optional).

okto's objects and pyopencl's share OpenCL handles: pyopencl objects are made from okto's
addresses with retain=True (each side holds its own reference), and okto takes pyopencl's
through their int_ptr. Neither side knows the other's queues, so the caller orders the work:
see the README's "Python" section for the synchronisation rule.
"""

from ._errors import InvalidArgument, NotSupported


def _pyopencl():
    try:
        import pyopencl
        import pyopencl.array  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise NotSupported("pyopencl is not installed (pip install pyopencl): %s" % e) from None
    return pyopencl


def context_of(ctx):
    cl = _pyopencl()
    return cl.Context.from_int_ptr(ctx.cl_context_ptr, retain=True)


def device_of(ctx):
    cl = _pyopencl()
    return cl.Device.from_int_ptr(ctx.cl_device_ptr, retain=True)


def event_of(ev):
    cl = _pyopencl()
    return cl.Event.from_int_ptr(ev.int_ptr, retain=True)


def array_of(t, queue):
    """t as a pyopencl Array over the same cl_mem (retained by pyopencl), at t's offset and
    strides (in bytes, as pyopencl takes them)."""
    cl = _pyopencl()
    if t.context.closed is False and queue.context.int_ptr != t.context.cl_context_ptr:
        raise InvalidArgument("the queue belongs to another OpenCL context than the tensor")
    npdt = t.np_dtype
    itemsize = npdt.itemsize
    strides = tuple(s * itemsize for s in t.strides)
    if any(s < 0 for s in strides):
        raise NotSupported("negative strides have no pyopencl Array")
    buf = cl.Buffer.from_int_ptr(t.cl_mem_ptr, retain=True)
    # the storage's buffer starts at offset 0: the view's start is the Array's offset
    arr = cl.array.Array(queue, t.shape, npdt, strides=strides, data=buf,
                         offset=t.offset * itemsize)
    return arr

