#!/usr/bin/env python3
"""tools/bench-compare.py: two builds of okto-bench side by side, interleaved, as ratios.

    tools/bench-compare.py OLD/build/tools/okto-bench NEW/build/tools/okto-bench \
        [--rounds 3] [--quick] [--only tiny-ops,small-gemm,...]

Each round runs every workload once with each binary, alternating which goes first, so drift
on a shared machine lands on both sides alike. Prints, per workload and field (sequential_ms,
default_ms), the median over the rounds of each build and the median of the per-round ratios
new / old (below 1: the new build is faster). The ratio of adjacent runs is the figure to
read; the absolute times drift with the machine's load. Workloads one build lacks are skipped.
"""
import argparse
import json
import statistics
import subprocess
import sys

WORKLOADS = "tiny-ops,small-gemm,dag-chains,copy-overlap,big-gemm,reduce,mlp-step,overhead"
FIELDS = ("sequential_ms", "default_ms", "optimized_ms")


def run(binary, name, quick):
    cmd = [binary, "--json", "--only", name] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None
    doc = json.loads(p.stdout)
    for w in doc.get("workloads", []):
        if w.get("name") == name:
            return w
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=WORKLOADS)
    args = ap.parse_args()

    names = args.only.split(",")
    results = {n: {"old": [], "new": []} for n in names}
    for r in range(args.rounds):
        for n in names:
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for side in order:
                w = run(getattr(args, side), n, args.quick)
                if w is not None:
                    results[n][side].append(w)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    print(f"{'workload':14} {'field':14} {'old ms':>9} {'new ms':>9} {'new/old':>8}  agree")
    for n in names:
        old, new = results[n]["old"], results[n]["new"]
        if not old or not new:
            print(f"{n:14} (missing in {'old' if not old else 'new'} build)")
            continue
        for f in FIELDS:
            # a field the old build lacks (the optimizer's column) is set against its default
            fo = f if f in old[0] else "default_ms"
            if fo not in old[0] or f not in new[0]:
                continue
            pairs = list(zip(old, new))
            ratio = statistics.median(b[f] / a[fo] for a, b in pairs if a[fo] > 0)
            agree = all(w.get("agree", True) for w in old + new)
            label = f if fo == f else f"{f} (old: {fo})"
            print(f"{n:14} {label:14} {statistics.median(w[fo] for w in old):9.3f} "
                  f"{statistics.median(w[f] for w in new):9.3f} {ratio:8.2f}  {agree}")


if __name__ == "__main__":
    main()
