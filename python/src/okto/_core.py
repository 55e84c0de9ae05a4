"""okto/_core.py: Context, Tensor, Graph, Kernel and Event over okto's C API (through cffi).

Lifetimes, as the Python objects hold them (the C library keeps storage and contexts alive on
its own; these rules keep the *Python* objects from dangling):
  - a Tensor holds its Context (and a view its base tensor);
  - a Graph holds its Context, every Tensor, Kernel and host array it recorded (uploads and
    downloads are replayed on every launch, so their arrays live as long as the graph);
  - a launched Graph is held by the module (_INFLIGHT) until wait() returns, so garbage
    collection never frees a graph under its lanes; at exit every launched graph is waited.
Every object has close() and is a context manager; using a closed object raises
okto.InvalidState. Closing something a launched graph still uses raises okto.Busy and leaves
it intact (okto's own rule).

Threads: cffi releases the GIL around every C call, so a blocking wait, run or transfer lets
other Python threads run. okto's rules apply (graph.h): one thread records or launches a graph
at a time (else okto.Busy); do not close an object while another thread is using it.
"""

import atexit
import collections
import numbers
import operator
import os
import threading
import weakref

import numpy as np

from ._enums import DTYPE, MAP, REDUCE, SCHED, ZIP
from ._errors import Busy, InvalidArgument, InvalidState, check
from ._okto_ffi import ffi, lib

try:  # bfloat16 as a NumPy dtype, when the ml_dtypes package is installed (optional)
    import ml_dtypes as _ml_dtypes

    bfloat16 = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    bfloat16 = None

# NumPy's dtype for each okto dtype name. bf16 is held as its 16 bits (uint16); ml_dtypes'
# bfloat16 arrays are accepted too. Names not listed here (a dtype added to OKTO_DTYPE_MAP
# later) still work for tensors and ops, and raise NotSupported only when NumPy data would be
# exchanged.
_NP_BY_NAME = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16, "i32": np.int32,
               "f64": np.float64, "i64": np.int64, "i16": np.int16, "i8": np.int8,
               "u8": np.uint8, "u16": np.uint16, "u32": np.uint32}
_FLOAT_NAMES = ("f32", "f16", "bf16")


def np_dtype(dt):
    """The NumPy dtype an okto dtype's elements are exchanged as (bf16: uint16 bits)."""
    dt = DTYPE.of(dt)
    t = _NP_BY_NAME.get(dt.label)
    if t is None:
        from ._errors import NotSupported

        raise NotSupported("okto dtype %s has no NumPy equivalent in this package" % dt.label)
    return np.dtype(t)


def _dtype_of_numpy(npdt):
    """The okto dtype of a NumPy dtype, or None. uint16 means bf16 bits."""
    npdt = np.dtype(npdt)
    if bfloat16 is not None and npdt == bfloat16:
        return DTYPE.of("bf16")
    for name, t in _NP_BY_NAME.items():
        if npdt == np.dtype(t) and name in DTYPE._lookup:
            return DTYPE.of(name)
    return None


def as_dtype(dtype):
    """An okto DTYPE from a DTYPE, a name ('f32', 'bf16'), or a NumPy dtype."""
    if isinstance(dtype, (DTYPE, str)):
        return DTYPE.of(dtype)
    try:
        npdt = np.dtype(dtype)
    except TypeError:
        return DTYPE.of(dtype)  # raises InvalidArgument with the list of dtypes
    dt = _dtype_of_numpy(npdt)
    if dt is None:
        raise InvalidArgument("NumPy dtype %s has no okto dtype (okto has %s)"
                              % (npdt, ", ".join(m.label for m in DTYPE)))
    return dt


def _str(cdata):
    return ffi.string(cdata).decode("utf-8", "replace") if cdata != ffi.NULL else ""


def _intptr(obj):
    """The address of an OpenCL object: an int, a cffi pointer, or anything with .int_ptr
    (pyopencl's objects)."""
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, ffi.CData):
        return int(ffi.cast("intptr_t", obj))
    p = getattr(obj, "int_ptr", None)
    if p is None:
        raise InvalidArgument("%r is not an OpenCL object (no int_ptr)" % (obj,))
    return int(p)


class _Handle:
    """An owned C pointer: _ptr raises InvalidState once closed."""

    _kind = "object"
    _h = ffi.NULL

    @property
    def _ptr(self):
        h = self._h
        if h == ffi.NULL:
            raise InvalidState("this %s is closed" % self._kind)
        return h

    @property
    def closed(self):
        return self._h == ffi.NULL

    def __enter__(self):
        self._ptr  # entering a closed object is an error too
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---- devices ----------------------------------------------------------------------------------

Device = collections.namedtuple(
    "Device", "index name platform vendor type version compute_units global_mem_bytes "
              "compute_lanes copy_lanes default")
Device.__doc__ = "One OpenCL device as okto numbers it (what Context(device=index) takes)."


def _cl_string(getter, obj, param):
    size = ffi.new("size_t *")
    if getter(obj, param, 0, ffi.NULL, size) != lib.CL_SUCCESS:
        return ""
    buf = ffi.new("char[]", size[0] + 1)
    if getter(obj, param, size[0], buf, ffi.NULL) != lib.CL_SUCCESS:
        return ""
    return _str(buf).strip()


def _cl_scalar(dev, param, ctype):
    v = ffi.new(ctype + " *")
    if lib.clGetDeviceInfo(dev, param, ffi.sizeof(ctype), v, ffi.NULL) != lib.CL_SUCCESS:
        return 0
    return int(v[0])


def _device_type(bits):
    names = [n for n, b in (("CPU", lib.CL_DEVICE_TYPE_CPU), ("GPU", lib.CL_DEVICE_TYPE_GPU),
                            ("ACCELERATOR", lib.CL_DEVICE_TYPE_ACCELERATOR),
                            ("CUSTOM", lib.CL_DEVICE_TYPE_CUSTOM)) if bits & b]
    return "|".join(names) or "unknown"


def devices():
    """Every OpenCL device okto sees, numbered as OKTO_DEVICE and Context(device=) take them.
    Raises okto.NoDevice (with a hint) when there is none."""
    out = ffi.new("okto_device_info **")
    count = ffi.new("int *")
    check(lib.okto_devices(out, count))
    try:
        result = []
        for i in range(count[0]):
            d = out[0][i]
            result.append(Device(
                index=d.index,
                name=_cl_string(lib.clGetDeviceInfo, d.device, lib.CL_DEVICE_NAME),
                platform=_cl_string(lib.clGetPlatformInfo, d.platform, lib.CL_PLATFORM_NAME),
                vendor=_cl_string(lib.clGetDeviceInfo, d.device, lib.CL_DEVICE_VENDOR),
                type=_device_type(_cl_scalar(d.device, lib.CL_DEVICE_TYPE, "uint64_t")),
                version=_cl_string(lib.clGetDeviceInfo, d.device, lib.CL_DEVICE_VERSION),
                compute_units=_cl_scalar(d.device, lib.CL_DEVICE_MAX_COMPUTE_UNITS, "uint32_t"),
                global_mem_bytes=_cl_scalar(d.device, lib.CL_DEVICE_GLOBAL_MEM_SIZE,
                                            "uint64_t"),
                compute_lanes=d.compute_lanes, copy_lanes=d.copy_lanes,
                default=bool(d.is_default)))
        return result
    finally:
        lib.okto_devices_free(out[0])


# ---- context ----------------------------------------------------------------------------------

_LOG_LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}


def _int_arg(name, value, lo=-2**31, hi=2**31 - 1):
    """An int in [lo, hi] (default: C's int), else InvalidArgument naming it (never cffi's
    OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument("%s must be an int, not %r" % (name, value))
    value = int(value)
    if not lo <= value <= hi:
        raise InvalidArgument("%s = %d is outside [%d, %d]" % (name, value, lo, hi))
    return value


def _uint_arg(name, value):
    return _int_arg(name, value, 0, 2**32 - 1)


def _config(device=None, lanes=None, sched=None, in_order=None, copy_lanes=None,
            subdevices=None, trace=None, log=None):
    cfg = ffi.new("okto_config *")
    lib.okto_config_init(cfg)  # defaults, then the OKTO_* environment; arguments win
    if device is not None:
        if isinstance(device, Device):
            device = device.index
        if isinstance(device, str):
            raw = device.encode()
            if len(raw) >= ffi.sizeof(cfg.device_name):
                raise InvalidArgument("device name %r is too long" % device)
            cfg.device_index = -1
            cfg.device_name = raw
        else:
            cfg.device_index = _int_arg("device", device)
            cfg.device_name = b""
    if lanes is not None:
        cfg.compute_lanes = _int_arg("lanes", lanes)
    if copy_lanes is not None:
        cfg.copy_lanes = _int_arg("copy_lanes", copy_lanes)
    if sched is not None:
        cfg.sched = SCHED.of(sched)
    if in_order is not None:
        cfg.in_order = 1 if in_order else 0
    if subdevices is not None:
        cfg.subdevices = 1 if subdevices else 0
    if trace is not None:
        raw = os.fsencode(trace)
        if len(raw) >= ffi.sizeof(cfg.trace_path):
            raise InvalidArgument("trace path %r is too long" % (trace,))
        cfg.trace_path = raw
    if log is not None:
        if log not in _LOG_LEVELS:
            raise InvalidArgument("log must be one of %s, not %r" % (", ".join(_LOG_LEVELS), log))
        cfg.log = _LOG_LEVELS[log]
    return cfg


class Context(_Handle):
    """An okto context: one OpenCL device, its lanes and compiled kernels.

    Context(device=None, lanes=None, sched=None, in_order=None, copy_lanes=None,
            subdevices=None, trace=None, log=None)

    device: an index as okto.devices() numbers them, or a substring of the device name;
    lanes: compute lanes (1..64); sched: the graphs' default policy (okto.SCHED or its name);
    in_order: True for in-order lanes; trace: a file every graph run writes its trace to;
    log: 'error', 'warn', 'info' or 'debug'. None leaves a setting to okto_config_init (the
    OKTO_* environment variables, else automatic).

    Tensors, graphs and kernels keep their context alive; close() drops this object's
    reference (they keep working), after which this object makes nothing new.
    """

    _kind = "Context"

    def __init__(self, device=None, lanes=None, sched=None, in_order=None, copy_lanes=None,
                 subdevices=None, trace=None, log=None):
        cfg = _config(device, lanes, sched, in_order, copy_lanes, subdevices, trace, log)
        out = ffi.new("okto_context **")
        check(lib.okto_context_create(cfg, out))
        self._h = out[0]
        self._cl_keep = None

    @classmethod
    def from_cl(cls, cl_context, device=None, **config):
        """A context over the caller's OpenCL context (a pyopencl.Context or a raw handle) and
        one of its devices (default: its first). okto retains both; lanes are queues on that
        device. Keyword arguments as for Context()."""
        if device is None:
            devs = getattr(cl_context, "devices", None)
            if not devs:
                raise InvalidArgument("from_cl needs device= for a raw cl_context")
            device = devs[0]
        cfg = _config(**config)
        out = ffi.new("okto_context **")
        check(lib.okto_context_create_from_cl(ffi.cast("cl_context", _intptr(cl_context)),
                                              ffi.cast("cl_device_id", _intptr(device)), cfg,
                                              out))
        self = cls.__new__(cls)
        self._h = out[0]
        self._cl_keep = (cl_context, device)
        return self

    def close(self):
        """Drops this object's reference; tensors, graphs and kernels made from it keep it
        alive in C until they are gone too."""
        h, self._h = self._h, ffi.NULL
        if h != ffi.NULL:
            check(lib.okto_context_destroy(h))

    def __del__(self):
        try:
            self.close()
        except Exception:  # at interpreter exit the module may be half gone
            pass

    # ---- properties
    @property
    def lanes(self):
        """Compute + copy lanes."""
        return lib.okto_context_lane_count(self._ptr)

    @property
    def compute_lanes(self):
        return lib.okto_context_compute_lanes(self._ptr)

    @property
    def copy_lanes(self):
        return lib.okto_context_copy_lanes(self._ptr)

    @property
    def in_order(self):
        return bool(lib.okto_context_in_order(self._ptr))

    @property
    def sched(self):
        return SCHED.of(lib.okto_context_sched(self._ptr))

    @property
    def device_name(self):
        return _cl_string(lib.clGetDeviceInfo, lib.okto_context_device(self._ptr),
                          lib.CL_DEVICE_NAME)

    @property
    def cl_context_ptr(self):
        """The cl_context's address (not retained: valid while this context is open)."""
        return int(ffi.cast("intptr_t", lib.okto_context_cl(self._ptr)))

    @property
    def cl_device_ptr(self):
        return int(ffi.cast("intptr_t", lib.okto_context_device(self._ptr)))

    def cl_context(self):
        """okto's OpenCL context as a pyopencl.Context (pyopencl holds its own reference)."""
        from . import _cl

        return _cl.context_of(self)

    def cl_device(self):
        """okto's device as a pyopencl.Device."""
        from . import _cl

        return _cl.device_of(self)

    def __repr__(self):
        if self.closed:
            return "<okto.Context closed>"
        return "<okto.Context %r: %d lanes (%d compute + %d copy), %s>" % (
            self.device_name, self.lanes, self.compute_lanes, self.copy_lanes, self.sched.label)

    # ---- factories
    def tensor(self, array, dtype=None):
        """A new tensor holding a copy of array (see okto.tensor)."""
        return tensor(self, array, dtype)

    def empty(self, shape, dtype="f32"):
        """A new contiguous tensor of that shape; its contents are undefined until written."""
        return Tensor._create(self, shape, as_dtype(dtype))

    def zeros(self, shape, dtype="f32"):
        t = self.empty(shape, dtype)
        t.write(np.zeros(t.shape, np_dtype(t.dtype)))
        return t

    def graph(self, sched=None):
        return Graph(self, sched)

    def kernel(self, source, name):
        return Kernel(self, source, name)

    def tensor_from_cl(self, buffer, shape, dtype="f32", offset=0):
        """A tensor over an OpenCL buffer (see Tensor.from_cl)."""
        return Tensor.from_cl(self, buffer, shape, dtype, offset)


# ---- tensors ----------------------------------------------------------------------------------


def _shape_arg(shape):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise InvalidArgument("a shape is a sequence of ints, not %r" % (shape,)) from None
    if not 1 <= len(shape) <= lib.OKTO_MAX_RANK:
        raise InvalidArgument("rank %d: okto tensors have rank 1 to %d"
                              % (len(shape), lib.OKTO_MAX_RANK))
    if any(d < 1 for d in shape):
        raise InvalidArgument("shape %s: every dimension must be >= 1" % (shape,))
    return shape


def _to_host(array, dt, what):
    """array as a C-contiguous NumPy array ready for okto_tensor_write (returns it and
    whether it is float32 for okto_tensor_write_f32). Non-contiguous arrays are copied with
    np.ascontiguousarray; dtypes convert only as _convert allows."""
    a = np.asarray(array)
    if bfloat16 is not None and a.dtype == bfloat16:
        a = a.view(np.uint16)
    native = np_dtype(dt)
    if a.dtype == native:
        return np.ascontiguousarray(a), False
    if dt.label in _FLOAT_NAMES and a.dtype.kind in "fiu" and a.dtype != np.uint16:
        # float input for a float tensor: okto rounds to f16/bf16 on the host (nearest even)
        return np.ascontiguousarray(a, dtype=np.float32), True
    raise InvalidArgument(
        "%s: a %s array for a %s tensor; pass %s%s" % (
            what, a.dtype, dt.label, native,
            " (or a float array, rounded by okto)" if dt.label in _FLOAT_NAMES else ""))


def tensor(ctx, array, dtype=None):
    """A new tensor on ctx holding a copy of a NumPy array (rank 1-4).

    Without dtype, the array's dtype decides: float32 -> f32, float16 -> f16, int32 -> i32,
    uint16 (bit patterns) or ml_dtypes.bfloat16 -> bf16. Other dtypes (float64, int64, ...)
    are refused with okto.InvalidArgument unless dtype is given, which converts: float data
    to f16/bf16 is rounded by okto on the host (nearest even), exactly as the device rounds;
    int data to i32 must fit. Non-contiguous arrays are copied (np.ascontiguousarray)."""
    if not isinstance(ctx, Context):
        raise InvalidArgument("okto.tensor's first argument is a Context, not %r" % (ctx,))
    a = np.asarray(array)
    if a.dtype == object:
        raise InvalidArgument("cannot make a tensor from %r" % (type(array).__name__,))
    if dtype is None:
        dt = _dtype_of_numpy(a.dtype)
        if dt is None:
            raise InvalidArgument(
                "%s arrays have no okto dtype: okto takes float32, float16, bfloat16 (uint16 "
                "bits or ml_dtypes.bfloat16) and int32; convert (a.astype(np.float32)) or pass "
                "dtype='f32'" % a.dtype)
    else:
        dt = as_dtype(dtype)
        if a.dtype.kind == "f" and dt.label == "i32":
            raise InvalidArgument("float data for an i32 tensor: convert it yourself "
                                  "(a.astype(np.int32)) so the rounding is yours")
        if dt.label == "i32" and a.dtype != np.int32:
            if a.dtype.kind not in "iub":
                raise InvalidArgument("%s data for an i32 tensor" % a.dtype)
            if a.size and (a.min() < -2**31 or a.max() >= 2**31):
                raise InvalidArgument("values outside int32 for an i32 tensor")
            a = a.astype(np.int32)
        elif dt.label in _FLOAT_NAMES and a.dtype not in (np_dtype(dt),) and not (
                bfloat16 is not None and a.dtype == bfloat16 and dt.label == "bf16"):
            if a.dtype.kind not in "fiub":
                raise InvalidArgument("%s data for a %s tensor" % (a.dtype, dt.label))
            a = a.astype(np.float32)
    t = Tensor._create(ctx, a.shape, dt)
    try:
        t.write(a)
    except BaseException:
        t.close()
        raise
    return t


class Tensor(_Handle):
    """A device tensor (rank 1-4) or a view of one. Make them with okto.tensor(ctx, array),
    ctx.tensor(array), ctx.empty(shape, dtype) or Tensor.from_cl; views with slice, reshape,
    permute, transpose, expand and indexing (t[2:5], t[1], t[:, 1:3])."""

    _kind = "Tensor"
    _owned = True  # False for graph-owned tensors (Graph.tensor, okto.nn's outputs)

    def __init__(self, *args, **kwargs):
        raise TypeError("make tensors with okto.tensor(ctx, array), ctx.tensor(array) or "
                        "ctx.empty(shape, dtype)")

    @classmethod
    def _wrap(cls, ptr, ctx, base=None):
        self = cls.__new__(cls)
        self._h = ptr
        self._ctx = ctx  # keeps the Python context alive (C keeps its own reference)
        self._base = base  # a view keeps its base (and what the base keeps) alive
        return self

    @classmethod
    def _create(cls, ctx, shape, dt):
        shape = _shape_arg(shape)
        out = ffi.new("okto_tensor **")
        check(lib.okto_tensor_create(ctx._ptr, dt, len(shape), ffi.new("size_t[]", shape),
                                     out))
        return cls._wrap(out[0], ctx)

    @classmethod
    def from_cl(cls, ctx, buffer, shape, dtype="f32", offset=0):
        """A tensor over an OpenCL buffer of ctx's OpenCL context (a pyopencl.Buffer or a raw
        cl_mem address): elements from `offset` (in elements) on, contiguous in shape. okto
        retains the buffer (clRetainMemObject) and releases it with the tensor's storage, so
        the pyopencl object may go away first. Synchronise as the README says: finish the
        pyopencl queue before okto uses the data, and wait okto's graph before pyopencl does.
        """
        if not isinstance(ctx, Context):
            raise InvalidArgument("from_cl's first argument is a Context")
        shape = _shape_arg(shape)
        dt = as_dtype(dtype)
        offset = operator.index(offset)
        if offset < 0:
            raise InvalidArgument("offset must be >= 0")
        mem = ffi.cast("cl_mem", _intptr(buffer))
        if mem == ffi.NULL:
            raise InvalidArgument("from_cl: a NULL buffer")
        ctx_ptr = ctx._ptr
        check_cl(lib.clRetainMemObject(mem), "clRetainMemObject")
        out = ffi.new("okto_tensor **")
        st = lib.okto_tensor_from_cl(ctx_ptr, mem, offset, dt, len(shape),
                                     ffi.new("size_t[]", shape), 1, out)
        if st != 0:
            lib.clReleaseMemObject(mem)
            check(st)
        return cls._wrap(out[0], ctx)  # okto holds the cl_mem now, not the Python object

    def close(self):
        """Destroys this tensor (its storage lives on while views or graphs use it). Raises
        okto.Busy, leaving it intact, while a launched graph uses it."""
        h = self._h
        if h == ffi.NULL:
            return
        if self._owned:
            check(lib.okto_tensor_destroy(h))
        self._h = ffi.NULL
        self._base = None

    def __del__(self):
        h = getattr(self, "_h", ffi.NULL)
        if h == ffi.NULL or not self._owned:
            return
        try:
            if lib.okto_tensor_destroy(h) != 0:
                _LEAKED.append(h)  # a launched graph holds it: retried at exit
        except Exception:
            pass
        self._h = ffi.NULL

    # ---- queries
    @property
    def context(self):
        return self._ctx

    @property
    def rank(self):
        return lib.okto_tensor_rank(self._ptr)

    ndim = rank

    @property
    def shape(self):
        h = self._ptr
        return tuple(int(lib.okto_tensor_dim(h, d)) for d in range(lib.okto_tensor_rank(h)))

    @property
    def strides(self):
        """Strides in elements (okto's unit; NumPy's strides are in bytes)."""
        h = self._ptr
        return tuple(int(lib.okto_tensor_stride(h, d)) for d in range(lib.okto_tensor_rank(h)))

    @property
    def dtype(self):
        return DTYPE.of(lib.okto_tensor_dtype(self._ptr))

    @property
    def np_dtype(self):
        return np_dtype(self.dtype)

    @property
    def size(self):
        return int(lib.okto_tensor_numel(self._ptr))

    numel = size

    @property
    def nbytes(self):
        return int(lib.okto_tensor_nbytes(self._ptr))

    @property
    def is_contiguous(self):
        return bool(lib.okto_tensor_is_contiguous(self._ptr))

    @property
    def offset(self):
        """Where this tensor starts in its buffer, in elements."""
        return int(lib.okto_tensor_offset(self._ptr))

    @property
    def cl_mem_ptr(self):
        """The cl_mem's address (not retained: valid while the storage lives)."""
        return int(ffi.cast("intptr_t", lib.okto_tensor_cl_mem(self._ptr)))

    def __len__(self):
        return self.shape[0]

    def describe(self):
        buf = ffi.new("char[]", 160)
        return _str(lib.okto_tensor_describe(self._ptr, buf, 160))

    def __repr__(self):
        if self.closed:
            return "<okto.Tensor closed>"
        return "<okto.Tensor %s strides=%s%s>" % (
            self.describe(), self.strides, "" if self.is_contiguous else " (view)")

    @property
    def requires_grad(self):
        """Whether the storage is marked as a parameter (okto_tensor_set_requires_grad):
        set it before recording the ops that read it; okto.backward then gives its gradient.
        The mark belongs to the storage, so every view shares it."""
        return bool(lib.okto_tensor_requires_grad(self._ptr))

    @requires_grad.setter
    def requires_grad(self, on):
        check(lib.okto_tensor_set_requires_grad(self._ptr, 1 if on else 0))

    # ---- data
    def numpy(self, dtype=None):
        """A new NumPy array with the tensor's elements (row-major in its shape; views of any
        strides). dtype None: the tensor's own (f16 -> float16, bf16 -> uint16 bits,
        i32 -> int32); np.float32: converted by okto (bf16/f16 widened exactly)."""
        h = self._ptr
        shape = self.shape
        if dtype is not None and np.dtype(dtype) == np.float32 and self.dtype.label != "f32":
            out = np.empty(shape, np.float32)
            check(lib.okto_tensor_read_f32(h, ffi.cast("float *", ffi.from_buffer(out))))
            return out
        out = np.empty(shape, self.np_dtype)
        check(lib.okto_tensor_read(h, ffi.from_buffer(out)))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            if bfloat16 is not None and np.dtype(dtype) == bfloat16 and self.dtype.label == "bf16":
                return out.view(bfloat16)
            return out.astype(dtype)
        return out

    def __array__(self, dtype=None, copy=None):
        return self.numpy(dtype)

    def write(self, array):
        """Copies a NumPy array of this tensor's shape into it (blocking). The array is the
        tensor's NumPy dtype (as numpy() returns it), or float data for a float tensor
        (rounded by okto). Non-contiguous arrays are copied first."""
        h = self._ptr
        dt = self.dtype
        a, as_f32 = _to_host(array, dt, "write")
        if a.shape != self.shape:
            raise InvalidArgument("write: array of shape %s for a tensor of shape %s"
                                  % (a.shape, self.shape))
        if as_f32:
            check(lib.okto_tensor_write_f32(h, ffi.cast("float *", ffi.from_buffer(a))))
        else:
            check(lib.okto_tensor_write(h, ffi.from_buffer(a)))

    # ---- views
    def _view(self, fn, *args):
        out = ffi.new("okto_tensor **")
        check(fn(self._ptr, *args, out))
        return Tensor._wrap(out[0], self._ctx, base=self)

    def slice(self, dim, start, length):
        """Elements [start, start + length) of dimension dim (negative dim from the end)."""
        dim = operator.index(dim)
        start, length = operator.index(start), operator.index(length)
        if start < 0 or length < 0:
            raise InvalidArgument("slice: start %d and length %d must be >= 0" % (start, length))
        return self._view(lib.okto_tensor_slice, dim + self.rank if dim < 0 else dim, start,
                          length)

    def view(self, row0, rows):
        """Rows [row0, row0 + rows) of dimension 0."""
        row0, rows = operator.index(row0), operator.index(rows)
        if row0 < 0 or rows < 0:
            raise InvalidArgument("view: row0 %d and rows %d must be >= 0" % (row0, rows))
        return self._view(lib.okto_tensor_view, row0, rows)

    def reshape(self, *shape):
        """The same elements in another shape (this tensor must be contiguous; one -1 allowed).
        """
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        shape = [operator.index(d) for d in shape]
        if shape.count(-1) == 1:
            known = int(np.prod([d for d in shape if d != -1])) or 1
            shape[shape.index(-1)] = self.size // known
        shape = _shape_arg(shape)
        return self._view(lib.okto_tensor_reshape, len(shape), ffi.new("size_t[]", shape))

    def permute(self, *perm):
        """Dimensions reordered: dimension i of the result is this tensor's perm[i]."""
        if len(perm) == 1 and not isinstance(perm[0], numbers.Integral):
            perm = tuple(perm[0])
        perm = [operator.index(p) for p in perm]
        if len(perm) != self.rank:
            raise InvalidArgument("permute: %d dimensions for a rank-%d tensor"
                                  % (len(perm), self.rank))
        return self._view(lib.okto_tensor_permute, ffi.new("int[]", perm))

    def transpose(self, d0=-2, d1=-1):
        """Dimensions d0 and d1 swapped (default: the last two)."""
        r = self.rank
        d0, d1 = operator.index(d0), operator.index(d1)
        return self._view(lib.okto_tensor_transpose, d0 + r if d0 < 0 else d0,
                          d1 + r if d1 < 0 else d1)

    @property
    def T(self):
        return self.transpose()

    def expand(self, *shape):
        """Broadcast to shape (stride 0 in the broadcast dimensions); ops may read it only."""
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        shape = _shape_arg(shape)
        return self._view(lib.okto_tensor_expand, len(shape), ffi.new("size_t[]", shape))

    def __getitem__(self, index):
        """t[2:5] (rows), t[1] (row 1, its dimension dropped: t must then be contiguous),
        t[:, 1:3], ...; steps other than 1 are refused (views have no steps)."""
        if not isinstance(index, tuple):
            index = (index,)
        shape = self.shape
        if len(index) > len(shape):
            raise IndexError("%d indices for a rank-%d tensor" % (len(index), len(shape)))
        t, dropped = self, []
        for d, ix in enumerate(index):
            if isinstance(ix, slice):
                start, stop, step = ix.indices(shape[d])
                if step != 1:
                    raise InvalidArgument("tensor views take steps of 1 only, not %d" % step)
                if stop <= start:
                    raise InvalidArgument("empty slice %d:%d of dimension %d (okto has no "
                                          "empty tensors)" % (start, stop, d))
                if (start, stop) != (0, shape[d]):
                    t = t.slice(d, start, stop - start)
            elif ix is Ellipsis or ix is None:
                raise InvalidArgument("tensor indexing takes ints and slices only")
            else:
                i = operator.index(ix)
                if i < 0:
                    i += shape[d]
                if not 0 <= i < shape[d]:
                    raise IndexError("index %d out of range for dimension %d of size %d"
                                     % (operator.index(ix), d, shape[d]))
                t = t.slice(d, i, 1)
                dropped.append(d)
        if dropped:
            keep = [n for d, n in enumerate(t.shape) if d not in dropped] or [1]
            if not t.is_contiguous:
                raise InvalidArgument(
                    "t[...] with an int index drops a dimension, which needs a contiguous "
                    "result; use a slice (t[:, i:i+1]) to keep the dimension")
            t = t.reshape(keep)
        return t

    # ---- interop
    def to_pyopencl(self, queue):
        """This tensor as a pyopencl.array.Array on queue (same memory, no copy). See the
        README for the synchronisation rule."""
        from . import _cl

        return _cl.array_of(self, queue)


def check_cl(err, what):
    if err != lib.CL_SUCCESS:
        from ._errors import OpenCLError

        raise OpenCLError("%s failed: %d" % (what, err))


# ---- kernels ----------------------------------------------------------------------------------


class Kernel(_Handle):
    """A user OpenCL kernel: Kernel(ctx, source, name). Record launches of it with
    Graph.launch_kernel. A tensor argument is two kernel parameters (global T *buf, ulong
    offset in elements); see okto/ops.h. Raises okto.BuildError with the build log."""

    _kind = "Kernel"

    def __init__(self, ctx, source, name):
        if not isinstance(ctx, Context):
            raise InvalidArgument("Kernel's first argument is a Context")
        out = ffi.new("okto_kernel **")
        check(lib.okto_kernel_create(ctx._ptr, source.encode(), name.encode(), out))
        self._h = out[0]
        self._ctx = ctx
        self.name = name

    def close(self):
        """Launches already recorded keep working."""
        h, self._h = self._h, ffi.NULL
        if h != ffi.NULL:
            check(lib.okto_kernel_destroy(h))

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Arg:
    """A kernel argument: okto.R(t), okto.W(t), okto.RW(t) (how the kernel touches a
    tensor), okto.Local(nbytes) (__local memory), or a by-value NumPy scalar or bytes."""

    __slots__ = ("kind", "tensor", "value")

    def __init__(self, kind, tensor=None, value=None):
        self.kind, self.tensor, self.value = kind, tensor, value


def R(t):
    return Arg(lib.OKTO_ARG_R, t)


def W(t):
    return Arg(lib.OKTO_ARG_W, t)


def RW(t):
    return Arg(lib.OKTO_ARG_RW, t)


def Local(nbytes):
    return Arg(lib.OKTO_ARG_LOCAL, value=operator.index(nbytes))


# ---- events (launch_ex) -------------------------------------------------------------------


class Event(_Handle):
    """An OpenCL event that okto handed over (Graph.launch_ex's done event); released on
    close() or garbage collection. wait() blocks (without the GIL) until it completes."""

    _kind = "Event"

    def __init__(self, ptr):
        self._h = ptr

    @property
    def int_ptr(self):
        return int(ffi.cast("intptr_t", self._ptr))

    def wait(self):
        ev = ffi.new("cl_event[1]", [self._ptr])
        check_cl(lib.clWaitForEvents(1, ev), "clWaitForEvents")

    @property
    def status(self):
        """CL_EVENT_COMMAND_EXECUTION_STATUS: 0 (CL_COMPLETE) when done, negative on error."""
        v = ffi.new("cl_int *")
        check_cl(lib.clGetEventInfo(self._ptr, lib.CL_EVENT_COMMAND_EXECUTION_STATUS,
                                    ffi.sizeof("cl_int"), v, ffi.NULL), "clGetEventInfo")
        return int(v[0])

    def to_pyopencl(self):
        """A pyopencl.Event of the same event (pyopencl retains its own reference)."""
        from . import _cl

        return _cl.event_of(self)

    def close(self):
        h, self._h = self._h, ffi.NULL
        if h != ffi.NULL:
            lib.clReleaseEvent(h)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---- graphs -------------------------------------------------------------------------------

_INFLIGHT = set()  # launched graphs, held until waited so GC cannot free them under the lanes
_INFLIGHT_LOCK = threading.Lock()
_LEAKED = []  # handles whose destroy found them busy (only if a graph was lost in flight)


@atexit.register
def _wait_all():
    with _INFLIGHT_LOCK:
        graphs = list(_INFLIGHT)
    for g in graphs:
        try:
            g.wait()
        except Exception:
            pass
    for h in _LEAKED:
        lib.okto_tensor_destroy(h)
    del _LEAKED[:]


def _flags(trans_a, trans_b, accumulate=False):
    return ((lib.OKTO_TRANS_A if trans_a else 0) | (lib.OKTO_TRANS_B if trans_b else 0)
            | (lib.OKTO_ACCUMULATE if accumulate else 0))


def _pair(name, v):
    """An int or a pair of ints -> (h, w)."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = _int_arg(name, v)
        return v, v
    try:
        h, w = v
        return _int_arg(name, h), _int_arg(name, w)
    except (TypeError, ValueError):
        raise InvalidArgument("%s must be an int or a pair of ints, not %r" % (name, v)) from None


def _pool_geom(kernel, stride, padding):
    k = _pair("kernel", kernel)
    return k, k if stride is None else _pair("stride", stride), _pair("padding", padding)


def _invalidate(refs):
    """Closes the Python side of tensors whose C handle its owner (a graph, an nn) freed, so
    using them raises InvalidState instead of touching freed memory."""
    for r in refs:
        t = r()
        if t is not None:
            t._h = ffi.NULL
            t._base = None


def backward(graph, loss, params, grads=None, accumulate=False):
    """okto_backward: records the gradients of sum(loss) with respect to params into graph
    (after its forward ops) and returns them (see Graph.backward)."""
    if not isinstance(graph, Graph):
        raise InvalidArgument("backward's first argument is an okto.Graph")
    return graph.backward(loss, params, grads, accumulate)


class Graph(_Handle):
    """A task graph: ops record into it once; run() (or launch() + wait()) replays it.

    Graph(ctx, sched=None). Every op method returns the graph, so calls chain. A failing op
    raises at once (okto also keeps the error in the graph: status(), clear_error()).
    Tensors, kernels and host arrays recorded stay referenced by the graph until it is closed.
    """

    _kind = "Graph"

    def __init__(self, ctx, sched=None):
        if not isinstance(ctx, Context):
            raise InvalidArgument("Graph's first argument is a Context, not %r" % (ctx,))
        out = ffi.new("okto_graph **")
        check(lib.okto_graph_create(ctx._ptr, out))
        self._h = out[0]
        self._ctx = ctx
        self._keep = {}  # id -> object recorded (tensors, kernels, host arrays)
        self._launched = False
        if sched is not None:
            self.sched = sched

    def close(self):
        """Destroys the graph. Raises okto.Busy (graph intact) while a launch is in flight."""
        h = self._h
        if h == ffi.NULL:
            return
        check(lib.okto_graph_destroy(h))
        self._h = ffi.NULL
        self._keep = {}
        _invalidate(self.__dict__.pop("_owned_refs", ()))

    def __del__(self):
        h = getattr(self, "_h", ffi.NULL)
        if h == ffi.NULL:
            return
        try:  # never in flight here (_INFLIGHT holds launched graphs), but be safe
            if lib.okto_graph_destroy(h) != 0:
                lib.okto_graph_wait(h)
                lib.okto_graph_destroy(h)
        except Exception:
            pass
        self._h = ffi.NULL

    # ---- state
    @property
    def context(self):
        return self._ctx

    @property
    def sched(self):
        """The graph's policy (okto.SCHED.AUTO: its context's). Settable."""
        return SCHED.of(self._sched_value) if hasattr(self, "_sched_value") else SCHED.AUTO

    @sched.setter
    def sched(self, value):
        s = SCHED.of(value)
        check(lib.okto_graph_set_sched(self._ptr, s))
        self._sched_value = int(s)

    @property
    def task_count(self):
        return lib.okto_graph_task_count(self._ptr)

    def __len__(self):
        return self.task_count

    def status(self):
        """(okto.STATUS, message) of the graph's first recording error; (STATUS.OK, '')."""
        msg = ffi.new("const char **")
        st = lib.okto_graph_status(self._ptr, msg)
        from ._enums import STATUS

        return STATUS.of(st), _str(msg[0])

    def clear_error(self):
        lib.okto_graph_clear_error(self._ptr)
        return self

    def __repr__(self):
        if self.closed:
            return "<okto.Graph closed>"
        return "<okto.Graph %d tasks%s>" % (self.task_count, ", launched" if self._launched
                                            else "")

    # ---- recording helpers
    def _t(self, x, name):
        if not isinstance(x, Tensor):
            raise InvalidArgument("%s must be an okto.Tensor, not %s" % (name, type(x).__name__))
        p = x._ptr
        self._keep[id(x)] = x
        return p

    def _opt(self, x, name):
        return ffi.NULL if x is None else self._t(x, name)

    # ---- data movement and BLAS-1
    def fill(self, x, value):
        """x = value (i32: rounded toward zero)."""
        check(lib.okto_fill(self._ptr, self._t(x, "x"), float(value)))
        return self

    def copy(self, dst, src):
        check(lib.okto_copy(self._ptr, self._t(dst, "dst"), self._t(src, "src")))
        return self

    def cast(self, dst, src):
        """dst = src converted to dst's dtype."""
        check(lib.okto_cast(self._ptr, self._t(dst, "dst"), self._t(src, "src")))
        return self

    def contiguous(self, src):
        """A new contiguous tensor that the graph fills with src (returned)."""
        out = ffi.new("okto_tensor **")
        check(lib.okto_contiguous(self._ptr, self._t(src, "src"), out))
        t = Tensor._wrap(out[0], src._ctx)
        self._keep[id(t)] = t
        return t

    def axpy(self, y, alpha, x):
        """y += alpha x."""
        check(lib.okto_axpy(self._ptr, self._t(y, "y"), float(alpha), self._t(x, "x")))
        return self

    def scale(self, x, alpha):
        """x *= alpha."""
        check(lib.okto_scale(self._ptr, self._t(x, "x"), float(alpha)))
        return self

    def _host(self, array, t, what, writable):
        if not isinstance(array, np.ndarray):
            raise InvalidArgument("%s: the host buffer must be a NumPy array" % what)
        native = np_dtype(t.dtype)
        a = array.view(np.uint16) if bfloat16 is not None and array.dtype == bfloat16 else array
        # Refused rather than converted: the graph reads (or writes) this very array on every
        # launch, so a converted copy would silently stop following the caller's array.
        if a.dtype != native:
            raise InvalidArgument("%s: a %s array for a %s tensor; it must be %s (the graph "
                                  "uses this array itself on every launch, so it is not "
                                  "converted)" % (what, array.dtype, t.dtype.label, native))
        if not a.flags.c_contiguous:
            raise InvalidArgument("%s: the array must be C-contiguous (np.ascontiguousarray); "
                                  "the graph uses it in place" % what)
        if writable and not a.flags.writeable:
            raise InvalidArgument("%s: the array is read-only" % what)
        if a.size != t.size:
            raise InvalidArgument("%s: %d elements in the array, %d in the tensor %s"
                                  % (what, a.size, t.size, t.describe()))
        self._keep[id(array)] = array  # replayed on every launch: kept for the graph's life
        return ffi.from_buffer(a, require_writable=writable)

    def upload(self, t, array):
        """Records host -> device: on every launch the graph reads `array` (a C-contiguous
        NumPy array of t's NumPy dtype and size, kept alive by the graph); change it in place
        between runs, not while one is in flight."""
        p = self._t(t, "t")
        check(lib.okto_upload(self._ptr, p, self._host(array, t, "upload", False)))
        return self

    def download(self, t, out=None):
        """Records device -> host into `out` (a new array of t's shape and NumPy dtype when
        None); returns the array, which holds the data after each wait()."""
        p = self._t(t, "t")
        if out is None:
            out = np.empty(t.shape, t.np_dtype)
        check(lib.okto_download(self._ptr, self._host(out, t, "download", True), p))
        return out

    # ---- matmul
    def matmul(self, c, a, b, trans_a=False, trans_b=False, accumulate=False):
        """c = op(a) op(b) (c += with accumulate) for 2-D tensors."""
        check(lib.okto_matmul(self._ptr, self._t(c, "c"), self._t(a, "a"), self._t(b, "b"),
                              _flags(trans_a, trans_b, accumulate)))
        return self

    def gemm(self, c, a, b, alpha=1.0, beta=0.0, trans_a=False, trans_b=False):
        """c = alpha op(a) op(b) + beta c."""
        check(lib.okto_gemm(self._ptr, self._t(c, "c"), float(alpha), self._t(a, "a"),
                            self._t(b, "b"), float(beta), _flags(trans_a, trans_b)))
        return self

    # ---- reductions
    def reduce(self, out, x, op="sum", axis=-1):
        """out = op over dimension axis of x (out: x's shape with that dimension 1 or gone)."""
        check(lib.okto_reduce(self._ptr, self._t(out, "out"), self._t(x, "x"), REDUCE.of(op),
                              operator.index(axis)))
        return self

    def reduce_all(self, out, x, op="sum"):
        """out (one element) = op over every element of x."""
        check(lib.okto_reduce_all(self._ptr, self._t(out, "out"), self._t(x, "x"),
                                  REDUCE.of(op)))
        return self

    # ---- elementwise
    def map(self, out, x, op):
        """out = op(x) (okto.MAP or its name: 'relu', 'exp', ...); out may be x."""
        check(lib.okto_map(self._ptr, self._t(out, "out"), self._t(x, "x"), MAP.of(op)))
        return self

    def zip(self, out, a, b, op):
        """out = a op b with NumPy broadcasting (okto.ZIP or its name: 'add', 'relu_grad')."""
        check(lib.okto_zip(self._ptr, self._t(out, "out"), self._t(a, "a"), self._t(b, "b"),
                           ZIP.of(op)))
        return self

    def zip_scalar(self, out, a, s, op):
        """out = a op s for a float s."""
        check(lib.okto_zip_scalar(self._ptr, self._t(out, "out"), self._t(a, "a"), float(s),
                                  ZIP.of(op)))
        return self

    # ---- softmax and loss
    def softmax(self, out, x):
        """Over the last dimension; out may be x."""
        check(lib.okto_softmax(self._ptr, self._t(out, "out"), self._t(x, "x")))
        return self

    def softmax_xent(self, loss, grad, logits, labels):
        """loss (1 element, or None) = mean cross-entropy of softmax(logits) against i32
        labels; grad (logits' shape, or None) = (softmax - onehot) / rows."""
        check(lib.okto_softmax_xent(self._ptr, self._opt(loss, "loss"),
                                    self._opt(grad, "grad"), self._t(logits, "logits"),
                                    self._t(labels, "labels")))
        return self

    # ---- gradients of the elementwise ops
    def map_backward(self, dx, dy, x, op, accumulate=False):
        """dx = dy * f'(x) for okto_map's op (dx += with accumulate); dx may be dy."""
        check(lib.okto_map_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                    self._t(x, "x"), MAP.of(op), _flags(0, 0, accumulate)))
        return self

    def zip_backward(self, da, db, dy, a, b, op, accumulate=False):
        """The gradients of out = a op b: da (a's shape, summed over a's broadcast
        dimensions) and db; either may be None."""
        check(lib.okto_zip_backward(self._ptr, self._opt(da, "da"), self._opt(db, "db"),
                                    self._t(dy, "dy"), self._t(a, "a"), self._t(b, "b"),
                                    ZIP.of(op), _flags(0, 0, accumulate)))
        return self

    def sum_to(self, out, x, accumulate=False):
        """out = x summed over the dimensions out broadcasts along (a broadcast's gradient)."""
        check(lib.okto_sum_to(self._ptr, self._t(out, "out"), self._t(x, "x"),
                              _flags(0, 0, accumulate)))
        return self

    # ---- normalisation
    def layernorm(self, y, x, weight=None, bias=None, eps=1e-5, mean=None, rstd=None):
        """y = (x - mean) rstd weight + bias over the last dimension; weight, bias [cols] or
        None; mean, rstd: optional f32 outputs (one per row) for layernorm_backward."""
        check(lib.okto_layernorm(self._ptr, self._t(y, "y"), self._opt(mean, "mean"),
                                 self._opt(rstd, "rstd"), self._t(x, "x"),
                                 self._opt(weight, "weight"), self._opt(bias, "bias"),
                                 float(eps)))
        return self

    def layernorm_backward(self, dx, dweight, dbias, dy, x, weight, mean, rstd,
                           accumulate=False):
        check(lib.okto_layernorm_backward(
            self._ptr, self._opt(dx, "dx"), self._opt(dweight, "dweight"),
            self._opt(dbias, "dbias"), self._t(dy, "dy"), self._t(x, "x"),
            self._opt(weight, "weight"), self._t(mean, "mean"), self._t(rstd, "rstd"),
            _flags(0, 0, accumulate)))
        return self

    def rmsnorm(self, y, x, weight=None, eps=1e-5, rstd=None):
        """y = x rstd weight, rstd = 1 / sqrt(mean(x^2) + eps) over the last dimension."""
        check(lib.okto_rmsnorm(self._ptr, self._t(y, "y"), self._opt(rstd, "rstd"),
                               self._t(x, "x"), self._opt(weight, "weight"), float(eps)))
        return self

    def rmsnorm_backward(self, dx, dweight, dy, x, weight, rstd, accumulate=False):
        check(lib.okto_rmsnorm_backward(self._ptr, self._opt(dx, "dx"),
                                        self._opt(dweight, "dweight"), self._t(dy, "dy"),
                                        self._t(x, "x"), self._opt(weight, "weight"),
                                        self._t(rstd, "rstd"), _flags(0, 0, accumulate)))
        return self

    # ---- softmax gradients, log-softmax
    def softmax_backward(self, dx, dy, y, accumulate=False):
        """dx = y (dy - sum(dy y)) from softmax's output y."""
        check(lib.okto_softmax_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                        self._t(y, "y"), _flags(0, 0, accumulate)))
        return self

    def log_softmax(self, y, x):
        """y = x - max - log(sum(exp(x - max))) over the last dimension; y may be x."""
        check(lib.okto_log_softmax(self._ptr, self._t(y, "y"), self._t(x, "x")))
        return self

    def log_softmax_backward(self, dx, dy, y, accumulate=False):
        check(lib.okto_log_softmax_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                            self._t(y, "y"), _flags(0, 0, accumulate)))
        return self

    # ---- cross-entropy
    def cross_entropy(self, loss, logits, labels, ignore_index=None, stat=None):
        """loss (1 element) = mean over rows whose label is not ignore_index of
        -log softmax(logits)[label]; ignore_index None ignores nothing (PyTorch's -100 must
        be asked for). stat: optional f32 [2 rows] for cross_entropy_backward."""
        ii = lib.OKTO_IGNORE_NONE if ignore_index is None else _int_arg("ignore_index",
                                                                         ignore_index)
        check(lib.okto_cross_entropy(self._ptr, self._t(loss, "loss"), self._opt(stat, "stat"),
                                     self._t(logits, "logits"), self._t(labels, "labels"), ii))
        return self

    def cross_entropy_backward(self, dlogits, dloss, logits, labels, stat=None,
                               ignore_index=None, accumulate=False):
        ii = lib.OKTO_IGNORE_NONE if ignore_index is None else _int_arg("ignore_index",
                                                                         ignore_index)
        check(lib.okto_cross_entropy_backward(
            self._ptr, self._t(dlogits, "dlogits"), self._t(dloss, "dloss"),
            self._t(logits, "logits"), self._t(labels, "labels"), self._opt(stat, "stat"), ii,
            _flags(0, 0, accumulate)))
        return self

    # ---- embedding, dropout, argmax
    def embedding(self, out, table, ids):
        """out[t, :] = table[ids[t], :] (ids i32, any shape)."""
        check(lib.okto_embedding(self._ptr, self._t(out, "out"), self._t(table, "table"),
                                 self._t(ids, "ids")))
        return self

    def embedding_backward(self, dtable, dout, ids, padding_idx=-1, accumulate=False):
        check(lib.okto_embedding_backward(self._ptr, self._t(dtable, "dtable"),
                                          self._t(dout, "dout"), self._t(ids, "ids"),
                                          _int_arg("padding_idx", padding_idx),
                                          _flags(0, 0, accumulate)))
        return self

    def dropout(self, y, x, p, seed, stream=0):
        """y = mask x / (1 - p); seed: an i32 tensor of 2 elements (the Philox key); stream
        tells a graph's dropout sites apart."""
        check(lib.okto_dropout(self._ptr, self._t(y, "y"), self._t(x, "x"), float(p),
                               self._t(seed, "seed"), _uint_arg("stream", stream)))
        return self

    def dropout_backward(self, dx, dy, p, seed, stream=0, accumulate=False):
        check(lib.okto_dropout_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                        float(p), self._t(seed, "seed"),
                                        _uint_arg("stream", stream), _flags(0, 0, accumulate)))
        return self

    def seed_advance(self, seed):
        """seed += 1 (as one 64-bit value) on the device: a new dropout mask per run."""
        check(lib.okto_seed_advance(self._ptr, self._t(seed, "seed")))
        return self

    def argmax(self, out, x):
        """out (i32, one per row) = the index of each row's largest element (first on ties)."""
        check(lib.okto_argmax(self._ptr, self._t(out, "out"), self._t(x, "x")))
        return self

    # ---- optimizer steps (see okto/ops.h for sched's layout)
    def sched_advance(self, sched):
        check(lib.okto_sched_advance(self._ptr, self._t(sched, "sched")))
        return self

    def adamw_prepare(self, sched, beta1=0.9, beta2=0.999):
        check(lib.okto_adamw_prepare(self._ptr, self._t(sched, "sched"), float(beta1),
                                     float(beta2)))
        return self

    def sgd(self, param, grad, sched, momentum_buf=None, momentum=0.0, weight_decay=0.0,
            nesterov=False, gscale=None):
        """PyTorch's SGD step; sched: f32 [4] with the rate in sched[0]."""
        check(lib.okto_sgd(self._ptr, self._t(param, "param"), self._t(grad, "grad"),
                           self._opt(momentum_buf, "momentum_buf"), self._t(sched, "sched"),
                           self._opt(gscale, "gscale"), float(momentum), float(weight_decay),
                           1 if nesterov else 0))
        return self

    def adamw(self, param, grad, m, v, sched, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.01, gscale=None):
        """PyTorch's AdamW step (record sched_advance and adamw_prepare first)."""
        check(lib.okto_adamw(self._ptr, self._t(param, "param"), self._t(grad, "grad"),
                             self._t(m, "m"), self._t(v, "v"), self._t(sched, "sched"),
                             self._opt(gscale, "gscale"), float(beta1), float(beta2),
                             float(eps), float(weight_decay)))
        return self

    def clip_grad_norm(self, grads, max_norm, out):
        """out (f32 [2]) = {scale, norm} of the global L2 norm over grads."""
        grads = list(grads)
        arr = ffi.new("okto_tensor *[]", [self._t(t, "grads[%d]" % i)
                                           for i, t in enumerate(grads)] or [ffi.NULL])
        check(lib.okto_clip_grad_norm(self._ptr, len(grads), arr, float(max_norm),
                                      self._t(out, "out")))
        return self

    # ---- attention, convolution, pooling
    def attention(self, o, q, k, v, scale=0.0, causal=False, lse=None):
        """o = softmax(scale q k^T [+ causal mask]) v over [B, H, T, D]; scale 0: 1/sqrt(D);
        lse: optional f32 [B, H, Tq] for attention_backward."""
        check(lib.okto_attention(self._ptr, self._t(o, "o"), self._opt(lse, "lse"),
                                 self._t(q, "q"), self._t(k, "k"), self._t(v, "v"),
                                 float(scale), 1 if causal else 0))
        return self

    def attention_backward(self, dq, dk, dv, dout, q, k, v, o, lse, scale=0.0, causal=False,
                           accumulate=False):
        check(lib.okto_attention_backward(
            self._ptr, self._opt(dq, "dq"), self._opt(dk, "dk"), self._opt(dv, "dv"),
            self._t(dout, "dout"), self._t(q, "q"), self._t(k, "k"), self._t(v, "v"),
            self._t(o, "o"), self._t(lse, "lse"), float(scale), 1 if causal else 0,
            _flags(0, 0, accumulate)))
        return self

    def conv2d(self, y, x, w, bias=None, stride=1, padding=0, dilation=1):
        """PyTorch's conv2d (groups 1): x [N, C, H, W], w [Cout, C, KH, KW]; stride, padding
        and dilation an int or (h, w)."""
        (sh, sw), (ph, pw), (dh, dw) = _pair("stride", stride), _pair("padding", padding), \
            _pair("dilation", dilation)
        check(lib.okto_conv2d(self._ptr, self._t(y, "y"), self._t(x, "x"), self._t(w, "w"),
                              self._opt(bias, "bias"), sh, sw, ph, pw, dh, dw))
        return self

    def conv2d_backward(self, dx, dw, dbias, dy, x, w, stride=1, padding=0, dilation=1,
                        accumulate=False):
        (sh, sw), (ph, pw), (dh, dw_) = _pair("stride", stride), _pair("padding", padding), \
            _pair("dilation", dilation)
        check(lib.okto_conv2d_backward(self._ptr, self._opt(dx, "dx"), self._opt(dw, "dw"),
                                       self._opt(dbias, "dbias"), self._t(dy, "dy"),
                                       self._t(x, "x"), self._t(w, "w"), sh, sw, ph, pw, dh,
                                       dw_, _flags(0, 0, accumulate)))
        return self

    def max_pool2d(self, y, x, kernel, stride=None, padding=0, argmax=None):
        """Max pooling (floor mode, -inf padding); stride None: the kernel's; argmax:
        optional i32 of y's shape for max_pool2d_backward."""
        (kh, kw), (sh, sw), (ph, pw) = _pool_geom(kernel, stride, padding)
        check(lib.okto_max_pool2d(self._ptr, self._t(y, "y"), self._opt(argmax, "argmax"),
                                  self._t(x, "x"), kh, kw, sh, sw, ph, pw))
        return self

    def max_pool2d_backward(self, dx, dy, argmax, kernel, stride=None, padding=0,
                            accumulate=False):
        (kh, kw), (sh, sw), (ph, pw) = _pool_geom(kernel, stride, padding)
        check(lib.okto_max_pool2d_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                           self._t(argmax, "argmax"), kh, kw, sh, sw, ph, pw,
                                           _flags(0, 0, accumulate)))
        return self

    def avg_pool2d(self, y, x, kernel, stride=None, padding=0):
        """Average pooling, count_include_pad as PyTorch's default."""
        (kh, kw), (sh, sw), (ph, pw) = _pool_geom(kernel, stride, padding)
        check(lib.okto_avg_pool2d(self._ptr, self._t(y, "y"), self._t(x, "x"), kh, kw, sh, sw,
                                  ph, pw))
        return self

    def avg_pool2d_backward(self, dx, dy, kernel, stride=None, padding=0, accumulate=False):
        (kh, kw), (sh, sw), (ph, pw) = _pool_geom(kernel, stride, padding)
        check(lib.okto_avg_pool2d_backward(self._ptr, self._t(dx, "dx"), self._t(dy, "dy"),
                                           kh, kw, sh, sw, ph, pw, _flags(0, 0, accumulate)))
        return self

    def global_avg_pool2d(self, y, x):
        check(lib.okto_global_avg_pool2d(self._ptr, self._t(y, "y"), self._t(x, "x")))
        return self

    def global_avg_pool2d_backward(self, dx, dy, accumulate=False):
        check(lib.okto_global_avg_pool2d_backward(self._ptr, self._t(dx, "dx"),
                                                  self._t(dy, "dy"), _flags(0, 0, accumulate)))
        return self

    # ---- concat and split
    def _tensor_array(self, ts, name):
        ts = list(ts)
        return len(ts), ffi.new("okto_tensor *[]", [self._t(t, "%s[%d]" % (name, i))
                                                     for i, t in enumerate(ts)] or [ffi.NULL])

    def concat(self, out, ins, dim=0):
        """out = the tensors ins joined along dim."""
        n, arr = self._tensor_array(ins, "ins")
        check(lib.okto_concat(self._ptr, self._t(out, "out"), n, arr, operator.index(dim)))
        return self

    def split(self, outs, x, dim=0):
        """outs = consecutive slices of x along dim, each as long as that output."""
        n, arr = self._tensor_array(outs, "outs")
        check(lib.okto_split(self._ptr, n, arr, self._t(x, "x"), operator.index(dim)))
        return self

    # ---- graph-owned tensors and gradients
    def tensor(self, shape, dtype="f32"):
        """A new contiguous tensor owned by the graph (okto_graph_tensor): it lives as long as
        the graph; close() on it does nothing."""
        shape = _shape_arg(shape)
        out = ffi.new("okto_tensor **")
        check(lib.okto_graph_tensor(self._ptr, as_dtype(dtype), len(shape),
                                    ffi.new("size_t[]", shape), out))
        return self._owned_tensor(out[0])

    def _owned_tensor(self, ptr):
        """A Python Tensor over a graph-owned handle: it holds the graph, never destroys."""
        t = Tensor._wrap(ptr, self._ctx, base=self)
        t._owned = False
        self.__dict__.setdefault("_owned_refs", []).append(weakref.ref(t))
        return t

    def backward(self, loss, params, grads=None, accumulate=False):
        """Records d sum(loss) / d params[i] into grads[i] (new tensors of each parameter's
        shape and dtype when grads is None) and returns the list of gradients. Every parameter
        must have requires_grad set before the forward ops were recorded."""
        params = list(params)
        if not params:
            raise InvalidArgument("backward: no parameters")
        if grads is None:
            grads = [Tensor._create(self._ctx, p.shape, p.dtype) for p in params]
        grads = list(grads)
        if len(grads) != len(params):
            raise InvalidArgument("backward: %d gradients for %d parameters"
                                  % (len(grads), len(params)))
        pa = ffi.new("okto_tensor *[]", [self._t(p, "params[%d]" % i)
                                          for i, p in enumerate(params)])
        ga = ffi.new("okto_tensor *[]", [self._t(d, "grads[%d]" % i)
                                          for i, d in enumerate(grads)])
        check(lib.okto_backward(self._ptr, self._t(loss, "loss"), len(params), pa, ga,
                                _flags(0, 0, accumulate)))
        return grads

    # ---- user kernels
    def launch_kernel(self, kernel, global_size, args, local_size=None):
        """Records one launch of an okto.Kernel over global_size (an int or up to 3 ints),
        with args: okto.R/W/RW(tensor), okto.Local(nbytes), NumPy scalars (np.int32(3),
        np.float32(0.5)) or bytes for by-value arguments (captured now)."""
        if not isinstance(kernel, Kernel):
            raise InvalidArgument("launch_kernel needs an okto.Kernel")
        kp = kernel._ptr
        gs = (global_size,) if isinstance(global_size, numbers.Integral) else tuple(global_size)
        if not 1 <= len(gs) <= 3:
            raise InvalidArgument("global_size has 1 to 3 dimensions")
        ls = None
        if local_size is not None:
            ls = (local_size,) if isinstance(local_size, numbers.Integral) else tuple(local_size)
            if len(ls) != len(gs):
                raise InvalidArgument("local_size must have as many dimensions as global_size")
        args = list(args)
        carg = ffi.new("okto_arg[]", max(1, len(args)))
        hold = []
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                raise InvalidArgument("argument %d: say how the kernel uses the tensor: "
                                      "okto.R(t), okto.W(t) or okto.RW(t)" % i)
            if isinstance(a, Arg):
                carg[i].kind = a.kind
                if a.tensor is not None:
                    carg[i].tensor = self._t(a.tensor, "argument %d" % i)
                else:
                    carg[i].size = a.value
                continue
            if isinstance(a, (np.generic, np.ndarray)):
                raw = np.ascontiguousarray(a).tobytes()
            elif isinstance(a, (bytes, bytearray)):
                raw = bytes(a)
            else:
                raise InvalidArgument(
                    "argument %d: %r; by-value arguments are NumPy scalars (np.int32(3), "
                    "np.float32(0.5), np.uint64(n)) or bytes, so their C type is explicit"
                    % (i, a))
            buf = ffi.new("char[]", raw)
            hold.append(buf)
            carg[i].kind = lib.OKTO_ARG_VALUE
            carg[i].value = buf
            carg[i].size = len(raw)
        self._keep[id(kernel)] = kernel
        check(lib.okto_launch(self._ptr, kp, len(gs), ffi.new("size_t[]", gs),
                              ffi.NULL if ls is None else ffi.new("size_t[]", ls), len(args),
                              carg))
        return self

    # ---- running
    def run(self):
        """Launches and waits (the GIL is released while it runs)."""
        check(lib.okto_graph_run(self._ptr))
        return self

    def _hold(self):
        with _INFLIGHT_LOCK:
            _INFLIGHT.add(self)
        self._launched = True

    def _release(self):
        self._launched = False
        with _INFLIGHT_LOCK:
            _INFLIGHT.discard(self)

    def launch(self):
        """Non-blocking: the lanes start the run; wait() ends it. The graph is kept alive
        until then even if nothing else refers to it."""
        check(lib.okto_graph_launch(self._ptr))
        self._hold()
        return self

    def launch_ex(self, wait_for=(), done_event=True):
        """launch() for callers that mix in their own OpenCL work: the run's first tasks wait
        for the events in wait_for (okto.Event, pyopencl.Event or raw cl_event addresses, of
        okto's OpenCL context); returns an okto.Event that completes when the whole run has
        (or None with done_event=False). wait() must still be called."""
        wait_for = list(wait_for)
        evs = ffi.new("cl_event[]", max(1, len(wait_for)))
        for i, e in enumerate(wait_for):
            evs[i] = ffi.cast("cl_event", _intptr(e))
        done = ffi.new("cl_event *") if done_event else ffi.NULL
        check(lib.okto_graph_launch_ex(self._ptr, len(wait_for),
                                       evs if wait_for else ffi.NULL, done))
        self._hold()
        self._keep_events = wait_for  # okto retains them; the Python objects too, until wait
        return Event(done[0]) if done_event else None

    def wait(self):
        """Waits for the launch (the GIL is released meanwhile) and raises its first error."""
        h = self._ptr
        try:
            check(lib.okto_graph_wait(h))
        finally:
            self._keep_events = None
            self._release()
        return self

    # ---- after a run
    def report(self):
        """What the last run did, as a dict; 'lane_reports' holds one dict per lane."""
        h = self._ptr
        r = ffi.new("okto_report *")
        check(lib.okto_graph_report(h, r))
        lanes = []
        for i in range(r.lanes):
            lr = ffi.new("okto_lane_report *")
            check(lib.okto_graph_report_lane(h, i, lr))
            lanes.append({"lane": i, "busy_ms": lr.busy_ms, "tasks": lr.tasks,
                          "is_copy": bool(lr.is_copy), "in_order": bool(lr.in_order)})
        return {"sched": SCHED.of(r.sched).label, "policy": SCHED.of(r.policy).label,
                "tasks": r.tasks, "lanes": r.lanes, "span_ms": r.span_ms,
                "busy_ms": r.busy_ms, "utilization": r.utilization, "host_ms": r.host_ms,
                "lane_reports": lanes}

    def trace(self, path):
        """Writes the last run as Chrome trace-event JSON (Perfetto, chrome://tracing)."""
        check(lib.okto_graph_trace(self._ptr, os.fsencode(path)))
        return self


def wait_all():
    """Waits for every launched graph (what exit does too); raises the first error."""
    with _INFLIGHT_LOCK:
        graphs = list(_INFLIGHT)
    first = None
    for g in graphs:
        try:
            g.wait()
        except Exception as e:  # keep waiting the others
            first = first or e
    if first is not None:
        raise first


# ---- bfloat16 on the host, as okto converts (okto_f32_to_bf16, okto_bf16_to_f32) -------------


def bf16_from_f32(a):
    """float data -> bfloat16 bits (uint16), rounded to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
               >> np.uint32(16)).astype(np.uint16)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    quiet = ((u >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16)
    return np.where(nan, quiet, rounded)


def bf16_to_f32(bits):
    """bfloat16 bits (uint16, or ml_dtypes.bfloat16) -> float32, exactly."""
    b = np.asarray(bits)
    if bfloat16 is not None and b.dtype == bfloat16:
        b = b.view(np.uint16)
    return (np.ascontiguousarray(b, dtype=np.uint16).astype(np.uint32)
            << np.uint32(16)).view(np.float32)
