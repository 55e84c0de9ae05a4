#!/usr/bin/env bash
# tests/test_trainutil_safetensors.sh INTEROP SCRIPT MODE [PYTHON...]: safetensors interop.
# MODE numpy: the C writer's file read back with numpy alone (a reader of ~15 lines).
# MODE lib:   the same file read with the `safetensors` package, and one it writes read by C.
# Uses the first PYTHON (then python3 on PATH, then /usr/bin/python3) that has what MODE
# needs: Debian's python3-numpy often lives only in /usr/bin/python3 while PATH finds another
# interpreter first. Exits 77 (skipped) when none has it.
set -euo pipefail
interop=$1 script=$2 mode=$3
shift 3

case $mode in
numpy) need="import numpy" ;;
lib) need="import numpy, safetensors.numpy" ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
py=
for cand in "$@" python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "$need" >/dev/null 2>&1; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "no python3 with '$need': skipped"
    exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$interop" write "$dir/c.safetensors"
case $mode in
numpy) "$py" "$script" numpy "$dir/c.safetensors" ;;
lib)
    "$py" "$script" lib "$dir/c.safetensors" "$dir/py.safetensors"
    "$interop" check "$dir/py.safetensors"
    ;;
esac
