#!/usr/bin/env bash
# tools/setup.sh: installs the Debian/Ubuntu packages okto needs to build, test and benchmark.
# Idempotent and quick when everything is there: it asks dpkg first and runs apt-get (update,
# then install) only for what is missing. Uses sudo when not run as root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
    gcc libc6-dev          # C11 compiler (build-essential's part that okto needs)
    pkg-config meson ninja-build python3
    ocl-icd-opencl-dev opencl-headers   # OpenCL ICD loader and headers
    pocl-opencl-icd                     # an OpenCL driver for CPUs (the CI device)
    libclblast-dev                      # GEMM and BLAS kernels
    libcmocka-dev                       # the test suite
    clinfo                              # to see what OpenCL finds
    libopenblas-dev                     # okto-bench's CPU baseline
    valgrind                            # the leak check in tools/test.sh
    zlib1g-dev                          # okto_trainutil reads gzip data (tools/train)
    python3-sklearn                     # the 8x8 digits CSV okto-train learns (pulls numpy,
                                        # which the safetensors interop test reads with)
    python3-venv python3-dev            # the Python package: its venv (tools/test.sh) and
                                        # Python.h for its extension
    clang libclang-rt-14-dev llvm-14    # tools/sanitize.sh (ASan, UBSan, TSan; llvm-symbolizer)
    libopenmpi-dev openmpi-bin          # data-parallel okto-train (Meson feature mpi) and its
                                        # test under mpirun
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#packages[@]} packages are installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing packages (${missing[*]}) and no apt-get; install them by hand" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "setup: missing packages (${missing[*]}); run as root or install sudo" >&2
        exit 1
    fi
    sudo=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
