#!/usr/bin/env python3
"""tools/torch-conformance.py: okto's ops against PyTorch's on the CPU, same inputs.

    tools/torch-conformance.py [--build build] [--tolerance 1e-4] [--keep FILE]

Runs build/tools/okto-conform (every op of its table on seeded inputs, odd shapes, some inputs
strided, with okto_backward's gradients of sum(out * r) for a random r), then evaluates the same
ops with torch in float64 on the same inputs and prints, per op, the largest difference of the
output and of each gradient relative to the largest magnitude of torch's value
(max|okto - torch| / max|torch|). Exit status 1 when any exceeds the tolerance. Needs torch
(pip install torch) and numpy; okto never depends on either. Not run by CI: torch is a large
optional download. argmax is compared exactly; dropout is left out (its counter-based generator
is not PyTorch's, so the masks differ by design).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("torch-conformance: torch is not installed (pip install torch)")

DTYPES = {"F32": np.float32, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        tensors[name] = arr
    return tensors, meta


MAPS = {
    "RELU": F.relu, "GELU_TANH": lambda x: F.gelu(x, approximate="tanh"), "GELU_ERF": F.gelu,
    "SILU": F.silu, "SIGMOID": torch.sigmoid, "TANH": torch.tanh, "EXP": torch.exp,
    "LOG": torch.log, "NEG": torch.neg, "SQRT": torch.sqrt, "ABS": torch.abs,
    "SQUARE": lambda x: x * x, "RSQRT": torch.rsqrt,
}
ZIPS = {"ADD": torch.add, "SUB": torch.sub, "MUL": torch.mul, "DIV": torch.div,
        "MAX": torch.maximum, "MIN": torch.minimum}
REDUCE = {"sum": lambda x, d: x.sum(d, keepdim=True), "mean": lambda x, d: x.mean(d, keepdim=True),
          "max": lambda x, d: x.amax(d, keepdim=True)}


def torch_op(attrs, ins):
    """The torch expression for one case: attrs is okto-conform's attribute string."""
    op, *a = attrs.split()
    if op == "matmul":
        x, y = ins
        flags = int(a[0])
        if flags & 1:
            x = x.transpose(-2, -1)
        if flags & 2:
            y = y.transpose(-2, -1)
        return x @ y
    if op == "map":
        return MAPS[a[0]](ins[0])
    if op == "zip":
        return ZIPS[a[0]](ins[0], ins[1])
    if op == "reduce":
        return REDUCE[a[0]](ins[0], int(a[1]))
    if op == "softmax":
        return F.softmax(ins[0], -1)
    if op == "log_softmax":
        return F.log_softmax(ins[0], -1)
    if op == "layernorm":
        x, w, b = ins
        return F.layer_norm(x, (x.shape[-1],), w, b, float(a[0]))
    if op == "rmsnorm":
        x, w = ins
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + float(a[0])) * w
    if op == "cross_entropy":
        return F.cross_entropy(ins[0], ins[1].long(), ignore_index=int(a[0])).reshape(1)
    if op == "embedding":
        return F.embedding(ins[1].long(), ins[0])
    if op == "attention":
        return F.scaled_dot_product_attention(ins[0], ins[1], ins[2], is_causal=a[0] == "1")
    if op == "conv2d":
        s = [int(v) for v in a]
        return F.conv2d(ins[0], ins[1], ins[2], stride=s[0:2], padding=s[2:4], dilation=s[4:6])
    if op == "max_pool2d":
        s = [int(v) for v in a]
        return F.max_pool2d(ins[0], s[0:2], s[2:4], s[4:6])
    if op == "avg_pool2d":
        s = [int(v) for v in a]
        return F.avg_pool2d(ins[0], s[0:2], s[2:4], s[4:6])
    if op == "global_avg_pool2d":
        return F.adaptive_avg_pool2d(ins[0], 1)
    if op == "argmax":
        return torch.argmax(ins[0], -1).int()
    raise ValueError(f"no torch expression for {attrs!r}")


def rel(okto_value, ref):
    ref = ref.detach().double().numpy()
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(okto_value.astype(np.float64) - ref).max()) / scale


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--keep", help="write okto-conform's file here (default: a temporary file)")
    args = ap.parse_args()

    path = args.keep or os.path.join(tempfile.mkdtemp(), "conform.safetensors")
    tool = os.path.join(args.build, "tools", "okto-conform")
    p = subprocess.run([tool, path], capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    if not os.path.exists(path):
        sys.exit(f"torch-conformance: {tool} wrote nothing (exit {p.returncode})")
    tensors, meta = read_safetensors(path)

    print(f"torch {torch.__version__}; okto vs torch (float64), max|okto - torch| / max|torch|")
    print(f"{'op':20} {'output':>10} {'gradients (per float input)':>40}")
    worst, bad = 0.0, []
    for name in [c for c in meta["cases"].split(",") if c]:
        ins_np = []
        while f"{name}.in{len(ins_np)}" in tensors:
            ins_np.append(tensors[f"{name}.in{len(ins_np)}"])
        ins = []
        for x in ins_np:
            t = torch.from_numpy(x.astype(np.float64) if x.dtype == np.float32 else x.copy())
            if t.is_floating_point():
                t.requires_grad_(True)
            ins.append(t)
        out = torch_op(meta[name], ins)
        okto_out = tensors[f"{name}.out"]
        if not out.is_floating_point():
            ok = np.array_equal(okto_out, out.numpy())
            print(f"{name:20} {'exact' if ok else 'DIFFERS':>10}")
            if not ok:
                bad.append(name)
            continue
        diffs = [rel(okto_out, out)]
        grads = []
        if f"{name}.r" in tensors:
            r = torch.from_numpy(tensors[f"{name}.r"].astype(np.float64))
            (out * r).sum().backward()
            for i, t in enumerate(ins):
                if t.is_floating_point():
                    grads.append(rel(tensors[f"{name}.grad{i}"], t.grad))
        diffs += grads
        worst = max(worst, max(diffs))
        flag = "" if max(diffs) <= args.tolerance else "  beyond tolerance"
        if flag:
            bad.append(name)
        print(f"{name:20} {diffs[0]:10.2e} {' '.join(f'{g:9.2e}' for g in grads):>40}{flag}")
    print(f"largest: {worst:.2e} (tolerance {args.tolerance:g}); "
          f"{'all within' if not bad else 'beyond: ' + ', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
