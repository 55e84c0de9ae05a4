#!/usr/bin/env bash
# tools/gpu-kit-verify.sh: checks the GPU kit without a GPU, the way the GPU machine will meet
# it: in a bare Debian 12 (debootstrap --variant=minbase, cached in _kit-chroot/, ignored by git)
# that has python3 and PoCL but none of okto's build packages (no ocl-icd, no CLBlast, no
# cmocka, no OpenBLAS), with the kit mounted read-only at another path than it was built at.
# There it checks that ldd resolves the kit's binaries to the kit's own libOpenCL and libclblast,
# then runs gpu-check.sh five times (results under _kit-verify/RUN/):
#   nodriver  the default driver (NVIDIA), absent here: must exit 3 saying where it looked
#   pocl      OKTO_KIT_ICD=pocl, OKTO_CHECK_QUICK=1: every step and test must pass (torch skips)
#   nvlayout  the default driver again, with PoCL standing in for NVIDIA's as
#             /usr/local/nvidia/lib64/libnvidia-opencl.so.1 (where NVIDIA's container toolkit
#             puts it, outside the linker's paths): the search must find it and all must pass
#   glibc     the same on the kit's own glibc (OKTO_KIT_GLIBC=bundled): the fallback for a
#             machine whose glibc is older than the kit needs
#   bounds    the GPU sizes on this CPU under OKTO_CHECK_BUDGET=150: must end within the budget
#             (plus 15 s: the last step's grace before KILL, the summary) with every step
#             recorded, however many time out
# Needs root (debootstrap, chroot, mounts); unmounts on exit. The first run downloads the
# chroot (about 900 MB unpacked); later runs reuse it. OKTO_KIT_CHROOT, OKTO_KIT_VERIFY_OUT and
# OKTO_KIT_MIRROR override the chroot folder, the results folder and the Debian mirror (by
# default the one apt uses here).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
croot=${OKTO_KIT_CHROOT:-$repo/_kit-chroot}
results=${OKTO_KIT_VERIFY_OUT:-$repo/_kit-verify}
kit=$repo/gpu-kit
packages=python3,pocl-opencl-icd
want_stamp="bookworm minbase $packages"

if [ "$(id -u)" -ne 0 ]; then
    echo "gpu-kit-verify: needs root (debootstrap, chroot, mount)" >&2
    exit 1
fi

mounts=()
fake_nv=$croot/usr/local/nvidia
cleanup() {
    local i
    rm -rf "$fake_nv"
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
    done
    mounts=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# unmount whatever an interrupted run left under the chroot
leftovers() { awk -v r="$(readlink -f "$croot")/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r; }
if [ -d "$croot" ]; then
    for m in $(leftovers); do umount "$m" 2>/dev/null || umount -l "$m"; done
fi
rm -rf "$fake_nv" # a stand-in NVIDIA driver left by an interrupted run

# ---- the bare Debian -----------------------------------------------------------------------
mirror_from_apt() { # the Debian mirror apt uses for bookworm here
    local m=
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        m=$(awk 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; ok = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
                  if ($i ~ /^Suites:/) { n = split($i, b, " "); for (j = 2; j <= n; j++) if (b[j] == "bookworm") ok = 1 }
              }
              if (ok && uri != "") { print uri; exit } }' /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$m" ]; then
        m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            grep -E '^deb ' | grep -oE 'https?://[^ ]+ bookworm( |$)' | head -n 1 | cut -d' ' -f1)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}
if [ "$(cat "$croot/etc/okto-kit-chroot" 2>/dev/null)" != "$want_stamp" ]; then
    command -v debootstrap >/dev/null 2>&1 ||
        env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    mirror=${OKTO_KIT_MIRROR:-$(mirror_from_apt)}
    echo "gpu-kit-verify: creating the bare Debian in $croot from $mirror (minutes, once)"
    rm -rf "$croot.tmp"
    mkdir -p "$results"
    nice debootstrap --variant=minbase --include="$packages" bookworm "$croot.tmp" "$mirror" \
        >"$results/debootstrap.log" 2>&1 || {
        tail -n 20 "$results/debootstrap.log" >&2
        exit 1
    }
    rm -rf "$croot"
    mv "$croot.tmp" "$croot"
    echo "$want_stamp" >"$croot/etc/okto-kit-chroot"
fi
# what the GPU machine lacks must be absent here too, or the kit's copies prove nothing
for pkg in ocl-icd-libopencl1 libclblast1 libcmocka0 libopenblas0 libopenblas0-pthread; do
    if chroot "$croot" dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
        echo "gpu-kit-verify: removing $pkg from the bare Debian"
        chroot "$croot" dpkg --purge --force-depends "$pkg" >/dev/null
    fi
done
stray=$(find "$croot"/usr/lib "$croot"/lib* -name 'libOpenCL.so*' -o -name 'libclblast.so*' \
    -o -name 'libcmocka.so*' -o -name 'libopenblas*.so*' 2>/dev/null || true)
if [ -n "$stray" ]; then
    echo "gpu-kit-verify: the bare Debian has libraries the kit must bring itself:" >&2
    echo "$stray" >&2
    exit 1
fi

# ---- the kit, read-only at another path ----------------------------------------------------------
"$repo/tools/gpu-kit.sh" "$kit" | tail -n 2
mkdir -p "$croot/opt/gpu-kit" "$croot/out"
for m in proc sys dev dev/shm; do
    mount --bind "/$m" "$croot/$m"
    mounts+=("$croot/$m")
done
mount --bind "$kit" "$croot/opt/gpu-kit"
mounts+=("$croot/opt/gpu-kit")
mount -o remount,bind,ro "$croot/opt/gpu-kit"
in_chroot() { chroot "$croot" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp "$@"; }

fails=0
pass() { echo "ok:   $*"; }
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

echo
echo "== ldd in the bare Debian"
for exe in bin/okto-probe bin/okto-bench bin/okto-train bin/cl-probe tests/test_matmul; do
    deps=$(in_chroot ldd "/opt/gpu-kit/$exe" 2>&1)
    ocl=$(awk '$1 == "libOpenCL.so.1" { print $3 }' <<<"$deps")
    blas=$(awk '$1 == "libclblast.so.1" { print $3 }' <<<"$deps")
    [ "$exe" != bin/cl-probe ] || blas="/opt/gpu-kit/ (cl-probe is raw OpenCL: no CLBlast)"
    if grep -q 'not found' <<<"$deps"; then
        fail "$exe: $(grep 'not found' <<<"$deps" | tr -s ' \t\n' ' ')"
    elif [ "${ocl#/opt/gpu-kit/}" = "$ocl" ] || [ "${blas#/opt/gpu-kit/}" = "$blas" ]; then
        fail "$exe: libOpenCL.so.1 => '${ocl:-nothing}', libclblast.so.1 => '${blas:-nothing}'"
    else
        pass "$exe: libOpenCL.so.1 => $ocl, libclblast.so.1 => $blas"
    fi
done
# a libOpenCL on LD_LIBRARY_PATH (CUDA's, say) must not replace the kit's: DT_RPATH wins
ocl=$(in_chroot LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu ldd /opt/gpu-kit/bin/okto-probe |
    awk '$1 == "libOpenCL.so.1" { print $3 }')
case $ocl in
/opt/gpu-kit/*) pass "with LD_LIBRARY_PATH set, libOpenCL.so.1 is still the kit's ($ocl)" ;;
*) fail "with LD_LIBRARY_PATH set, libOpenCL.so.1 => $ocl" ;;
esac

# run NAME EXPECTED_STATUS VAR=VALUE...: gpu-check.sh in the chroot; results in $results/NAME
run() {
    local name=$1 want=$2 t0 rc
    shift 2
    rm -rf "$croot/out/$name"
    echo
    echo "== gpu-check.sh: $name ($*)"
    t0=$(date +%s)
    set +e
    in_chroot OUT="/out/$name" "$@" /opt/gpu-kit/gpu-check.sh >"$croot/out/$name.log" 2>&1
    rc=$?
    set -e
    last_secs=$(($(date +%s) - t0))
    rm -rf "${results:?}/$name"
    mkdir -p "$results"
    cp -r "$croot/out/$name" "$results/$name" 2>/dev/null || mkdir -p "$results/$name"
    cp "$croot/out/$name.log" "$results/$name/console.log"
    sed -n '/^== summary/,$p' "$results/$name/console.log"
    if [ "$rc" = "$want" ]; then
        pass "$name: exit status $rc in $last_secs s"
    else
        fail "$name: exit status $rc (wanted $want) in $last_secs s; see $results/$name/console.log"
        tail -n 30 "$results/$name/console.log"
    fi
    return 0
}

run nodriver 3
if grep -q 'no OpenCL driver found' "$results/nodriver/console.log" &&
    grep -q 'looked for libnvidia-opencl.so\*' "$results/nodriver/console.log" &&
    grep -q '/usr/local/nvidia/lib64' "$results/nodriver/console.log"; then
    pass "nodriver: says it found no driver and where it looked"
    sed -n '/no OpenCL driver found/,/another driver/p' "$results/nodriver/console.log" | sed 's/^/      | /'
else
    fail "nodriver: no clear message"
fi

run pocl 0 OKTO_KIT_ICD=pocl OKTO_CHECK_QUICK=1

mkdir -p "$fake_nv/lib64"
ln -s /usr/lib/x86_64-linux-gnu/libpocl.so.2 "$fake_nv/lib64/libnvidia-opencl.so.1"
run nvlayout 0 OKTO_CHECK_QUICK=1
rm -rf "$fake_nv"
if grep -q '"how": "found /usr/local/nvidia/lib64/libnvidia-opencl.so.1"' \
    "$results/nvlayout/driver.json" 2>/dev/null; then
    pass "nvlayout: found the driver in /usr/local/nvidia/lib64 and used it by absolute path"
else
    fail "nvlayout: did not find the driver in /usr/local/nvidia/lib64"
fi
run glibc 0 OKTO_KIT_ICD=pocl OKTO_CHECK_QUICK=1 OKTO_KIT_GLIBC=bundled
if grep -q 'kit runs with glibc: bundled' "$results/glibc/console.log"; then
    pass "glibc: ran on the kit's own glibc"
else
    fail "glibc: did not run on the kit's glibc"
fi

run bounds 1 OKTO_KIT_ICD=pocl OKTO_CHECK_BUDGET=150
if [ "$last_secs" -le 165 ] && [ -f "$results/bounds/summary.json" ] &&
    python3 - "$results/bounds/summary.json" <<'EOF'; then
import json, sys
steps = [s["step"] for s in json.load(open(sys.argv[1]))["steps"]]
want = ["driver", "probe", "tests", "latency", "overlap", "bench", "bigemm", "torch"]
sys.exit(0 if steps == want else "steps recorded: %s" % steps)
EOF
    pass "bounds: ended in $last_secs s (budget 150) with every step recorded"
else
    fail "bounds: took $last_secs s (budget 150) or lost a step"
fi

cleanup
echo
if [ $fails = 0 ]; then
    echo "gpu-kit-verify: all checks passed; results in $results"
else
    echo "gpu-kit-verify: $fails check(s) failed; results in $results"
    exit 1
fi
