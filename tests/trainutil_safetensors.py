#!/usr/bin/env python3
"""Python side of the safetensors interop test (test_trainutil_safetensors.sh).

numpy PATH        read the C-written file with numpy alone and check every value
lib PATH OUT      check it with the `safetensors` package too, then write OUT with it
Exit 0 on success, 1 on a mismatch, 77 (skipped) when numpy or safetensors is missing.
"""
import json
import struct
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipped")
    sys.exit(77)


def read_with_numpy(path):
    """The whole format in a few lines: length, JSON header, then raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    meta = header.pop("__metadata__", {})
    kinds = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "BF16": "<u2"}
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=kinds[t["dtype"]])
        if t["dtype"] == "BF16":  # numpy has no bfloat16: widen the bits to float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = (t["dtype"], a.reshape(t["shape"]))
    return out, meta, len(data)


def expected():
    return {
        "w": ("F32", (np.arange(12, dtype=np.float32) * 0.25 - 1).reshape(3, 4)),
        "b": ("F32", 100 + np.arange(4, dtype=np.float32)),
        "h": ("F16", ((np.arange(6) - 2) * 0.5).astype(np.float16).reshape(2, 3)),
        "bf": ("BF16", np.arange(5, dtype=np.float32) * 1.5),
        "ids": ("I32", (np.arange(8, dtype=np.int32) * 7 - 20).reshape(2, 2, 2)),
    }


META = {"model": "mlp", "note": 'quote " back\\ \u00e9\n'}


def check(got, meta, what):
    want = expected()
    if set(got) != set(want):
        sys.exit(f"{what}: tensors {sorted(got)}, want {sorted(want)}")
    for name, (dt, arr) in want.items():
        gdt, garr = got[name]
        if gdt != dt or garr.shape != arr.shape or not np.array_equal(garr, arr):
            sys.exit(f"{what}: tensor {name}: got {gdt} {garr.shape} {garr.ravel()[:6]}, "
                     f"want {dt} {arr.shape} {arr.ravel()[:6]}")
    if meta != META:
        sys.exit(f"{what}: metadata {meta!r}, want {META!r}")
    print(f"{what}: {len(want)} tensors and the metadata match")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "numpy":
        got, meta, _ = read_with_numpy(sys.argv[2])
        check(got, meta, "numpy reader")
        return
    if len(sys.argv) == 4 and sys.argv[1] == "lib":
        try:
            import safetensors
            import safetensors.numpy
        except ImportError:
            print("the safetensors package is not installed: skipped")
            sys.exit(77)
        with open(sys.argv[2], "rb") as f:
            blob = f.read()
        # deserialize gives raw bytes per tensor, so BF16 (which numpy lacks) can be checked
        kinds = {"float32": "<f4", "float16": "<f2", "int32": "<i4", "bfloat16": "<u2",
                 "F32": "<f4", "F16": "<f2", "I32": "<i4", "BF16": "<u2"}
        got = {}
        for name, t in safetensors.deserialize(blob):
            dt = str(t["dtype"])
            a = np.frombuffer(bytes(t["data"]), dtype=kinds[dt]).reshape(t["shape"])
            if kinds[dt] == "<u2" and dt.lower().startswith("b"):
                a = (a.astype(np.uint32) << 16).view(np.float32)
            short = {"float32": "F32", "float16": "F16", "int32": "I32", "bfloat16": "BF16"}
            got[name] = (short.get(dt, dt), a)
        with safetensors.safe_open(sys.argv[2], framework="numpy") as f:
            meta = f.metadata()
            # the numpy loader also reads the dtypes numpy has
            w = f.get_tensor("w")
            assert w.dtype == np.float32 and w.shape == (3, 4)
        check(got, meta, f"safetensors {safetensors.__version__}")
        safetensors.numpy.save_file(
            {
                "a": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5,
                "c": np.array([-1, 0, 1, 2**31 - 1], dtype=np.int32),
                "h": np.array([0.5, -1, 2], dtype=np.float16),
                "big": np.arange(50, dtype=np.float32),
            },
            sys.argv[3],
            metadata={"source": "python"},
        )
        print(f"safetensors {safetensors.__version__} wrote {sys.argv[3]}")
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
