#!/usr/bin/env bash
# tools/gen-ops-md.sh: regenerates docs/ops.md, the op-support table, from what tests/test_ops.c
# checks (it writes the table only when every row passed). Needs a build in build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ninja -C build tests/test_ops >/dev/null
# the device path's errors (the host lane's BLAS sums matmuls in another order)
OKTO_HOST_LANE=0 OKTO_LOG=error build/tests/test_ops --write-docs docs/ops.md >/dev/null
echo "docs/ops.md written"
