#!/bin/sh
# tests/test_train_mpi.sh OKTO_TRAIN ST_COMPARE: data-parallel okto-train over MPI on this machine
# (loopback: mpirun --oversubscribe). Each check trains once in one process on the whole batch
# and once under mpirun, every rank on its slice with the gradients all-reduced, and compares
# the two checkpoints (weights and optimizer state) with tools/st-compare.py:
#   - mlp on digits, AdamW, 2 ranks: within 1e-5 of the largest value of each tensor, with the
#     all-reduce inside the step graph (the default) and after it (--dp-overlap 0)
#   - mlp, SGD, 4 ranks of 8 rows each, and 2 ranks in 2 micro-batches each: within 1e-5
#   - gpt, AdamW, 2 ranks: within 1e-3 (an attention key bias gets a gradient that is zero in
#     exact arithmetic, so rounding noise, which AdamW scales up to steps of lr: measured 2.4e-4)
#   - a rank that stalls: the other exits within --mpi-timeout with a message naming the step
#   - a rank that dies (SIGKILL): the job ends (nonzero) instead of hanging
# Exits 77 when mpirun or an OpenCL device is missing.
set -u
TRAIN=${1:?usage: test_train_mpi.sh path/to/okto-train path/to/st-compare.py}
CMP=${2:?usage: test_train_mpi.sh path/to/okto-train path/to/st-compare.py}
command -v mpirun >/dev/null 2>&1 || { echo "skipped: no mpirun"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "skipped: python3 is needed"; exit 77; }
if [ "$(id -u)" = 0 ]; then # containers run as root; Open MPI refuses that unless told
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/okto-train-mpi.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
cd "$TMP" || exit 1
fails=0
pass() { echo "  ok    $*"; }
fail() { echo "  FAIL  $*"; fails=$((fails + 1)); }
MPI="mpirun --oversubscribe"

"$TRAIN" --model mlp --data digits --epochs 1 --steps 1 --progress off >out 2>err
rc=$?
if [ $rc = 77 ] || grep -q "no OpenCL\|ENODEV" err; then echo "skipped: $(cat err)"; exit 77; fi

# same NAME NP TOL ARGS...: one process against NP ranks
same() {
    name=$1 np=$2 tol=$3
    shift 3
    if ! "$TRAIN" --progress off "$@" --save "$name-1.st" >"$name-1.out" 2>"$name-1.err"; then
        fail "$name: one process failed: $(tail -3 "$name-1.err")"
        return
    fi
    if ! timeout 300 $MPI -np "$np" "$TRAIN" --progress off "$@" --save "$name-n.st" \
        >"$name-n.out" 2>"$name-n.err"; then
        fail "$name: $np ranks failed: $(tail -5 "$name-n.err")"
        return
    fi
    if line=$(python3 "$CMP" "$name-1.st" "$name-n.st" "$tol"); then
        pass "$name: $np ranks end with the weights of one process: $line"
    else
        fail "$name: $np ranks against one process: $line"
    fi
    # rank 0 alone printed the progress
    if [ "$(grep -c '^done:' "$name-n.out")" = 1 ]; then pass "$name: one rank printed"; else
        fail "$name: $(grep -c '^done:' "$name-n.out") 'done:' lines"; fi
}

echo "same weights as one process"
same mlp-adamw 2 1e-5 --model mlp --data digits --epochs 2 --batch 32
same mlp-between 2 1e-5 --model mlp --data digits --epochs 2 --batch 32 --dp-overlap 0
same mlp-sgd4 4 1e-5 --model mlp --data digits --epochs 1 --batch 32 --optimizer sgd --lr 0.05
same mlp-micro 2 1e-5 --model mlp --data digits --epochs 1 --batch 32 --micro 2
head -c 20000 /usr/share/common-licenses/GPL-3 >text.txt
same gpt 2 1e-3 --model gpt --data text.txt --width 32 --layers 1 --heads 2 --context 16 \
    --batch 8 --warmup 0 --lr 1e-2 --steps 30 --eval-every 30

echo "a batch that does not split is refused"
if timeout 60 $MPI -np 3 "$TRAIN" --model mlp --data digits --batch 32 --progress off \
    >odd.out 2>odd.err; then fail "batch 32 over 3 ranks ran"
elif grep -q "does not split into 3 equal slices" odd.err; then pass "$(grep -m1 'split' odd.err)"
else fail "batch 32 over 3 ranks: $(tail -3 odd.err)"; fi

echo "a dead or stalled rank ends the job"
t0=$(date +%s)
OKTO_TRAIN_DP_FAULT=stall:1:5 timeout 120 $MPI -np 2 -x OKTO_TRAIN_DP_FAULT "$TRAIN" --model mlp \
    --data digits --epochs 2 --batch 32 --progress off --mpi-timeout 3 >stall.out 2>stall.err
rc=$?
t=$(($(date +%s) - t0))
if [ $rc != 0 ] && [ $rc != 124 ] && grep -q "all-reduce of step 5 did not complete within 3 s" stall.err; then
    pass "stalled rank: exit $rc after ${t} s: $(grep -m1 'did not complete' stall.err)"
else
    fail "stalled rank: exit $rc after ${t} s: $(tail -5 stall.err)"
fi
t0=$(date +%s)
OKTO_TRAIN_DP_FAULT=die:1:5 timeout 120 $MPI -np 2 -x OKTO_TRAIN_DP_FAULT "$TRAIN" --model mlp \
    --data digits --epochs 2 --batch 32 --progress off --mpi-timeout 3 >die.out 2>die.err
rc=$?
t=$(($(date +%s) - t0))
if [ $rc != 0 ] && [ $rc != 124 ]; then
    pass "killed rank: the job ended, exit $rc after ${t} s"
else
    fail "killed rank: exit $rc after ${t} s: $(tail -5 die.err)"
fi

[ $fails = 0 ] && echo "all passed" && exit 0
echo "$fails failed"
exit 1
