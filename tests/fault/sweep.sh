#!/usr/bin/env bash
# tests/fault/sweep.sh: the fault sweep. Runs tests/fault/fault_sweep (one training step on
# okto, see its top comment) under the shim (clshim.so) once per fault point and reports what
# each point did; exits non-zero if any point misbehaved, crashed or hung.
#
#   tests/fault/sweep.sh [--quick | --full] [--points N] [--valgrind N] [--sched NAME]
#                        [--timeout S] [--build DIR] [--log FILE]
#
# First it runs the step with counting only, to learn K (the OpenCL calls in the window), which
# function each call was and who made it (okto or CLBlast), and M (the host allocations okto's
# own code makes there). Then the points, each a fresh process under `timeout`:
#   --full   every call N = 1..K (OKTO_FAULT_AT=N) and every allocation 1..M;
#   --quick  (the default; what CI runs) a deterministic spread of --points calls (default 80)
#            and a spread of 20 allocations;
# and in both, every kind of call site (function x caller) at least once, by its own count
# (OKTO_FAULT_FN=fn OKTO_FAULT_AT=n: lane threads interleave, so the Nth call overall differs a
# little from run to run, the Nth call of one function far less), and a few other errors where
# a call can fail in more than one way (an out-of-order queue refused: okto falls back).
# Each point's line says what was actually hit. --valgrind N also runs N of the call-site
# points under valgrind memcheck (host memory errors and leaks in every library; slow: the
# first run compiles PoCL's kernels again for valgrind's CPU model, minutes). --sched runs the
# step under another policy (sequential: one thread enqueues, so the order is reproducible).
#
# A point is clean when the driver judged it so (exit 0): it failed cleanly, absorbed the fault
# (okto or CLBlast fell back, numbers right) or was not reached, and afterwards a fresh graph
# computed the step right and nothing was left allocated (OpenCL objects and okto's host
# blocks, both counted by the shim). To rerun one point: the environment on its line, with
# LD_PRELOAD=BUILD/tests/clshim.so and BUILD/tests/fault_sweep.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
root=$(pwd)
mode=quick
npoints=80
nvalgrind=0
sched=
timeout_s=60
build=build
log=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --points) npoints=$2; shift ;;
    --valgrind) nvalgrind=$2; shift ;;
    --sched) sched=$2; shift ;;
    --timeout) timeout_s=$2; shift ;;
    --build) build=$2; shift ;;
    --log) log=$2; shift ;;
    -h | --help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sweep.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
    shift
done
case $build in /*) ;; *) build=$root/$build ;; esac
driver=$build/tests/fault_sweep
shim=$build/tests/clshim.so
for f in "$driver" "$shim"; do
    [ -e "$f" ] || { echo "sweep.sh: $f is missing: build first (ninja -C $build)" >&2; exit 2; }
done
[ -n "$log" ] || log=$build/meson-logs/fault-sweep-$mode.txt
mkdir -p "$(dirname "$log")"
dargs=()
[ -n "$sched" ] && dargs=(--sched "$sched")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OKTO_LOG=error OKTO_FAULT_QUIET=1 POCL_AFFINITY=0
unset OKTO_FAULT_AT OKTO_FAULT_FN OKTO_FAULT_ERR OKTO_FAULT_TRACE OKTO_FAULT_AUTOARM

# ---- counting runs
# The shim is preloaded into the driver only: in an instrumented build (tools/sanitize.sh) it
# needs the sanitizer runtime the driver carries, which timeout and nice lack.
if ! OKTO_FAULT_TRACE=$tmp/trace timeout "$timeout_s" nice env LD_PRELOAD="$shim" "$driver" \
    "${dargs[@]}" >"$tmp/count" 2>&1; then
    echo "sweep.sh: the step fails without any fault:" >&2
    cat "$tmp/count" >&2
    exit 1
fi
K=$(wc -l <"$tmp/trace")
OKTO_FAULT_FN=malloc timeout "$timeout_s" nice env LD_PRELOAD="$shim" "$driver" "${dargs[@]}" \
    >"$tmp/count_malloc" 2>&1
M=$(sed -n 's/^point: not-reached: \([0-9]*\) calls.*/\1/p' "$tmp/count_malloc")
M=${M:-0}

# ---- the points, one environment per line
: >"$tmp/points"
spread() { # count wanted -> 1..count, or `wanted` evenly spread values
    local n=$1 p=$2 i
    if [ "$p" -ge "$n" ]; then
        seq 1 "$n"
    else
        for ((i = 1; i <= p; i++)); do echo $(((i * n + p - 1) / p)); done | uniq
    fi
}
if [ "$mode" = full ]; then
    for n in $(seq 1 "$K"); do echo "OKTO_FAULT_AT=$n"; done >>"$tmp/points"
    for n in $(seq 1 "$M"); do echo "OKTO_FAULT_FN=malloc OKTO_FAULT_AT=$n"; done >>"$tmp/points"
else
    for n in $(spread "$K" "$npoints"); do echo "OKTO_FAULT_AT=$n"; done >>"$tmp/points"
    for n in $(spread "$M" 20); do echo "OKTO_FAULT_FN=malloc OKTO_FAULT_AT=$n"; done \
        >>"$tmp/points"
fi
# every call site kind (function x caller), at its first call of that function
awk -F'\t' '{ n[$2]++; k = $2 "\t" $3; if (!(k in first)) { first[k] = n[$2]; order[++m] = k } }
    END { for (i = 1; i <= m; i++) { split(order[i], a, "\t");
          print "OKTO_FAULT_FN=" a[1] " OKTO_FAULT_AT=" first[order[i]] } }' "$tmp/trace" \
    >"$tmp/kinds"
cat "$tmp/kinds" >>"$tmp/points"
# other ways to fail: every queue refused as out-of-order (the lanes fall back to in-order;
# the other queues must fail), and a build, a context and a wait failing with another error
nq=$(awk -F'\t' '$2 == "clCreateCommandQueue"' "$tmp/trace" | wc -l)
for n in $(seq 1 "$nq"); do
    echo "OKTO_FAULT_FN=clCreateCommandQueue OKTO_FAULT_AT=$n OKTO_FAULT_ERR=CL_INVALID_QUEUE_PROPERTIES"
done >>"$tmp/points"
{
    echo "OKTO_FAULT_FN=clBuildProgram OKTO_FAULT_AT=1 OKTO_FAULT_ERR=CL_OUT_OF_HOST_MEMORY"
    echo "OKTO_FAULT_FN=clCreateContext OKTO_FAULT_AT=1 OKTO_FAULT_ERR=CL_DEVICE_NOT_AVAILABLE"
    echo "OKTO_FAULT_FN=clWaitForEvents OKTO_FAULT_AT=1 OKTO_FAULT_ERR=CL_OUT_OF_RESOURCES"
    echo "OKTO_FAULT_FN=clEnqueueNDRangeKernel OKTO_FAULT_AT=1 OKTO_FAULT_ERR=CL_INVALID_KERNEL_ARGS"
    echo "OKTO_FAULT_FN=clCreateBuffer OKTO_FAULT_AT=1 OKTO_FAULT_ERR=CL_INVALID_BUFFER_SIZE"
} >>"$tmp/points"
total=$(wc -l <"$tmp/points")

echo "fault sweep ($mode${sched:+, sched $sched}): the window makes $K OpenCL calls ($(cut -f2 "$tmp/trace" | sort -u | wc -l) functions, $(wc -l <"$tmp/kinds") call-site kinds) and $M host allocations from okto's code; $total points"
{
    echo "fault sweep ($mode${sched:+, sched $sched}) $(date -u +%FT%TZ): K=$K M=$M points=$total"
    echo "counting run: $(cat "$tmp/count")"
} >"$log"

# ---- running them
clean=0 failed_cleanly=0 absorbed=0 not_reached=0 bad=0 crashed=0 hung=0 sanitizer=0
: >"$tmp/hits"
: >"$tmp/bad"
run_point() { # spec wrapper...
    local spec=$1 rc
    shift
    # shellcheck disable=SC2086 # spec is VAR=VALUE words
    if [ $# -gt 0 ]; then # under valgrind, which hands LD_PRELOAD on to its client
        env LD_PRELOAD="$shim" $spec timeout "$timeout_s" nice "$@" "$driver" "${dargs[@]}" \
            >"$tmp/out" 2>"$tmp/err"
    else
        env $spec timeout "$timeout_s" nice env LD_PRELOAD="$shim" "$driver" "${dargs[@]}" \
            >"$tmp/out" 2>"$tmp/err"
    fi
    rc=$?
    line=$(grep '^point:' "$tmp/out" | tail -1)
    # a sanitizer's report (an instrumented build: tools/sanitize.sh) decides, whatever the
    # driver concluded
    local san
    san=$(grep -m1 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$tmp/err" || true)
    if [ -n "$san" ]; then
        verdict=SANITIZER
        line="$san (exit status $rc; the report is in the log)"
        cat "$tmp/err" >>"$log"
        return
    fi
    case $rc in
    0) verdict=$(echo "$line" | sed 's/^point: \([a-z-]*\):.*/\1/') ;;
    1) verdict=MISBEHAVED ;;
    124 | 137) verdict=HUNG; line="no answer within ${timeout_s}s" ;;
    *)
        verdict=CRASHED
        line="exit status $rc$([ "$rc" -gt 128 ] && echo " (signal $((rc - 128)))"): $(tail -3 "$tmp/err" | tr '\n' ' ')"
        ;;
    esac
}
i=0
while read -r spec; do
    i=$((i + 1))
    run_point "$spec"
    echo "[$i/$total] $spec: $line" >>"$log"
    hit=$(echo "$line" | sed -n 's/^point: [A-Za-z-]*: call [0-9]* (\([A-Za-z]*\) from \([a-z]*\),.*/\1 (\2)/p')
    [ -n "$hit" ] && echo "$hit" >>"$tmp/hits"
    case $verdict in
    failed-cleanly) failed_cleanly=$((failed_cleanly + 1)); clean=$((clean + 1)) ;;
    absorbed) absorbed=$((absorbed + 1)); clean=$((clean + 1)) ;;
    not-reached) not_reached=$((not_reached + 1)); clean=$((clean + 1)) ;;
    HUNG) hung=$((hung + 1)); echo "HUNG    $spec: $line" >>"$tmp/bad" ;;
    SANITIZER) sanitizer=$((sanitizer + 1)); echo "SANITIZER $spec: $line" >>"$tmp/bad" ;;
    CRASHED) crashed=$((crashed + 1)); echo "CRASHED $spec: $line" >>"$tmp/bad" ;;
    *) bad=$((bad + 1)); echo "BAD     $spec: $line" >>"$tmp/bad" ;;
    esac
    if [ $((i % 50)) = 0 ]; then echo "  ... $i of $total points, $clean clean"; fi
done <"$tmp/points"

# ---- valgrind on some call-site points
vg_ok=0 vg_bad=0
if [ "$nvalgrind" -gt 0 ]; then
    command -v valgrind >/dev/null || { echo "sweep.sh: --valgrind needs valgrind" >&2; exit 2; }
    # shellcheck disable=SC2054 # the commas are inside one option
    vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,possible
        --error-exitcode=1 --num-callers=40 "--suppressions=$root/tests/valgrind.supp")
    saved=$timeout_s
    timeout_s=1200 # PoCL may compile for valgrind's CPU model first
    nk=$(wc -l <"$tmp/kinds")
    for n in $(spread "$nk" "$nvalgrind"); do
        spec=$(sed -n "${n}p" "$tmp/kinds")
        run_point "$spec" "${vg[@]}"
        echo "[valgrind] $spec: $line" >>"$log"
        cat "$tmp/err" >>"$log"
        if [ "$verdict" = MISBEHAVED ] || [ "$verdict" = CRASHED ] || [ "$verdict" = HUNG ] ||
            [ "$verdict" = SANITIZER ]; then
            vg_bad=$((vg_bad + 1))
            echo "VALGRIND $spec: $line (valgrind's report in $log)" >>"$tmp/bad"
        else
            vg_ok=$((vg_ok + 1))
        fi
    done
    timeout_s=$saved
fi

# ---- figures
echo "points tried: $total, clean: $clean (failed cleanly $failed_cleanly, absorbed $absorbed, not reached $not_reached), misbehaved: $bad, crashed: $crashed, hung: $hung$([ $sanitizer -gt 0 ] && echo ", sanitizer reports: $sanitizer")"
echo "functions hit ($(sort -u "$tmp/hits" | wc -l) kinds): $(sort "$tmp/hits" | uniq -c | sort -rn | awk '{c = $1; $1 = ""; printf "%s%s %d", (n++ ? ", " : ""), substr($0, 2), c}')"
absorbed_by=$(grep -h '^\[[0-9]*/[0-9]*\].*point: absorbed' "$log" | sed -n 's/.*(\([A-Za-z]*\) from \([a-z]*\),.*/\1 (\2)/p' | sort | uniq -c | sort -rn | awk '{c = $1; $1 = ""; printf "%s%s %d", (n++ ? ", " : ""), substr($0, 2), c}')
[ -n "$absorbed_by" ] && echo "absorbed (the call's failure was handled without an error): $absorbed_by"
[ "$nvalgrind" -gt 0 ] && echo "valgrind memcheck: $((vg_ok + vg_bad)) points, $vg_bad with errors or leaks"
echo "every point's line: $log"
if [ -s "$tmp/bad" ]; then
    echo "points that misbehaved:"
    cat "$tmp/bad"
    cat "$tmp/bad" >>"$log"
    exit 1
fi
exit 0
