"""okto/_errors.py: okto.Error and one subclass per okto_status, generated from OKTO_STATUS_MAP.

Every failing okto call raises the subclass of its status, carrying okto_last_error's message
(the OpenCL call and its CL_* name, the argument, the shapes). Checks that the Python layer
makes itself (a closed object, a NumPy dtype okto has no equivalent for) raise the same
classes with a message of their own.
"""

import re

from ._enums import STATUS
from ._okto_ffi import ffi, lib


class Error(RuntimeError):
    """Base of every okto error. `status` is the STATUS member, `message` the detail."""

    status = None

    def __init__(self, message="", status=None):
        if status is not None:
            self.status = STATUS.of(status)
        self.message = message
        name = ("OKTO_" + self.status.name) if self.status is not None else "okto"
        head = "%s: %s" % (name, self.status.label) if self.status is not None else name
        super().__init__("%s: %s" % (head, message) if message else head)


# Python names for the statuses that exist now; a status added to the C table later gets a
# name made from its message ("resource busy" -> ResourceBusy) until one is chosen here.
_NAMES = {
    "EINVAL": "InvalidArgument",
    "ENOMEM": "OutOfMemory",
    "ENODEV": "NoDevice",
    "ECL": "OpenCLError",
    "EBUILD": "BuildError",
    "EBUSY": "Busy",
    "ESTATE": "InvalidState",
    "EIO": "InputOutputError",
    "ENOTSUP": "NotSupported",
}
# Builtin exceptions they also are, so `except ValueError` catches a bad argument.
_MIXINS = {
    "EINVAL": (ValueError,),
    "ENOMEM": (MemoryError,),
    "ENOTSUP": (NotImplementedError,),
}

Error.__module__ = "okto"
_BY_STATUS = {}
__all__ = ["Error", "error_class", "check"]


def _class_name(member):
    name = _NAMES.get(member.name)
    if name is None:
        words = re.findall(r"[A-Za-z0-9]+", member.label)
        name = "".join(w[:1].upper() + w[1:] for w in words) or member.name.title()
    return name


for _m in STATUS:
    if _m.value == 0:
        continue
    _cls = type(_class_name(_m), (Error,) + _MIXINS.get(_m.name, ()),
                {"status": _m, "__module__": "okto",
                 "__doc__": "OKTO_%s: %s" % (_m.name, _m.label)})
    _BY_STATUS[_m.value] = _cls
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)


def error_class(status):
    """The Error subclass of a status code (Error itself for a code not in the table)."""
    return _BY_STATUS.get(int(status), Error)


def last_error():
    """okto_last_error(NULL): the calling thread's last failure."""
    return ffi.string(lib.okto_last_error(ffi.NULL)).decode("utf-8", "replace")


def check(status):
    """Raises the status's Error subclass, with this thread's okto_last_error, unless OK."""
    status = int(status)
    if status == 0:
        return
    cls = _BY_STATUS.get(status)
    if cls is None:
        raise Error("unknown okto status %d: %s" % (status, last_error()))
    raise cls(last_error())
