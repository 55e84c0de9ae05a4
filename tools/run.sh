#!/usr/bin/env bash
# tools/run.sh: the main job on a fresh Debian 12 machine: installs what is missing, builds into
# build/, then runs okto-probe (what OpenCL devices okto sees), okto-bench --quick (multi-lane
# okto against the one-queue baseline) and okto-train (the training demo: the digits CNN). Idempotent; works
# from any directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools/setup.sh

if [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build
else
    meson setup build
fi
ninja -C build

echo
echo "== okto-probe"
build/tools/okto-probe
echo
echo "== okto-bench --quick"
build/tools/okto-bench --quick
echo
echo "== okto-train"
build/tools/okto-train
