#!/usr/bin/env bash
# tools/test.sh: builds okto into build/ and runs the whole test suite, then the leak check:
# the foundation tests (among them test_context's 100 context create/destroy cycles) and
# okto-probe under valgrind memcheck, which fails on any definitely or possibly lost block.
# tests/valgrind.supp holds the few known false positives of glibc and PoCL. Then a bounded fault
# sweep (tests/fault/sweep.sh --quick: OpenCL calls and host allocations failed one at a time),
# the sanitizer builds (tools/sanitize.sh: ASan+UBSan+LSan on the foundation, engine and math
# suites and a small sweep, TSan on the engine suite) and last the Python package's tests
# (python/tools/ci.sh). Idempotent; works from any directory. OKTO_CI_SANITIZE=0 skips the
# sanitizers (they add about 7 minutes here).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

tools/setup.sh

if [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build
else
    meson setup build
fi
ninja -C build

echo
echo "== test suite"
# The leak check runs even when a test failed, so one CI run reports both; the exit status is
# still non-zero at the end.
suite_ok=1
meson test -C build --print-errorlogs || suite_ok=0

echo
echo "== leak check (valgrind memcheck)"
# Why valgrind and not ASan: both run these tests on PoCL cleanly and both catch a leaked
# tensor, but only memcheck catches a context that was never destroyed (its live lane threads
# point into it, which LeakSanitizer counts as reachable and memcheck as "possibly lost"), and
# valgrind needs no second, instrumented build.
# shellcheck disable=SC2054 # the commas are inside one option
vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,possible
    --error-exitcode=1 --num-callers=40 --gen-suppressions=all
    "--suppressions=$root/tests/valgrind.supp")
# The wrapper string is split like a shell would; quote the suppressions path for that.
wrapper="${vg[*]:0:${#vg[@]}-1} '--suppressions=$root/tests/valgrind.supp'"
export OKTO_LOG=error
leak_ok=1
meson test -C build --print-errorlogs --wrapper "$wrapper" status config context || leak_ok=0
# okto-probe walks every device through okto_devices; it must give all of it back too.
"${vg[@]}" build/tools/okto-probe --json >/dev/null || leak_ok=0

echo
echo "== fault sweep (tests/fault/sweep.sh --quick)"
t0=$(date +%s)
sweep_ok=1
tests/fault/sweep.sh --quick || sweep_ok=0
echo "fault sweep: $(($(date +%s) - t0)) s (the full sweep: tests/fault/sweep.sh --full)"

san_ok=1
if [ "${OKTO_CI_SANITIZE:-1}" != 0 ]; then
    echo
    echo "== sanitizers (tools/sanitize.sh)"
    t0=$(date +%s)
    tools/sanitize.sh || san_ok=0
    echo "sanitizers: $(($(date +%s) - t0)) s"
fi

echo "== Python package (python/tools/ci.sh: pip install ./python into build/venv, pytest)"
py_ok=1
python/tools/ci.sh || py_ok=0

echo
if [ "$leak_ok" = 1 ]; then
    echo "leak check: no leak or memory error (test_status, test_config, test_context, okto-probe)"
else
    echo "leak check: FAILED (valgrind's report is above and in build/meson-logs/)"
fi
if [ "$suite_ok" = 1 ]; then
    echo "test suite: passed"
else
    echo "test suite: FAILED (see the failures listed above)"
fi
[ "$sweep_ok" = 1 ] && echo "fault sweep: every point clean" || echo "fault sweep: FAILED (the points are listed above)"
if [ "${OKTO_CI_SANITIZE:-1}" != 0 ]; then
    [ "$san_ok" = 1 ] && echo "sanitizers: clean" || echo "sanitizers: FAILED (see their reports above)"
fi
if [ "$py_ok" = 1 ]; then
    echo "python tests: passed"
else
    echo "python tests: FAILED (pytest's report is above)"
fi
[ "$suite_ok" = 1 ] && [ "$leak_ok" = 1 ] && [ "$sweep_ok" = 1 ] && [ "$san_ok" = 1 ] && [ "$py_ok" = 1 ]
