"""okto/_enums.py: Python enums generated from okto's public X-macro tables.

The C part of the extension expands OKTO_MAP_MAP, OKTO_ZIP_MAP, OKTO_REDUCE_MAP,
OKTO_SCHED_MAP, OKTO_DTYPE_MAP, OKTO_STATUS_MAP, OKTO_INIT_MAP, OKTO_OPTIM_MAP and
OKTO_MODEL_MAP into arrays of rows (the member's name, the
table's string, the enum value); this module turns each into an IntEnum. A row added to a table
in C is a member here after a rebuild, with no Python to edit.

Every enum accepts its members, their names ("RELU", "relu") and the table's strings
("round-robin", "gelu_tanh") through `of()`, which is what every okto function calls on its
enum arguments, so `g.map(y, x, "relu")` and `g.map(y, x, okto.MAP.RELU)` are the same.
"""

import enum

from ._okto_ffi import ffi, lib


def _rows(table):
    i = 0
    while table[i].ident != ffi.NULL:
        r = table[i]
        yield (ffi.string(r.ident).decode(), ffi.string(r.name).decode(), int(r.value),
               int(r.extra))
        i += 1


class OktoEnum(enum.IntEnum):
    """Base of the generated enums: `label` is the C table's string, `of()` parses."""

    @property
    def label(self):
        return type(self)._labels[self.value]

    def __str__(self):
        return self.label

    @classmethod
    def of(cls, value):
        """A member from a member, an int value, a member name or the C table's string
        (case-insensitive; '-' and '_' are the same)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            member = cls._lookup.get(key)
            if member is not None:
                return member
            from ._errors import InvalidArgument

            raise InvalidArgument(
                "unknown %s %r: expected one of %s"
                % (cls.__name__, value, ", ".join(cls._labels[m.value] for m in cls)))
        if isinstance(value, enum.Enum):  # another enum's member: refuse, not reinterpret
            from ._errors import InvalidArgument

            raise InvalidArgument("%s is not a %s" % (value, cls.__name__))
        try:
            return cls(int(value))
        except (TypeError, ValueError):
            from ._errors import InvalidArgument

            raise InvalidArgument(
                "%r is not a %s: expected one of %s"
                % (value, cls.__name__, ", ".join(cls._labels[m.value] for m in cls))) from None


def _make(name, table, doc):
    rows = list(_rows(table))
    cls = OktoEnum(name, [(ident, value) for ident, _, value, _ in rows], module=__name__)
    cls.__doc__ = doc
    cls._labels = {value: label for _, label, value, _ in rows}
    cls._extra = {value: extra for _, _, value, extra in rows}
    lookup = {}
    for ident, label, value, _ in rows:
        lookup[ident.lower()] = cls(value)
        lookup.setdefault(label.lower().replace("-", "_"), cls(value))
    cls._lookup = lookup
    return cls


MAP = _make("MAP", lib.okto_py_map_ops, "Unary maps (OKTO_MAP_MAP): Graph.map's op.")
ZIP = _make("ZIP", lib.okto_py_zip_ops, "Binary ops (OKTO_ZIP_MAP): Graph.zip's op.")
REDUCE = _make("REDUCE", lib.okto_py_reduce_ops,
               "Reductions (OKTO_REDUCE_MAP): Graph.reduce's op.")
SCHED = _make("SCHED", lib.okto_py_scheds,
              "Scheduling policies (OKTO_SCHED_MAP), and AUTO (the context's policy).")
DTYPE = _make("DTYPE", lib.okto_py_dtypes, "Element types (OKTO_DTYPE_MAP).")
STATUS = _make("STATUS", lib.okto_py_statuses,
               "Status codes (OKTO_STATUS_MAP); label is the table's message.")
INIT = _make("INIT", lib.okto_py_inits, "Parameter initialisations (OKTO_INIT_MAP): okto.nn.")
OPTIM = _make("OPTIM", lib.okto_py_optims, "Optimizers (OKTO_OPTIM_MAP): okto.nn.Optim's kind.")
MODEL = _make("MODEL", lib.okto_py_models, "okto.nn's models (OKTO_MODEL_MAP).")


def dtype_size(dt):
    """Bytes per element of a DTYPE."""
    return DTYPE._extra[DTYPE.of(dt).value]
