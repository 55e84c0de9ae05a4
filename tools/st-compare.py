#!/usr/bin/env python3
"""tools/st-compare.py A.st B.st TOL: compares two okto-train checkpoints (safetensors) tensor by
tensor. For each float32 tensor: max |a - b| / max(1, max |a|). Prints the worst and exits 1 if
it exceeds TOL, if a tensor is missing on one side or if shapes differ. Standard library only."""
import json
import struct
import sys
from array import array


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        v = array("f")
        v.frombytes(data[a:b])
        if sys.byteorder != "little":
            v.byteswap()
        out[name] = (t["shape"], v)
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: st-compare.py A.st B.st TOL")
    a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    if set(a) != set(b):
        print("tensors differ:", sorted(set(a) ^ set(b)))
        sys.exit(1)
    worst, where = 0.0, ""
    for name in sorted(a):
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            print(f"{name}: shape {sa} against {sb}")
            sys.exit(1)
        scale = max(1.0, max((abs(x) for x in va), default=0.0))
        d = max((abs(x - y) for x, y in zip(va, vb)), default=0.0) / scale
        if d > worst or d != d:
            worst, where = d, name
    print(f"{len(a)} tensors; worst relative difference {worst:.3g} ({where}); tolerance {tol:g}")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
