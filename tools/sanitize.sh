#!/usr/bin/env bash
# tools/sanitize.sh: okto and its tests built with clang's sanitizers, each in a build directory
# of its own, and run on PoCL:
#   asan   build-asan/: AddressSanitizer + UndefinedBehaviorSanitizer (every UB check fatal) +
#          LeakSanitizer; runs the foundation, engine and math suites, then a quick fault sweep
#          (tests/fault/sweep.sh), so okto's error paths run instrumented too
#   tsan   build-tsan/: ThreadSanitizer; runs the engine suite (two threads launching one graph,
#          concurrent graphs, recording while launching, test_threads) and test_context
#
#   tools/sanitize.sh [asan] [tsan]      (both when none is named)
#
# Needs clang and libclang-rt-14-dev (tools/setup.sh installs them, with llvm-14 for the
# symbolizer). Idempotent: existing build directories are reconfigured, not wiped.
#
# Why these options (found on Debian 12: PoCL 3.1, LLVM 15, CLBlast 1.5.3, clang 14):
#   - clang, not gcc: clang links the sanitizer runtime into the executable, so the PoCL, LLVM
#     and CLBlast libraries that are not instrumented still get their malloc and pthread calls
#     intercepted, and LD_PRELOADing the fault shim needs no link-order workaround.
#   - b_lundef=false: instrumented shared objects (libokto.so, the shim) leave the runtime's
#     symbols to the executable.
#   - ASAN_OPTIONS fast_unwind_on_malloc=0: libstdc++ and LLVM have no frame pointers, so the
#     fast unwinder stops at operator new and a leak inside PoCL's compiler shows no PoCL frame
#     for tests/lsan.supp to match. The slow unwinder costs little while PoCL's kernel cache
#     is warm (the suite is ~1.5x slower); on a cold cache PoCL compiles with LLVM and leaks
#     there, which lsan.supp suppresses (frames of libpocl and its LLVM only).
#   - detect_leaks stays on (LeakSanitizer), with tests/lsan.supp; okto's own leaks fail.
#   - use_sigaltstack=0: LLVM (loaded by PoCL) gives a thread its own alternate signal stack,
#     malloc'd, when PoCL first initialises on it; when such a thread exits, ASan unmaps the
#     stack it believes is its own and aborts ("CHECK failed: unable to unmap"). Seen in
#     test_threads' fresh process, where a worker thread, not main, creates the first context.
#   - protect_shadow_gap, detect_stack_use_after_return etc. stay at their defaults: PoCL and
#     LLVM run under them unchanged here (no mapping in the shadow gap was seen).
#   - UBSan: -fno-sanitize-recover=all, so the first undefined behaviour fails its test.
#   - TSan: no suppressions were needed; tests/tsan.supp is there for PoCL, CLBlast or ICD
#     loader frames only (it says why none is in it). PoCL, CLBlast and the loader are not
#     instrumented, so TSan checks okto's memory only, with their locks (pthread) seen.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

want_asan=0 want_tsan=0
for a in "$@"; do
    case $a in
    asan) want_asan=1 ;;
    tsan) want_tsan=1 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sanitize.sh: unknown argument $a (asan, tsan)" >&2; exit 2 ;;
    esac
done
if [ $want_asan = 0 ] && [ $want_tsan = 0 ]; then
    want_asan=1 want_tsan=1
fi

for tool in clang meson ninja; do
    command -v $tool >/dev/null || { echo "sanitize.sh: $tool missing: run tools/setup.sh" >&2; exit 1; }
done
sym=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x "$sym" ] || sym=$(command -v llvm-symbolizer || true)

configure() { # dir sanitizers extra-c-args
    local dir=$1 san=$2 cargs=$3
    local opts=(-Db_sanitize="$san" -Db_lundef=false -Dc_args="$cargs")
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null
    else
        CC=clang meson setup "$dir" "${opts[@]}" >/dev/null
    fi
    nice ninja -C "$dir" >/dev/null
}

export OKTO_LOG=error
ok=1
summary=()

if [ $want_asan = 1 ]; then
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer (build-asan)"
    t0=$(date +%s)
    configure build-asan address,undefined "-fno-omit-frame-pointer -fno-sanitize-recover=all"
    export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=64:use_sigaltstack=0:abort_on_error=0${sym:+:external_symbolizer_path=$sym}"
    export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    t1=$(date +%s)
    asan_ok=1
    nice meson test -C build-asan --print-errorlogs --suite foundation --suite engine \
        --suite math || asan_ok=0
    t2=$(date +%s)
    # the error paths: a quick fault sweep on the instrumented build (its OpenCL points; the
    # host-allocation points need the shim's malloc, which ASan's replaces, so they come out
    # as "not reached" here and the native sweep covers them)
    tests/fault/sweep.sh --quick --points 20 --build build-asan || asan_ok=0
    t3=$(date +%s)
    [ $asan_ok = 1 ] || ok=0
    summary+=("asan+ubsan: $([ $asan_ok = 1 ] && echo passed || echo FAILED): build $((t1 - t0)) s, suites $((t2 - t1)) s, fault sweep $((t3 - t2)) s")
    unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi

if [ $want_tsan = 1 ]; then
    echo "== ThreadSanitizer (build-tsan)"
    t0=$(date +%s)
    configure build-tsan thread "-fno-omit-frame-pointer"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp${sym:+:external_symbolizer_path=$sym}"
    t1=$(date +%s)
    tsan_ok=1
    nice meson test -C build-tsan --print-errorlogs --suite engine || tsan_ok=0
    nice meson test -C build-tsan --print-errorlogs context || tsan_ok=0
    t2=$(date +%s)
    [ $tsan_ok = 1 ] || ok=0
    summary+=("tsan: $([ $tsan_ok = 1 ] && echo passed || echo FAILED): build $((t1 - t0)) s, engine suite and test_context $((t2 - t1)) s")
    unset TSAN_OPTIONS
fi

echo
for s in "${summary[@]}"; do echo "sanitizers: $s"; done
[ $ok = 1 ]
