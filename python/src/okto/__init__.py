"""okto: multi-lane ML compute on OpenCL devices, from Python.

    import numpy as np, okto
    ctx = okto.Context()                       # the best device, lanes chosen for it
    a = ctx.tensor(np.ones((4, 3), np.float32))
    b = ctx.empty((4, 3))
    g = okto.Graph(ctx).map(b, a, "exp")       # record once ...
    g.run()                                    # ... replay many times
    print(b.numpy())

The package is a cffi (API mode) extension over okto's public C API, with the library of the
same checkout compiled in; see the README's "Python" section.
"""

from ._version import __version__
from ._okto_ffi import ffi as _ffi, lib as _lib

# The library compiled into the extension must be the one this package was built for: the
# package's version comes from the top-level meson.build, as does the library's.
_lib_version = _ffi.string(_lib.okto_version()).decode()
_header_version = _ffi.string(_lib.okto_py_header_version).decode()
if _lib_version != __version__ or _header_version != __version__:
    raise ImportError("okto %s: the extension runs library %s built with headers %s; rebuild "
                      "the package (pip install ./python)"
                      % (__version__, _lib_version, _header_version))

from ._enums import DTYPE, INIT, MAP, MODEL, OPTIM, REDUCE, SCHED, STATUS, ZIP  # noqa: E402
from ._errors import *  # noqa: E402,F401,F403  Error and one subclass per status
from ._errors import Error, error_class  # noqa: E402
from ._core import (  # noqa: E402
    RW, Arg, Context, Device, Event, Graph, Kernel, Local, R, Tensor, W, as_dtype, backward,
    bf16_from_f32, bf16_to_f32, bfloat16, devices, np_dtype, tensor, wait_all)


def library_version():
    """okto_version(): the version of the C library in use."""
    return _lib_version


from . import _errors as _e  # noqa: E402
from . import nn  # noqa: E402,F401  okto.nn: layers, models, optimizers

__all__ = ["__version__", "library_version", "Context", "Tensor", "Graph", "Kernel", "Event",
           "Device", "Arg", "R", "W", "RW", "Local", "devices", "tensor", "as_dtype",
           "np_dtype", "bfloat16", "bf16_from_f32", "bf16_to_f32", "wait_all", "backward", "nn",
           "MAP", "ZIP", "REDUCE", "SCHED", "DTYPE", "STATUS", "INIT", "OPTIM", "MODEL",
           "error_class"] + [n for n in _e.__all__ if n not in ("check",)]
