#!/bin/sh
# tests/test_train.sh OKTO_TRAIN: okto-train end to end. Each check says what it checks; the
# script exits 1 if any failed, 77 if there is no OpenCL device (a bug on CI, where PoCL is).
#   - the gradient check of small networks (--check: device vs host double precision, 1e-3)
#   - a seeded 2-class spiral reaches >= 95% training accuracy within 12 epochs
#   - sequential, round-robin and heft give the same loss curve (relative 1e-4), --compare agrees
#   - one batch as 1, 3 and 4 micro-batches gives the same loss and weights (1e-5 of the
#     largest weight)
#   - bad arguments and malformed CSV files give a clear message and exit status 2
set -u
TRAIN=${1:?usage: test_train.sh path/to/okto-train}
command -v python3 >/dev/null 2>&1 || { echo "test_train: python3 is needed"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/okto-train-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
pass() { echo "  ok    $*"; }
fail() { echo "  FAIL  $*"; fails=$((fails + 1)); }

# ---- gradient check (also: is there a device at all?) -------------------------------------
echo "gradient check: device gradients of the first step vs a host double-precision reference"
"$TRAIN" --check --layers 2,16,8,3 --batch 37 --micro 3 --seed 5 >"$TMP/out" 2>"$TMP/err"
rc=$?
if grep -q OKTO_ENODEV "$TMP/err"; then
    echo "test_train: no OpenCL device"; cat "$TMP/err"; exit 77
fi
if [ $rc -eq 0 ]; then pass "2,16,8,3, batch 37 in 3 uneven micro-batches: $(grep '^check' "$TMP/out")"
else fail "2,16,8,3 --check exited $rc"; cat "$TMP/out" "$TMP/err"; fi
"$TRAIN" --check --layers 5,32,4 --data blobs --batch 64 --micro 1 --seed 2 >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 0 ]; then pass "5,32,4 blobs, batch 64 unsplit: $(grep '^check' "$TMP/out")"
else fail "5,32,4 --check exited $rc"; cat "$TMP/out" "$TMP/err"; fi

# ---- learning -----------------------------------------------------------------------------
echo "learning: seeded 2-class spiral, layers 2,64,64,2, batch 256 in 4 micro-batches"
"$TRAIN" --seed 1 --epochs 12 --json >"$TMP/learn.json" 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then fail "training exited $rc"; cat "$TMP/err"
else
    python3 - "$TMP/learn.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
acc = [e["accuracy"] for e in doc["run"]["epochs"]]
final = doc["final"]["accuracy"]
print("        epoch accuracies: " + " ".join("%.3f" % a for a in acc) + "; final %.3f" % final)
sys.exit(0 if max(acc + [final]) >= 0.95 and acc[-1] > acc[0] else 1)
EOF
    if [ $? -eq 0 ]; then pass "reaches >= 95% training accuracy within 12 epochs"
    else fail "does not reach 95% training accuracy within 12 epochs"; fi
fi

# ---- policies agree -----------------------------------------------------------------------
echo "policies: the same 24 steps under heft (with --compare: sequential), round-robin"
"$TRAIN" --seed 3 --epochs 3 --sched heft --compare --json >"$TMP/heft.json" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || { fail "--compare exited $rc"; cat "$TMP/err"; }
"$TRAIN" --seed 3 --epochs 3 --sched round-robin --json >"$TMP/rr.json" 2>"$TMP/err" ||
    { fail "--sched round-robin exited $?"; cat "$TMP/err"; }
python3 - "$TMP/heft.json" "$TMP/rr.json" <<'EOF'
import json, sys
def load(p):
    try:
        return json.load(open(p))
    except Exception as e:
        print("  FAIL  cannot read %s: %s" % (p, e)); sys.exit(1)
h, r = load(sys.argv[1]), load(sys.argv[2])
ref = h["compare"]["sequential"]["step_losses"]
curves = {"heft": h["run"]["step_losses"], "round-robin": r["run"]["step_losses"]}
bad = 0
for name, c in curves.items():
    d = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(c, ref)) if len(c) == len(ref) else 1e9
    ok = d <= 1e-4
    bad += not ok
    print("  %s  %-11s vs sequential: %d steps, largest relative loss difference %.2g"
          % ("ok  " if ok else "FAIL", name, len(c), d))
c = h["compare"]
print("        --compare: agree=%s, speedup %.2fx (sequential %.2f ms, heft %.2f ms per step)"
      % (c["agree"], c["speedup"], c["sequential"]["median_step_ms"], h["run"]["median_step_ms"]))
bad += not c["agree"]
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] || fails=$((fails + 1))

# ---- micro-batches give the unsplit batch's step ---------------------------------------------
echo "micro-batches: one step of batch 256 as 1, 3 and 4 micro-batches"
for m in 1 3 4; do
    "$TRAIN" --seed 4 --steps 1 --micro $m --json --dump-weights "$TMP/w$m.txt" \
        >"$TMP/m$m.json" 2>"$TMP/err" || { fail "--micro $m exited $?"; cat "$TMP/err"; }
done
python3 - "$TMP" <<'EOF'
import json, sys
d = sys.argv[1]
def weights(m):
    out = []
    for line in open("%s/w%d.txt" % (d, m)):
        if line[0] not in "Wb":
            out += [float(x) for x in line.split()]
    return out
bad = 0
w1, l1 = weights(1), json.load(open(d + "/m1.json"))["run"]["step_losses"][0]
scale = max(abs(x) for x in w1)
for m in (3, 4):
    wm, lm = weights(m), json.load(open("%s/m%d.json" % (d, m)))["run"]["step_losses"][0]
    dw = max(abs(a - b) for a, b in zip(w1, wm)) / scale if len(wm) == len(w1) else 1e9
    dl = abs(lm - l1) / abs(l1)
    ok = dw <= 1e-5 and dl <= 1e-5
    bad += not ok
    print("  %s  %d micro-batches vs 1: weights differ by %.2g of the largest, loss by %.2g"
          % ("ok  " if ok else "FAIL", m, dw, dl))
sys.exit(1 if bad else 0)
EOF
[ $? -eq 0 ] || fails=$((fails + 1))

# ---- errors -------------------------------------------------------------------------------
echo "errors: bad arguments and malformed CSV files exit 2 with a message"
expect2() { # expect2 PATTERN ARGS...: exit status 2 and PATTERN in stderr
    pat=$1; shift
    "$TRAIN" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$pat" "$TMP/err"; then pass "$* -> $(head -n 1 "$TMP/err")"
    else fail "$* -> exit $rc, wanted 2 and \"$pat\": $(cat "$TMP/err")"; fi
}
expect2 'unknown option "--bogus"' --bogus
expect2 '--layers expects' --layers 2,,4
expect2 '--batch expects' --batch 0
expect2 '--lr expects' --lr -1
expect2 '--sched expects' --sched fastest
expect2 'needs a value' --epochs
expect2 'more than --batch' --batch 8 --micro 9
expect2 'spiral has 2 features' --layers 3,8,2
expect2 'ends with 4 but there are 2 classes' --layers 2,8,4 --classes 2
printf '# x0,x1,label\n0.5,1.0,0\n0.25,-1,1\n0.1,oops,1\n' >"$TMP/bad1.csv"
expect2 "bad1.csv:4: field 2" --data "$TMP/bad1.csv"
printf 'a,b,c\n0.5,1.0,0\n0.25,-1\n' >"$TMP/bad2.csv"
expect2 "bad2.csv:3: 2 fields, but line 2 has 3" --data "$TMP/bad2.csv"
printf '0.5,1.0,0\n0.25,-1,2.5\n' >"$TMP/bad3.csv"
expect2 "bad3.csv:2: class label" --data "$TMP/bad3.csv"
printf '0.5,1.0,0\n0.25,-1,3\n' >"$TMP/bad4.csv"
expect2 "bad4.csv:2: class label 3 is out of range" --data "$TMP/bad4.csv" --classes 2
expect2 "cannot open" --data "$TMP/missing.csv"
# a value beyond what a float holds would train to inf and NaN: refused with its line
printf '0.5,1.0,0\n1e39,-1,1\n' >"$TMP/bad5.csv"
expect2 "bad5.csv:2: field 1" --data "$TMP/bad5.csv"
printf '0.5,1.0,0\n0.25,-1,1\n-0.5,0.5,1\n' >"$TMP/good.csv"
"$TRAIN" --data "$TMP/good.csv" --batch 3 --micro 2 --steps 2 >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 0 ]; then pass "a well-formed CSV (3 rows, 2 features, 2 classes) trains"
else fail "a well-formed CSV: exit $rc: $(cat "$TMP/err")"; fi

if [ $fails -ne 0 ]; then echo "test_train: $fails check(s) failed"; exit 1; fi
echo "test_train: all checks passed"
