#!/usr/bin/env python3
"""tools/trace-overlap.py TRACE.json "RANGES": does micro-batch i+1's forward run beside
micro-batch i's backward?

TRACE.json is a trace okto wrote (okto-train --trace, okto_graph_trace); RANGES the line
okto-train prints with it ("trace: ... micro-batch 0 forward 2-13 backward 14-47; ..."), which
says which task indices belong to which micro-batch. For each i it reports the time during which
a task of forward i+1 and a task of backward i ran at once on different lanes, against the step's
span, and the lanes each part ran on.
"""
import json
import re
import sys


def intervals(events, lo, hi):
    return [(e["ts"], e["ts"] + e["dur"], e["tid"]) for e in events if lo <= e["args"]["task"] <= hi]


def overlap(a, b):
    """Total time where some interval of a and some of b on another lane overlap."""
    pts = []
    for s, e, lane in a:
        for s2, e2, lane2 in b:
            if lane != lane2 and min(e, e2) > max(s, s2):
                pts.append((max(s, s2), min(e, e2)))
    pts.sort()
    total, cur = 0.0, None
    for s, e in pts:  # union of the overlapping pieces
        if cur is None or s > cur[1]:
            if cur:
                total += cur[1] - cur[0]
            cur = [s, e]
        else:
            cur[1] = max(cur[1], e)
    if cur:
        total += cur[1] - cur[0]
    return total


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    doc = json.load(open(sys.argv[1]))
    events = [e for e in (doc["traceEvents"] if isinstance(doc, dict) else doc) if e.get("ph") == "X"]
    mb = [tuple(map(int, m)) for m in re.findall(
        r"micro-batch \d+ forward (\d+)-(\d+) backward (\d+)-(\d+)", sys.argv[2])]
    if len(mb) < 2:
        sys.exit("trace-overlap: RANGES names fewer than two micro-batches")
    span = max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)
    lanes = sorted({e["tid"] for e in events})
    print("step span %.3f ms, %d tasks on lanes %s" % (span / 1e3, len(events), lanes))
    for i in range(len(mb) - 1):
        bwd = intervals(events, mb[i][2], mb[i][3])
        fwd = intervals(events, mb[i + 1][0], mb[i + 1][1])
        ov = overlap(fwd, bwd)
        print("forward of micro-batch %d beside backward of %d: %.3f ms (%.0f%% of the span); "
              "lanes: forward %s, backward %s" % (i + 1, i, ov / 1e3, 100 * ov / span,
                                                   sorted({l for _, _, l in fwd}),
                                                   sorted({l for _, _, l in bwd})))


if __name__ == "__main__":
    main()
