#!/bin/sh
# tests/test_train.sh OKTO_TRAIN: okto-train end to end, on small runs (speed is okto-bench's and
# the README's; here every check is about behaviour). Each check says what it checks; the script
# exits 1 if any failed, 77 if there is no OpenCL device (a bug on CI, where PoCL is).
#   - --check: one step's loss and every gradient of mlp, cnn and gpt against the double host
#     model (1e-3 of each gradient's largest value)
#   - the digits mlp learns (>= 93% held out after 8 epochs), and its JSON has the final fields
#   - --compare: the default policy and sequential give the same losses (1e-4)
#   - micro-batches train like the whole batch (final loss within 1e-3)
#   - checkpoints: --save, then --load --eval gives the accuracy the run ended with; a gpt
#     checkpoint generates text; --load of a gpt on another text is refused
#   - config files: keys, comments, flags overriding them, unknown keys and bad values refused
#   - the watchdog: a diverging run (NaN) and a stalled one (lr 0) exit 1 with the reason
#   - CSV data: any CSV trains; a malformed one is refused naming its line
set -u
TRAIN=${1:?usage: test_train.sh path/to/okto-train}
command -v python3 >/dev/null 2>&1 || { echo "test_train: python3 is needed"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/okto-train-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
pass() { echo "  ok    $*"; }
fail() { echo "  FAIL  $*"; fails=$((fails + 1)); }
run() { "$TRAIN" --progress off "$@" >"$TMP/out" 2>"$TMP/err"; }
field() { python3 -c "import json,sys; print(eval('json.load(open(sys.argv[1]))' + sys.argv[2]))" "$TMP/out" "$1"; }

# a small text for the gpt runs: quick, and the same on every machine
python3 - "$TMP/text.txt" <<'EOF'
import sys
words = "the quick brown fox jumps over the lazy dog while a cat sleeps in the warm sun".split()
out, x = [], 7
for i in range(4000):
    x = (x * 1103515245 + 12345) % 2**31
    out.append(words[x % len(words)])
open(sys.argv[1], "w").write(" ".join(out) + "\n")
EOF
GPT="--model gpt --data $TMP/text.txt --width 32 --layers 1 --heads 2 --context 16 --batch 8 --warmup 0 --lr 1e-2"

# ---- gradient checks (also: is there a device at all?) -------------------------------------
echo "--check: one step against the double-precision host model"
run --check --model mlp --width 24 --layers 2 --micro 3
rc=$?
if grep -q OKTO_ENODEV "$TMP/err"; then
    echo "test_train: no OpenCL device"; cat "$TMP/err"; exit 77
fi
if [ $rc -eq 0 ]; then pass "mlp in 3 micro-batches: $(cat "$TMP/out")"
else fail "mlp --check exited $rc"; cat "$TMP/out" "$TMP/err"; fi
run --check --model cnn --width 4
if [ $? -eq 0 ]; then pass "cnn: $(cat "$TMP/out")"
else fail "cnn --check"; cat "$TMP/out" "$TMP/err"; fi
run --check $GPT --micro 2
if [ $? -eq 0 ]; then pass "gpt in 2 micro-batches: $(cat "$TMP/out")"
else fail "gpt --check"; cat "$TMP/out" "$TMP/err"; fi

# ---- learning -------------------------------------------------------------------------------
echo "learning: the digits mlp, 8 epochs"
run --model mlp --epochs 8 --json
if [ $? -ne 0 ]; then fail "training exited non-zero"; cat "$TMP/err"
else
    acc=$(field '["final"]["holdout_accuracy"]')
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.93 else 1)" "$acc" &&
        pass "holdout accuracy $acc (>= 0.93); final has $(field '["final"].keys()' | tr -d "[]'")" ||
        fail "holdout accuracy $acc < 0.93"
fi

# ---- policies agree -------------------------------------------------------------------------
echo "--compare: the same steps under sequential"
run --model mlp --epochs 3 --compare
if [ $? -eq 0 ]; then pass "$(grep '^compare' "$TMP/out")"
else fail "--compare exited non-zero"; cat "$TMP/out" "$TMP/err"; fi

# ---- micro-batches --------------------------------------------------------------------------
echo "micro-batches: 1 and 4 per step"
run --model mlp --epochs 3 --json && l1=$(field '["final"]["train_loss"]')
run --model mlp --epochs 3 --micro 4 --json && l4=$(field '["final"]["train_loss"]')
python3 -c "import sys; a,b=map(float,sys.argv[1:]); sys.exit(0 if abs(a-b) <= 1e-3*abs(a) else 1)" \
    "${l1:-nan}" "${l4:-nan}" && pass "final train loss $l1 (1) and $l4 (4)" ||
    fail "final train loss ${l1:-?} (1) and ${l4:-?} (4) differ"

# ---- checkpoints ----------------------------------------------------------------------------
echo "checkpoints"
run --model mlp --epochs 4 --save "$TMP/m.st" --json && acc=$(field '["final"]["holdout_accuracy"]')
run --load "$TMP/m.st" --eval --json && acc2=$(field '["final"]["holdout_accuracy"]')
[ -n "${acc:-}" ] && [ "${acc:-}" = "${acc2:-}" ] &&
    pass "--load --eval gives the saved model's holdout accuracy ($acc)" ||
    fail "saved accuracy ${acc:-?}, loaded ${acc2:-?}"
generated() { sed -n '/^generated:/{n;p;}' "$TMP/out"; }
run $GPT --steps 60 --eval-every 30 --save "$TMP/g.st" --generate "the " --tokens 30
if [ $? -eq 0 ] && [ "$(generated | wc -c)" -ge 30 ]; then
    pass "a gpt trains and generates: $(generated)"
else fail "gpt training or generation"; cat "$TMP/out" "$TMP/err"; fi
run --load "$TMP/g.st" --data "$TMP/text.txt" --generate "the" --tokens 10 --temperature 0
[ $? -eq 0 ] && [ "$(generated | wc -c)" -ge 10 ] && pass "a gpt checkpoint generates: $(generated)" ||
    { fail "generation from a checkpoint"; cat "$TMP/out" "$TMP/err"; }
run --load "$TMP/g.st"
[ $? -eq 2 ] && grep -q "give --eval, --generate" "$TMP/err" && pass "--load alone: $(cat "$TMP/err")" ||
    fail "--load with nothing to do was accepted"
python3 -c "print('other words entirely ' * 50)" >"$TMP/other.txt"
run --load "$TMP/g.st" --data "$TMP/other.txt" --generate "o"
[ $? -eq 2 ] && grep -q "vocabulary differs" "$TMP/err" &&
    pass "another text's vocabulary is refused: $(cat "$TMP/err")" || fail "another vocabulary accepted"

# ---- config files ---------------------------------------------------------------------------
echo "config files"
cat >"$TMP/run.okt" <<'EOF'
# a small run
model  = mlp       # the classifier
epochs = 5
learning-rate-ignored-below = 1
EOF
run "$TMP/run.okt"
[ $? -eq 2 ] && grep -q 'unknown key "learning_rate_ignored_below"' "$TMP/err" &&
    pass "an unknown key is refused: $(head -n 1 "$TMP/err")" || { fail "unknown key"; cat "$TMP/err"; }
sed -i '/ignored/d' "$TMP/run.okt"
run "$TMP/run.okt" --epochs 2
[ $? -eq 0 ] && [ "$(grep -c '^epoch' "$TMP/out")" = 2 ] &&
    pass "the file's model, the flag's 2 epochs over the file's 5" || { fail "flags over a file"; cat "$TMP/out" "$TMP/err"; }
run --model mlp --epochs many
[ $? -eq 2 ] && grep -q 'epochs' "$TMP/err" && pass "a bad value: $(cat "$TMP/err")" || fail "bad value accepted"
run --model resnet
[ $? -eq 2 ] && pass "an unknown model: $(cat "$TMP/err")" || fail "unknown model accepted"

# ---- the watchdog ---------------------------------------------------------------------------
echo "watchdog"
run --model mlp --epochs 3 --lr 0
[ $? -eq 1 ] && grep -q "not learning" "$TMP/err" && pass "lr 0 stalls: $(cat "$TMP/err")" ||
    { fail "a stalled run did not stop"; cat "$TMP/out" "$TMP/err"; }
run --model mlp --epochs 3 --lr 1e4
[ $? -eq 1 ] && grep -q "diverged" "$TMP/err" && pass "lr 1e4 diverges: $(cat "$TMP/err")" ||
    { fail "a diverging run did not stop"; cat "$TMP/out" "$TMP/err"; }

# ---- CSV data -------------------------------------------------------------------------------
echo "CSV data"
python3 - "$TMP/blobs.csv" <<'EOF'
import sys, random
random.seed(3)
with open(sys.argv[1], "w") as f:
    f.write("a,b,c,label\n")
    for i in range(600):
        k = i % 3
        f.write("%.4f,%.4f,%.4f,%d\n" % (random.gauss(k * 2, 0.5), random.gauss(-k, 0.5),
                                          random.gauss(0, 1), k))
EOF
run --model mlp --data "$TMP/blobs.csv" --epochs 10 --json &&
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.9 else 1)" "$(field '["final"]["holdout_accuracy"]')" &&
    pass "a 3-class CSV: holdout accuracy $(field '["final"]["holdout_accuracy"]')" ||
    { fail "training on a CSV"; cat "$TMP/err"; }
printf 'a,b,label\n1,2,0\n3,x,1\n' >"$TMP/bad.csv"
run --model mlp --data "$TMP/bad.csv"
[ $? -eq 2 ] && grep -q "bad.csv:3" "$TMP/err" && pass "a malformed CSV: $(cat "$TMP/err")" ||
    { fail "a malformed CSV was accepted"; cat "$TMP/err"; }

echo "test_train: $fails failed"
[ $fails -eq 0 ]
