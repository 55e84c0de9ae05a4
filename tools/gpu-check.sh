#!/usr/bin/env bash
# gpu-check.sh: runs okto's checks and measurements on a GPU machine from the GPU kit that
# tools/gpu-kit.sh builds (this file is copied into it). One command, time-bounded as a whole
# (OKTO_CHECK_BUDGET seconds, default 450: under 8 minutes) and step by step, so one hang cannot
# eat the rest:
#   driver   finds the OpenCL driver (below) and the way the kit's binaries run here
#   probe    okto-probe: the platforms and devices okto sees (text, and --json)
#   tests    the test suite from the prebuilt test executables, as `meson test` runs it, each
#            with its own timeout; pass/fail/skip/timeout per test
#   latency  cl-probe latency: empty-kernel enqueue + finish round trip, enqueue throughput
#   overlap  cl-probe overlap: two independent kernels on 1 in-order queue (the baseline), on 2
#            in-order queues and on 1 out-of-order queue; overlap from profiling timestamps
#   bench    okto-bench --json, the default (full) sizes
#   bigemm   okto-bench --only big-gemm --big-n 8192 (OKTO_CHECK_BIG_N)
#   torch    PyTorch cuBLAS matmul at the same shapes (skipped cleanly without torch or CUDA)
# then prints a summary. Results are JSON files under $OUT (default ./gpu-out), logs under
# $OUT/logs; summary.json holds the step table and the headline figures.
#
# The driver: OKTO_KIT_ICD names it (default nvidia). For a name X the candidates are, in order:
# the kit's vendors/X.icd (nvidia.icd names libnvidia-opencl.so.1 for the dynamic linker to
# find), then every libX-opencl.so* / libX.so* found in the driver's usual folders
# (/usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/local/nvidia/lib64, /usr/lib/nvidia*, anything
# under /usr/lib*/, the LD_LIBRARY_PATH entries, the ld.so cache), each written into an ICD file
# with its absolute path, then /etc/OpenCL/vendors/X.icd. The first with which okto-probe finds
# a device wins. OKTO_KIT_ICD may also be `system` (the machine's /etc/OpenCL/vendors), a path
# to an .icd file or to a driver library; an OCL_ICD_VENDORS already set is used as it is when
# OKTO_KIT_ICD is not set. Without a driver it stops, saying where it looked (exit status 3).
#
# OKTO_CHECK_QUICK=1 runs okto-bench at its --quick sizes and big-gemm at 1024: for checking the
# kit itself on a CPU (tools/gpu-kit-verify.sh), where the GPU sizes take far too long.
#
# Exit status: 0 when every step and test passed (skips allowed), 1 when one failed or timed
# out, 3 when no OpenCL driver was found, 2 on a bad setup (not run from a kit, $OUT unusable).
set -uo pipefail

KIT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -f "$KIT/manifest.json" ] || [ ! -d "$KIT/bin" ]; then
    echo "gpu-check: $KIT is not a GPU kit; build one with tools/gpu-kit.sh and run its copy" >&2
    exit 2
fi
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT/logs" 2>/dev/null && OUT=$(cd "$OUT" && pwd) || {
    echo "gpu-check: cannot write to OUT=$OUT" >&2
    exit 2
}
BUDGET=${OKTO_CHECK_BUDGET:-450}
TEST_TIMEOUT=${OKTO_CHECK_TEST_TIMEOUT:-120}
QUICK=${OKTO_CHECK_QUICK:-0}
BIG_N=${OKTO_CHECK_BIG_N:-$([ "$QUICK" = 1 ] && echo 1024 || echo 8192)}
t_start=$(date +%s)
deadline=$((t_start + BUDGET))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/okto-gpu-check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
orig_ld_path=${LD_LIBRARY_PATH-}
export OKTO_LOG=${OKTO_LOG:-error}
export CUDA_CACHE_PATH=${CUDA_CACHE_PATH:-$WORK/nv-cache} # the driver's JIT cache, if HOME is read-only
for f in driver probe tests latency overlap bench bigemm torch summary; do
    rm -f "$OUT/$f.json" "$OUT/$f.json.partial"
done
rm -f "$OUT"/logs/*.log
: >"$WORK/steps.tsv"

left() { echo $((deadline - $(date +%s))); }
# limit CAP RESERVE: seconds the next step may take: CAP at most, leaving RESERVE for the steps
# after it (the sum of their least useful times: tests 60, latency and overlap 15 each, bench 40,
# bigemm and torch 30 each). Both are for the default budget of 450 s and scale with
# OKTO_CHECK_BUDGET. A step that overruns (5 s of grace before KILL) shortens the later ones.
limit() {
    local cap=$(($1 * BUDGET / 450)) l=$(($(left) - $2 * BUDGET / 450))
    [ "$l" -gt "$cap" ] && l=$cap
    echo "$l"
}
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/steps.tsv"; }
status_of() { # status_of RC: ok, skip (77), timeout (124, 137) or fail
    case $1 in 0) echo ok ;; 77) echo skip ;; 124 | 137) echo timeout ;; *) echo fail ;; esac
}
# bounded SECONDS CMD...: CMD under a timeout (TERM, then KILL 5 s later, the whole group)
bounded() {
    local secs=$1
    shift
    timeout -k 5 "$secs" "$@"
}
heading() { printf '\n== %s\n' "$*"; }
have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1

# ---- how the kit's binaries run here ---------------------------------------------------------
# natively; natively with the kit's libstdc++ (lib/compat) where the machine's is missing or
# older than the kit's; or on the kit's own glibc (lib/glibc, through its loader) where the
# machine's glibc is older than the kit needs. Tried in that order with the binaries that load
# every kit library. OKTO_KIT_GLIBC=system|bundled and OKTO_KIT_COMPAT=0|1 force a choice.
heading "driver: how the kit runs here and which OpenCL driver it uses"
t0=$(date +%s)
make_wrappers() { # bundled glibc: every kit executable through the kit's loader
    mkdir -p "$WORK/wrap/bin" "$WORK/wrap/tests"
    local f d
    for f in "$KIT"/bin/* "$KIT"/tests/test_*; do
        d=$WORK/wrap/$(basename "$(dirname "$f")")
        case $f in
        *.sh) ln -sf "$f" "$d/" ;;
        *)
            printf '#!/bin/sh\nexec "%s" --library-path "%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "%s" "$@"\n' \
                "$KIT/lib/glibc/ld-linux-x86-64.so.2" "$KIT/lib/glibc:$KIT/lib/compat" "$f" \
                >"$d/$(basename "$f")"
            chmod +x "$d/$(basename "$f")"
            ;;
        esac
    done
}
runs_here() { # runs_here BINDIR: every kit library loads
    local b
    : >"$WORK/runs.err"
    for b in okto-bench okto-probe cl-probe; do
        bounded 20 "$1/$b" --help >/dev/null 2>>"$WORK/runs.err" || return 1
    done
}
use_compat() { export LD_LIBRARY_PATH=$KIT/lib/compat${orig_ld_path:+:$orig_ld_path}; }
BIN=$KIT/bin
TESTS=$KIT/tests
glibc_mode=system
compat=0
case ${OKTO_KIT_GLIBC:-auto}/${OKTO_KIT_COMPAT:-auto} in
bundled/*) glibc_mode=bundled ;;
*/1) use_compat && compat=1 ;;
esac
if [ "$glibc_mode" = system ] && ! runs_here "$BIN"; then
    first_err=$(head -c 600 "$WORK/runs.err")
    if [ "${OKTO_KIT_COMPAT:-auto}" = auto ] && use_compat && runs_here "$BIN"; then
        compat=1
    elif [ "${OKTO_KIT_GLIBC:-auto}" = auto ]; then
        LD_LIBRARY_PATH=$orig_ld_path
        [ -n "$orig_ld_path" ] || unset LD_LIBRARY_PATH
        glibc_mode=bundled
    fi
fi
if [ "$glibc_mode" = bundled ]; then
    compat=1
    make_wrappers
    BIN=$WORK/wrap/bin
    TESTS=$WORK/wrap/tests
fi
if ! runs_here "$BIN"; then
    echo "gpu-check: the kit's binaries do not run here (glibc $glibc_mode, compat $compat):" >&2
    [ -n "${first_err:-}" ] && echo "  natively: $first_err" >&2
    cat "$WORK/runs.err" >&2
    record driver fail $(($(date +%s) - t0)) "the kit's binaries do not load"
    exit 1
fi
sys_glibc=$( (getconf GNU_LIBC_VERSION || ldd --version | head -n 1) 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1)
echo "kit runs with glibc: $glibc_mode (machine's: ${sys_glibc:-unknown})," \
    "kit libstdc++: $([ $compat = 1 ] && echo yes || echo no)"

# ---- the OpenCL driver -----------------------------------------------------------------------
icd=${OKTO_KIT_ICD:-}
if [ -z "$icd" ] && [ -n "${OCL_ICD_VENDORS:-}" ]; then
    icd="env"
fi
icd=${icd:-nvidia}
: >"$WORK/cands.tsv" # kind, OCL_ICD_VENDORS value, library, extra library dir
: >"$WORK/looked.txt"
add_cand() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/cands.tsv"; }
search_driver() { # search_driver PATTERN...: absolute paths, deduplicated by the file they name
    local dirs=(/usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib
        /usr/lib/nvidia* /usr/lib/x86_64-linux-gnu/nvidia* /usr/lib64/nvidia*
        /run/nvidia/driver/usr/lib/x86_64-linux-gnu /run/nvidia/driver/usr/lib64)
    local d p f IFS_=$IFS
    IFS=:
    for d in $orig_ld_path; do [ -n "$d" ] && dirs+=("$d"); done
    IFS=$IFS_
    {
        for d in "${dirs[@]}"; do
            if [ -d "$d" ]; then
                echo "  $d" >>"$WORK/looked.txt"
                for p in "$@"; do
                    for f in "$d"/$p; do [ -e "$f" ] && echo "$f"; done
                done
            else
                echo "  $d (absent)" >>"$WORK/looked.txt"
            fi
        done
        echo "  the ld.so cache (ldconfig -p)" >>"$WORK/looked.txt"
        for p in "$@"; do
            bounded 10 ldconfig -p 2>/dev/null | awk -v pat="$p" '
                BEGIN { gsub(/\./, "\\.", pat); gsub(/\*/, ".*", pat); pat = "^" pat "$" }
                $1 ~ pat { print $NF }' 
        done
        echo "  everything under /usr/lib*/ (find -maxdepth 5)" >>"$WORK/looked.txt"
        for p in "$@"; do
            bounded 20 find /usr/lib* -maxdepth 5 -name "$p" 2>/dev/null
        done
    } | while read -r f; do
        [ -f "$f" ] && printf '%s\t%s\n' "$(readlink -f "$f")" "$f"
    done | awk -F'\t' '!seen[$1]++ { print $2 }'
}
chosen=
chosen_lib=
i=0
: >"$WORK/tried.txt"
# try_cands: tries the candidates added since the last call, in order, until one finds a device
try_cands() {
    local kind vendors lib extra lim rc
    while IFS=$'\t' read -r kind vendors lib extra; do
        i=$((i + 1))
        lim=$(left)
        [ "$lim" -gt 60 ] && lim=60
        if [ "$lim" -lt 10 ] && [ $i -gt 1 ]; then
            printf '  %s and the rest: not tried, the budget is spent\n' "$kind" >>"$WORK/tried.txt"
            return
        fi
        [ "$lim" -lt 10 ] && lim=10
        export OCL_ICD_VENDORS=$vendors
        if [ -n "$extra" ]; then
            export LD_LIBRARY_PATH=$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        fi
        bounded "$lim" "$BIN/okto-probe" --json >"$WORK/cand$i.json" 2>"$WORK/cand$i.err" </dev/null
        rc=$?
        if [ $rc = 0 ]; then
            chosen=$kind
            chosen_lib=${lib:-as listed in $vendors}
            cp "$WORK/cand$i.json" "$OUT/probe.json"
            printf '  %s (%s): found a device\n' "$kind" "${lib:-as listed there}" >>"$WORK/tried.txt"
            return
        fi
        printf '  %s (%s): okto-probe exit %s: %s\n' "$kind" "${lib:-as listed there}" "$rc" \
            "$(tr '\n' ' ' <"$WORK/cand$i.err" | head -c 400)" >>"$WORK/tried.txt"
        if [ -n "$extra" ]; then
            LD_LIBRARY_PATH=${LD_LIBRARY_PATH#"$extra"}
            LD_LIBRARY_PATH=${LD_LIBRARY_PATH#:}
            [ -n "$LD_LIBRARY_PATH" ] || unset LD_LIBRARY_PATH
        fi
    done < <(tail -n +$((i + 1)) "$WORK/cands.tsv")
}
case $icd in
env) add_cand "OCL_ICD_VENDORS from the environment" "$OCL_ICD_VENDORS" "" "" ;;
system) add_cand "the machine's /etc/OpenCL/vendors" "/etc/OpenCL/vendors" "" "" ;;
*/* | *.icd | *.so*)
    if [ ! -e "$icd" ]; then
        echo "gpu-check: OKTO_KIT_ICD=$icd: no such file" >&2
    elif [ "${icd%.icd}" != "$icd" ]; then
        add_cand "ICD file $icd" "$(readlink -f "$icd")" "$(head -n 1 "$icd")" ""
    else
        lib=$(readlink -f "$icd")
        mkdir -p "$WORK/vendors-given"
        echo "$lib" >"$WORK/vendors-given/given.icd"
        add_cand "driver library $icd" "$WORK/vendors-given" "$lib" "$(dirname "$lib")"
    fi
    ;;
*)
    # the search runs only when the kit's ICD file finds nothing
    if [ -f "$KIT/vendors/$icd.icd" ]; then
        add_cand "the kit's vendors/$icd.icd" "$KIT/vendors/$icd.icd" \
            "$(head -n 1 "$KIT/vendors/$icd.icd")" ""
        try_cands
    fi
    if [ -z "$chosen" ]; then
        n=0
        while read -r lib; do
            n=$((n + 1))
            mkdir -p "$WORK/vendors-$n"
            readlink -f "$lib" >"$WORK/vendors-$n/$icd.icd"
            add_cand "found $lib" "$WORK/vendors-$n/$icd.icd" "$(readlink -f "$lib")" \
                "$(dirname "$lib")"
        done < <(search_driver "lib$icd-opencl.so*" "lib$icd.so*")
        try_cands
    fi
    if [ -z "$chosen" ] && [ -f "/etc/OpenCL/vendors/$icd.icd" ]; then
        add_cand "/etc/OpenCL/vendors/$icd.icd" "/etc/OpenCL/vendors/$icd.icd" \
            "$(head -n 1 "/etc/OpenCL/vendors/$icd.icd")" ""
    fi
    ;;
esac
[ -n "$chosen" ] || try_cands
cat "$WORK/tried.txt"
json_lines() { # json_lines FILE: the file's lines as a JSON array of strings
    if [ $have_python = 1 ]; then
        python3 -c 'import json,sys; print(json.dumps([l.strip() for l in open(sys.argv[1]) if l.strip()]))' "$1"
    else
        echo '[]'
    fi
}
if [ -z "$chosen" ]; then
    {
        echo "gpu-check: no OpenCL driver found for OKTO_KIT_ICD=$icd."
        if [ -s "$WORK/looked.txt" ]; then
            echo "looked for lib$icd-opencl.so* and lib$icd.so* in:"
            cat "$WORK/looked.txt"
        fi
        if [ -s "$WORK/tried.txt" ]; then
            echo "tried:"
            cat "$WORK/tried.txt"
        else
            echo "found no candidate to try."
        fi
        echo "Is the GPU driver mounted (libnvidia-opencl.so.1)? Point OKTO_KIT_ICD at its"
        echo "library or .icd file, or at another driver (pocl, system)."
    } | tee "$OUT/logs/driver.log" >&2
    printf '{"error": "no OpenCL driver found", "icd": "%s", "looked_in": %s, "tried": %s}\n' \
        "$icd" "$(json_lines "$WORK/looked.txt")" "$(json_lines "$WORK/tried.txt")" \
        >"$OUT/driver.json"
    printf '{"error": "no OpenCL driver found for OKTO_KIT_ICD=%s", "exit_status": 3}\n' "$icd" \
        >"$OUT/summary.json"
    exit 3
fi
printf '{"icd": "%s", "how": "%s", "ocl_icd_vendors": "%s", "library": "%s", "glibc": "%s", "kit_libstdcxx": %s, "looked_in": %s, "tried": %s}\n' \
    "$icd" "$chosen" "$OCL_ICD_VENDORS" "$chosen_lib" "$glibc_mode" \
    "$([ $compat = 1 ] && echo true || echo false)" "$(json_lines "$WORK/looked.txt")" \
    "$(json_lines "$WORK/tried.txt")" >"$OUT/driver.json"
echo "using: $chosen"
record driver ok $(($(date +%s) - t0)) "$icd: $chosen; glibc $glibc_mode"

# ---- the machine, for the record ---------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "uname: $(uname -a)"
    echo "glibc: ${sys_glibc:-unknown}"
    echo "cpus: $(nproc 2>/dev/null) x $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)"
    echo "python3: $(python3 --version 2>&1)"
    echo "kit: $(tr -d '\n' <"$KIT/manifest.json" | grep -o '"okto_version": "[^"]*", "commit": "[^"]*", "built": "[^"]*"')"
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "nvidia-smi: $(bounded 15 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader 2>&1 | head -n 4 | tr '\n' ';')"
    else
        echo "nvidia-smi: not found"
    fi
} >"$OUT/logs/machine.log"
cat "$OUT/logs/machine.log"

# ---- (a) probe ---------------------------------------------------------------------------------
heading "probe: okto-probe"
t0=$(date +%s)
bounded "$(limit 30 190)" "$BIN/okto-probe" >"$OUT/logs/probe.log" 2>&1 </dev/null
rc=$?
cat "$OUT/logs/probe.log"
record probe "$(status_of $rc)" $(($(date +%s) - t0)) "$(grep -c '^\[[0-9]*\] ' "$OUT/logs/probe.log") device(s)"

# ---- (b) tests ---------------------------------------------------------------------------------
heading "tests: the suite from the prebuilt executables (each at most ${TEST_TIMEOUT} s)"
t0=$(date +%s)
test_budget=$(limit 180 130)
test_end=$(($(date +%s) + test_budget))
: >"$WORK/tests.tsv"
while IFS=$'\t' read -r name timeout_s envs cmd; do
    [ -n "$name" ] || continue
    lim=$timeout_s
    [ "$lim" -gt "$TEST_TIMEOUT" ] && lim=$TEST_TIMEOUT
    rest=$((test_end - $(date +%s)))
    [ "$lim" -gt "$rest" ] && lim=$rest
    if [ "$lim" -lt 5 ]; then
        printf '  %-20s not run (the test budget of %s s is spent)\n' "$name" "$test_budget"
        printf '%s\tnot-run\t\t0\n' "$name" >>"$WORK/tests.tsv"
        continue
    fi
    words=()
    for w in $cmd; do
        w=${w//@BIN@/$BIN}
        words+=("${w//@TESTS@/$TESTS}")
    done
    envs_a=()
    if [ "$envs" != - ]; then
        IFS=, read -r -a envs_a <<<"$envs"
    fi
    mkdir -p "$WORK/t/$name"
    s0=$(date +%s.%N)
    (cd "$WORK/t/$name" && bounded "$lim" env ${envs_a[@]+"${envs_a[@]}"} "${words[@]}") \
        >"$WORK/test.log" 2>&1 </dev/null
    rc=$?
    secs=$(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    st=$(status_of $rc)
    [ "$st" = ok ] && st=pass
    tail -c 200000 "$WORK/test.log" >"$OUT/logs/test-$name.log"
    printf '  %-8s %-20s %6s s%s\n' "$st" "$name" "$secs" \
        "$([ "$st" = timeout ] && echo " (limit $lim s)")"
    if [ "$st" = fail ]; then tail -n 15 "$WORK/test.log" | sed 's/^/      | /'; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$rc" "$secs" >>"$WORK/tests.tsv"
done <"$KIT/tests/tests.tsv"
{
    echo '{"tests": ['
    awk -F'\t' '{ printf "%s  {\"name\": \"%s\", \"status\": \"%s\", \"exit_status\": %s, \"seconds\": %s, \"log\": \"logs/test-%s.log\"}", (NR > 1 ? ",\n" : ""), $1, $2, ($3 == "" ? "null" : $3), $4, $1 }' "$WORK/tests.tsv"
    printf '\n]}\n'
} >"$OUT/tests.json"
npass=$(awk -F'\t' '$2 == "pass"' "$WORK/tests.tsv" | wc -l)
nbad=$(awk -F'\t' '$2 == "fail" || $2 == "timeout" || $2 == "not-run"' "$WORK/tests.tsv" | wc -l)
nskip=$(awk -F'\t' '$2 == "skip"' "$WORK/tests.tsv" | wc -l)
bad_names=$(awk -F'\t' '$2 != "pass" && $2 != "skip" { printf "%s%s (%s)", (n++ ? ", " : ""), $1, $2 }' "$WORK/tests.tsv")
record tests "$([ "$nbad" = 0 ] && echo ok || echo fail)" $(($(date +%s) - t0)) \
    "$npass pass, $nskip skip, $nbad not passed${bad_names:+: $bad_names}"

# ---- (c), (d) raw OpenCL probes ----------------------------------------------------------------
json_step() { # json_step NAME CAP RESERVE CMD...: CMD's stdout is $OUT/NAME.json
    local name=$1 cap=$2 reserve=$3 lim t rc
    shift 3
    lim=$(limit "$cap" "$reserve")
    t=$(date +%s)
    if [ "$lim" -lt 5 ]; then
        record "$name" not-run 0 "no time left"
        return
    fi
    echo "(limit $lim s) $*"
    bounded "$lim" "$@" >"$WORK/$name.json" 2>"$OUT/logs/$name.log" </dev/null
    rc=$?
    cat "$OUT/logs/$name.log"
    if [ $rc = 0 ]; then
        mv "$WORK/$name.json" "$OUT/$name.json"
    else
        mv "$WORK/$name.json" "$OUT/$name.json.partial"
        echo "$name: exit status $rc$([ $rc = 124 ] && echo ", timed out after $lim s")"
    fi
    record "$name" "$(status_of $rc)" $(($(date +%s) - t)) "exit status $rc"
}
heading "latency: empty-kernel launch round trip and enqueue throughput (raw OpenCL)"
json_step latency 30 115 "$BIN/cl-probe" latency
heading "overlap: two independent kernels, 1 in-order / 2 in-order / 1 out-of-order queue"
json_step overlap 30 100 "$BIN/cl-probe" overlap

# ---- (e) okto-bench ----------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    heading "bench: okto-bench --quick (OKTO_CHECK_QUICK=1)"
    json_step bench 100 60 "$BIN/okto-bench" --json --quick
else
    heading "bench: okto-bench, default sizes"
    json_step bench 100 60 "$BIN/okto-bench" --json
fi
heading "bigemm: okto-bench big-gemm at $BIG_N"
json_step bigemm 80 30 "$BIN/okto-bench" --json --only big-gemm --big-n "$BIG_N" --reps 5

# ---- (f) PyTorch cuBLAS reference --------------------------------------------------------------
heading "torch: cuBLAS matmul at the same shapes"
t0=$(date +%s)
lim=$(limit 60 5)
if [ $have_python = 0 ]; then
    record torch skip 0 "no python3"
elif [ "$lim" -lt 10 ]; then
    record torch not-run 0 "no time left"
else
    echo "(limit $lim s)"
    (
        if [ -n "$orig_ld_path" ]; then export LD_LIBRARY_PATH=$orig_ld_path; else unset LD_LIBRARY_PATH; fi
        bounded "$lim" python3 - "$OUT/torch.json" "$BIG_N" <<'EOF'
# cuBLAS through PyTorch at okto-bench's GEMM shapes: square fp32 (TF32 off, what okto's fp32
# matmul computes; TF32 on for reference), and the batches of small products of tiny-ops and
# small-gemm, as one batched call and as separate calls (one launch each, as okto issues them).
import json, statistics, sys
out = {"skipped": None}
def done(code=0):
    json.dump(out, open(sys.argv[1], "w"), indent=1)
    sys.exit(code)
try:
    import torch
except Exception as e:
    out["skipped"] = "torch not importable: %s" % e
    print("torch: skipped:", out["skipped"])
    done()
out["torch"] = torch.__version__
if not torch.cuda.is_available():
    out["skipped"] = "torch %s has no CUDA device (torch.version.cuda %s)" % (torch.__version__, torch.version.cuda)
    print("torch: skipped:", out["skipped"])
    done()
dev = torch.device("cuda")
out.update(cuda=torch.version.cuda, device=torch.cuda.get_device_name(0), results=[])
def timed(fn, reps, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); e.synchronize()
        ms.append(s.elapsed_time(e))
    return statistics.median(ms), min(ms)
def row(what, m, n, k, batch, tf32, ms, best):
    gf = 2.0 * m * n * k * batch / (ms * 1e6)
    out["results"].append(dict(what=what, m=m, n=n, k=k, batch=batch, tf32=tf32, median_ms=ms, min_ms=best, gflops=gf))
    print("  %-34s %9.3f ms  %9.1f GFLOP/s" % (what, ms, gf), flush=True)
gen = torch.Generator(device=dev).manual_seed(1)
big_n = int(sys.argv[2])
for n in sorted({1024, 2048, 4096, 8192, big_n}):
    a = torch.rand(n, n, device=dev, generator=gen) * 2 - 1
    b = torch.rand(n, n, device=dev, generator=gen) * 2 - 1
    c = torch.empty(n, n, device=dev)
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ms, best = timed(lambda: torch.matmul(a, b, out=c), 5 if n >= 8192 else 10)
        row("%d^3 fp32%s" % (n, " tf32" if tf32 else ""), n, n, n, 1, tf32, ms, best)
    del a, b, c
torch.backends.cuda.matmul.allow_tf32 = False
for count, s, name in ((1024, 8, "tiny-ops"), (256, 64, "small-gemm")):
    a = torch.rand(s, s, device=dev, generator=gen)
    b = torch.rand(s, s, device=dev, generator=gen)
    c = torch.empty(count, s, s, device=dev)
    ab, bb = a.expand(count, s, s).contiguous(), b.expand(count, s, s).contiguous()
    ms, best = timed(lambda: torch.bmm(ab, bb, out=c), 10)
    row("%s: %d x %d^3, one bmm" % (name, count, s), s, s, s, count, False, ms, best)
    def separate():
        for i in range(count):
            torch.matmul(a, b, out=c[i])
    ms, best = timed(separate, 5, warm=1)
    row("%s: %d x %d^3, separate" % (name, count, s), s, s, s, count, False, ms, best)
done()
EOF
    ) 2>&1 | tee "$OUT/logs/torch.log"
    rc=${PIPESTATUS[0]}
    note="exit status $rc"
    if [ $rc = 0 ] && grep -q '"skipped": "' "$OUT/torch.json" 2>/dev/null; then
        rc=77
        note=$(sed -n 's/^torch: skipped: //p' "$OUT/logs/torch.log" | head -n 1)
    fi
    record torch "$(status_of $rc)" $(($(date +%s) - t0)) "$note"
fi

# ---- summary -----------------------------------------------------------------------------------
total=$(($(date +%s) - t_start))
final=0
if awk -F'\t' '$2 != "ok" && $2 != "skip" { bad = 1 } END { exit !bad }' "$WORK/steps.tsv"; then
    final=1
fi
heading "summary ($total s of the ${BUDGET} s budget; results in $OUT)"
if [ $have_python = 1 ]; then
    python3 - "$OUT" "$WORK/steps.tsv" "$total" "$BUDGET" "$final" "$KIT" <<'EOF'
import json, os, re, sys
out, steps_tsv, kit_dir = sys.argv[1], sys.argv[2], sys.argv[6]
total, budget, final = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def load(name):
    try:
        return json.load(open(os.path.join(out, name)))
    except Exception:
        pass
    # a timed-out okto-bench leaves its finished workloads, one per line
    try:
        text = open(os.path.join(out, name + ".partial")).read()
    except Exception:
        return None
    doc = {"workloads": [], "partial": True}
    m = re.search(r'"big_gemm_n": (\d+)', text)
    if m:
        doc["big_gemm_n"] = int(m.group(1))
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith('{"name"'):
            try:
                doc["workloads"].append(json.loads(line))
            except ValueError:
                pass
    return doc
steps = []
for line in open(steps_tsv):
    name, status, secs, note = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
    steps.append({"step": name, "status": status, "seconds": int(secs or 0), "note": note})
figures = {}
probe = load("probe.json")
if probe:
    figures["devices"] = ["%s (%s, %s, %d CU, lanes %d+%d)%s" % (d["name"], d["type"], d["platform"], d["compute_units"],
                          d["lanes"]["compute"], d["lanes"]["copy"], " default" if d["default"] else "") for d in probe["devices"]]
lat = load("latency.json")
if lat:
    figures["latency"] = "round trip median %.1f us (p10 %.1f, p90 %.1f); enqueue %.2f us; back to back %.2f us/kernel; device gap %.2f us" % (
        lat["round_trip_us"]["median"], lat["round_trip_us"]["p10"], lat["round_trip_us"]["p90"],
        lat["throughput"]["enqueue_us_per_kernel"], lat["throughput"]["us_per_kernel_until_finished"],
        lat["device_profile"]["median_gap_us"])
ov = load("overlap.json")
if ov:
    figures["overlap"] = ["%s: %s" % (k, "overlap %.2f, span %.1f ms for %.1f ms of kernels, %.2fx the in-order queue's speed" % (
                              v["overlap_median"], v["span_ms"], v["sum_of_kernels_ms"], v["speedup_vs_in_order_1_queue"])
                              if v.get("supported") else "unsupported") for k, v in ov["modes"].items()]
for key in ("bench", "bigemm"):
    b = load(key + ".json")
    if not b:
        continue
    rows = []
    for w in b.get("workloads", []):
        if "error" in w:
            rows.append("%s error" % w["name"])
            continue
        r = "%s seq %.2f / heft %.2f ms (%.2fx)" % (w["name"], w["sequential_ms"], w["default_ms"], w["speedup"])
        if w["name"] == "big-gemm":
            n = b.get("big_gemm_n", 2048)
            r += " = %.0f GFLOP/s at %d" % (2.0 * n ** 3 / (w["default_ms"] * 1e6), n)
        if w.get("baselines"):
            r += " [" + ", ".join("%s %.2f" % kv for kv in w["baselines"].items()) + "]"
        rows.append(r)
    figures[key + (" (partial: timed out)" if b.get("partial") else "")] = rows
t = load("torch.json")
if t and t.get("results"):
    figures["torch"] = ["%s %.3f ms %.0f GFLOP/s" % (r["what"], r["median_ms"], r["gflops"]) for r in t["results"]]
elif t:
    figures["torch"] = "skipped: %s" % t.get("skipped")
tests = load("tests.json")
summary = {"exit_status": final, "seconds": total, "budget_seconds": budget, "steps": steps, "figures": figures,
           "driver": load("driver.json"), "tests": (tests or {}).get("tests")}
try:
    kit = json.load(open(os.path.join(kit_dir, "manifest.json")))
    summary["kit"] = {k: v for k, v in kit.items() if k != "files"}
except Exception:
    pass
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print("%-9s %-8s %5s  %s" % ("step", "status", "s", "note"))
for s in steps:
    print("%-9s %-8s %5d  %s" % (s["step"], s["status"], s["seconds"], s["note"]))
for k, v in figures.items():
    if isinstance(v, list):
        print("%s:" % k)
        for x in v:
            print("  " + x)
    else:
        print("%s: %s" % (k, v))
EOF
else
    cat "$WORK/steps.tsv"
fi
echo "gpu-check: exit status $final"
exit $final
