#!/usr/bin/env bash
# tools/gpu-kit.sh [KIT_DIR]: builds the GPU kit, a self-contained folder (default gpu-kit/ at
# the repository root, ignored by git) that runs okto's checks on a machine with a GPU driver
# but no package access: okto built for release (build-kit/, apart from the main build/), its
# test executables, okto-probe, okto-bench, okto-train and cl-probe, the OpenCL ICD loader,
# CLBlast and every other library they need that a bare machine may lack, and gpu-check.sh,
# which runs it all there (see README, "Running on a GPU").
#
# Layout (every ELF file has an $ORIGIN-relative DT_RPATH, so the folder runs from anywhere;
# DT_RPATH rather than DT_RUNPATH so that a libOpenCL.so.1 on the machine's LD_LIBRARY_PATH,
# such as CUDA's, cannot take the kit's place):
#   bin/          okto-probe okto-bench okto-train cl-probe
#   tests/        the test executables, test_probe.sh, test_train.sh; tests.tsv lists the
#                 suite as `meson test` runs it (command, environment, timeout)
#   lib/          libokto, libOpenCL (ocl-icd), libclblast, libcmocka, OpenBLAS and theirs
#   lib/compat/   libstdc++ and libgcc_s: used only where the machine's own are missing or
#                 too old (gpu-check.sh tries the machine's first)
#   lib/glibc/    the C library the kit was built against, with its loader: used only where
#                 the machine's glibc is older than the kit needs (manifest.json says which)
#   vendors/      nvidia.icd, naming libnvidia-opencl.so.1 for the dynamic linker to find
#   gpu-check.sh  manifest.json
#
# Fails when the kit would exceed 64 MiB (what one carry to the device machine holds).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
kit=${1:-$repo/gpu-kit}
build=${OKTO_KIT_BUILD:-$repo/build-kit}
limit_bytes=$((64 * 1024 * 1024))

tools/setup.sh
for tool in patchelf:patchelf strip:binutils objdump:binutils ldd:libc-bin; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "gpu-kit: installing ${tool#*:} (for ${tool%%:*})"
        sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${tool#*:}"
    fi
done

# ---- the release build, in its own directory --------------------------------------------------
# no MPI: the GPU machine has no mpirun, and Open MPI's libraries cost 3.6 MB of the 64 MiB
if [ -f "$build/meson-private/coredata.dat" ]; then
    meson configure "$build" -Dbuildtype=release -Dtests=true -Dtools=true -Dmpi=disabled >/dev/null
else
    meson setup "$build" --buildtype=release -Dtests=true -Dtools=true -Dmpi=disabled >/dev/null
fi
nice ninja -C "$build"

# ---- copy what runs --------------------------------------------------------------------------
rm -rf "$kit"
mkdir -p "$kit"/{bin,tests,lib/compat,lib/glibc,vendors}
for exe in okto-probe okto-bench okto-train okto-conform cl-probe; do
    cp "$build/tools/$exe" "$kit/bin/"
done
for f in "$build"/examples/okto-example-*; do
    if [ -f "$f" ] && [ -x "$f" ]; then cp "$f" "$kit/bin/"; fi
done
for f in "$build"/tests/test_*; do
    if [ -f "$f" ] && [ -x "$f" ]; then cp "$f" "$kit/tests/"; fi
done
mkdir -p "$kit/tests/kernels"
for f in "$build"/tests/kernels/check_*; do
    if [ -f "$f" ] && [ -x "$f" ]; then cp "$f" "$kit/tests/kernels/"; fi
done
cp tests/test_probe.sh tests/test_train.sh "$kit/tests/"
cp -L "$build/lib/libokto.so.0" "$kit/lib/"
cp tools/gpu-check.sh "$kit/"
chmod +x "$kit/gpu-check.sh" "$kit"/tests/*.sh
printf 'libnvidia-opencl.so.1\n' >"$kit/vendors/nvidia.icd"

# Every shared library the executables load, sorted into lib/ (carried and always used),
# lib/compat/ (the C++ runtime) and lib/glibc/ (the C library), by soname.
declare -A seen=()
elves=("$kit"/bin/* "$kit/lib/libokto.so.0")
for f in "$kit"/tests/test_* "$kit"/tests/kernels/check_*; do
    case $f in *.sh) ;; *) elves+=("$f") ;; esac
done
for f in "${elves[@]}"; do
    while read -r soname path; do
        [ -n "$path" ] && [ -z "${seen[$soname]:-}" ] || continue
        seen[$soname]=$path
    done < <(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }
                               $2 == "=>" && $3 == "not" { print $1, "" }
                               $1 ~ /^\/.*ld-linux/ { n = split($1, p, "/"); print p[n], $1 }')
    if ldd "$f" | grep -q 'not found'; then
        echo "gpu-kit: $f has a library the build machine cannot find:" >&2
        ldd "$f" | grep 'not found' >&2
        exit 1
    fi
done
for soname in "${!seen[@]}"; do
    path=${seen[$soname]}
    case $soname in
    libokto.so.*) continue ;;
    ld-linux*.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | \
        libmvec.so.* | libresolv.so.*) dest=glibc ;;
    libstdc++.so.* | libgcc_s.so.*) dest=compat ;;
    *) dest= ;;
    esac
    cp -L "$path" "$kit/lib/${dest:+$dest/}$soname"
done
# A GPU driver loaded into a process that runs on the kit's glibc may need the rest of it
# (libnvidia-opencl links libpthread, libdl and librt; they are stubs since glibc 2.34).
glibc_dir=$(dirname "$(readlink -f "${seen[libc.so.6]}")")
for soname in libpthread.so.0 libdl.so.2 librt.so.1; do
    [ -e "$kit/lib/glibc/$soname" ] || [ ! -e "$glibc_dir/$soname" ] ||
        cp -L "$glibc_dir/$soname" "$kit/lib/glibc/"
done

# ---- strip and point the run paths inside the kit ----------------------------------------------
chmod u+w "$kit"/bin/* "$kit"/tests/* "$kit"/tests/kernels/* "$kit"/lib/*.so* "$kit"/lib/compat/* "$kit"/lib/glibc/*
for f in "$kit"/bin/* "$kit"/tests/test_* "$kit"/lib/*.so* "$kit"/lib/compat/*; do
    case $f in *.sh) continue ;; esac
    strip --strip-unneeded "$f"
done
for f in "$kit"/bin/* "$kit"/tests/test_*; do
    case $f in *.sh) continue ;; esac
    patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$f"
done
for f in "$kit"/tests/kernels/check_*; do
    strip --strip-unneeded "$f"
    patchelf --force-rpath --set-rpath '$ORIGIN/../../lib' "$f"
done
for f in "$kit"/lib/*.so* "$kit"/lib/compat/*; do
    patchelf --force-rpath --set-rpath '$ORIGIN' "$f"
done
# glibc is left as built: its loader finds its own libraries through --library-path.

# ---- the test list, as meson runs it, with paths inside the kit --------------------------------
# tests.tsv: name, timeout (s), environment (K=V,K=V), command (words joined by spaces; @BIN@
# and @TESTS@ stand for the kit's bin/ and tests/). meson's LD_LIBRARY_PATH is dropped: the
# kit's run paths do that job.
meson introspect "$build" --tests | python3 -c '
import json, os, sys
build, src, kit = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2]), sys.argv[3]
def kit_path(word):
    p = os.path.realpath(word) if os.path.isabs(word) else word
    for base, tag in ((os.path.join(build, "tools"), "@BIN@"), (os.path.join(build, "examples"), "@BIN@"),
                      (os.path.join(build, "tests"), "@TESTS@"),
                      (os.path.join(src, "tests"), "@TESTS@")):
        if p.startswith(base + "/"):
            inkit = os.path.join(kit, "bin" if tag == "@BIN@" else "tests") + p[len(base):]
            if not os.path.exists(inkit):
                raise LookupError(word)
            return tag + p[len(base):]
    if os.path.isabs(word):
        raise LookupError(word)
    return word
for t in json.load(sys.stdin):
    env = ",".join("%s=%s" % kv for kv in sorted(t["env"].items()) if kv[0] != "LD_LIBRARY_PATH")
    if " " in t["env"].get("POCL_DEVICES", ""):
        # the multidev suite runs on two PoCL devices of one CPU; a GPU machine has no PoCL
        print("gpu-kit: leaving out %s (it needs POCL_DEVICES=%r)" % (t["name"], t["env"]["POCL_DEVICES"]),
              file=sys.stderr)
        continue
    try:
        words = [kit_path(w) for w in t["cmd"]]
    except LookupError as e:
        # a Python interpreter, a script of tools/, the fault shim: what the kit does not
        # carry (the GPU machine runs the C suite; these tests are for the CPU machine)
        print("gpu-kit: leaving out %s (it needs %s, outside the kit)" % (t["name"], e.args[0]),
              file=sys.stderr)
        continue
    if any(c in w for w in words + [env] for c in " \t"):
        sys.exit("gpu-kit: test %s has a blank in its command or environment" % t["name"])
    print("\t".join([t["name"], str(t["timeout"]), env or "-", " ".join(words)]))
' "$build" "$repo" "$kit" >"$kit/tests/tests.tsv"
while IFS=$'\t' read -r name _ _ cmd; do
    for w in $cmd; do
        case $w in
        @BIN@/* | @TESTS@/*)
            f=${w/@BIN@/$kit/bin}
            f=${f/@TESTS@/$kit/tests}
            [ -e "$f" ] || { echo "gpu-kit: test $name needs $w, not in the kit" >&2; exit 1; }
            ;;
        esac
    done
done <"$kit/tests/tests.tsv"

# ---- manifest: what the kit holds and the oldest system it runs on natively -------------------
newest() { # newest PREFIX FILE...: the newest PREFIX_x.y symbol version the files need
    local prefix=$1
    shift
    for f in "$@"; do
        case $f in *.sh) ;; *) objdump -T "$f" ;; esac
    done | grep -o "${prefix}_[0-9][0-9.]*" | sort -uV | tail -n 1 | sed "s/^${prefix}_//"
}
glibc_needed=$(newest GLIBC "$kit"/bin/* "$kit"/tests/test_* "$kit"/lib/*.so*)
glibc_compat=$(newest GLIBC "$kit"/lib/compat/*)
glibcxx_needed=$(newest GLIBCXX "$kit"/lib/*.so*)
python3 - "$kit" "$glibc_needed" "$glibcxx_needed" "$(ldd --version | head -n 1)" \
    "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
    "$(meson introspect "$build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" \
    "$glibc_compat" <<'EOF'
import json, os, sys, time
kit, glibc, glibcxx, built_glibc, commit, version, glibc_compat = sys.argv[1:]
files = {}
for root, _, names in os.walk(kit):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, kit)] = os.path.getsize(p)
json.dump({
    "okto_version": version, "commit": commit,
    "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "built_on": built_glibc, "buildtype": "release",
    # natively: the machine's glibc and libstdc++ at least these (else lib/compat, lib/glibc)
    "needs": {"glibc": glibc, "glibcxx": glibcxx, "glibc_for_kit_libstdcxx": glibc_compat},
    "bytes": sum(files.values()), "files": dict(sorted(files.items())),
}, open(os.path.join(kit, "manifest.json"), "w"), indent=1)
EOF

bytes=$(du -sb "$kit" | cut -f1)
echo "gpu-kit: $kit: $(du -sh "$kit" | cut -f1) ($bytes bytes; limit $limit_bytes)," \
    "runs natively on glibc >= $glibc_needed with libstdc++ >= GLIBCXX_$glibcxx_needed (else on" \
    "its own), built from" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["commit"])' "$kit/manifest.json")"
if [ "$bytes" -gt "$limit_bytes" ]; then
    echo "gpu-kit: the kit is larger than 64 MiB" >&2
    exit 1
fi
echo "gpu-kit: run it with: $kit/gpu-check.sh   (OUT=DIR for the results; default ./gpu-out)"
