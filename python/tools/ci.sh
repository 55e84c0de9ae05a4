#!/usr/bin/env bash
# python/tools/ci.sh: builds and tests the okto Python package as CI does (tools/test.sh calls
# it): a virtual environment in build/venv (made once, then reused), `pip install ./python`
# into it (meson-python compiles this checkout's library into the extension), pytest, numpy
# and, when PyPI has a wheel for this machine, pyopencl (its interop tests skip without it);
# then pytest over python/tests, whose result line ends the output.
# Uses Debian's /usr/bin/python3 (tools/setup.sh installs python3-venv and python3-dev) where
# it exists, so CI does not depend on any other Python being on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

py=${OKTO_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3
venv=build/venv
if [ ! -x "$venv/bin/python" ]; then
    echo "python: creating $venv with $("$py" --version 2>&1) ($py)"
    "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
t0=$(date +%s)
"${pip[@]}" install -q pytest numpy
# a wheel only: building pyopencl from source needs more than this project installs
if ! "${pip[@]}" install -q --only-binary=:all: pyopencl; then
    echo "python: no pyopencl wheel here; its interop tests will be skipped"
fi
# --force-reinstall: the version does not change between commits, the code does
"${pip[@]}" install -q --force-reinstall --no-deps ./python
"${pip[@]}" install -q ./python # its dependencies (cffi, numpy), if missing
echo "python: okto $("$venv/bin/python" -c 'import okto; print(okto.__version__)') installed" \
    "in $(($(date +%s) - t0)) s; pyopencl" \
    "$("$venv/bin/python" -c 'import pyopencl; print(pyopencl.VERSION_TEXT)' 2>/dev/null ||
        echo absent)"
# from python/tests' parent, so the installed package is what gets imported
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests "$@"
