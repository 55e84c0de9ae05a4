#!/usr/bin/env bash
# tests/test_probe.sh PROBE: checks okto-probe as a user meets it: the text listing, --json (it
# parses and has the documented fields, consistent with the text), two devices with
# POCL_DEVICES="pthread pthread", the one-line error and exit 1 without any OpenCL platform,
# exit 2 on an unknown flag, --help. Exits 77 (skipped) when the machine has no OpenCL device.
set -euo pipefail

probe=${1:?usage: test_probe.sh path/to/okto-probe}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

pass() { echo "ok:   $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME ARGS...: runs the probe, keeps stdout, stderr and the exit status in $tmp/NAME.*
run() {
    local name=$1
    shift
    set +e
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.rc"
    set -e
}
rc() { cat "$tmp/$1.rc"; }

# ---- 1. plain listing -----------------------------------------------------------------------
run plain "$probe"
if [ "$(rc plain)" = 1 ] && grep -qE 'no OpenCL|but no device' "$tmp/plain.err"; then
    echo "skipped: no OpenCL device on this machine: $(cat "$tmp/plain.err")"
    exit 77
fi
if [ "$(rc plain)" = 0 ]; then pass "okto-probe exits 0"; else fail "okto-probe exits $(rc plain)"; fi
ndev=$(grep -c '^\[[0-9]*\] ' "$tmp/plain.out" || true)
if [ "$ndev" -ge 1 ]; then pass "text lists $ndev device(s)"; else fail "text lists no device"; fi
if [ "$(grep -c '(default)$' "$tmp/plain.out" || true)" = 1 ]; then
    pass "text marks exactly one default device"
else
    fail "text does not mark exactly one default device"
fi
missing=0
for field in platform vendor type OpenCL 'compute units' 'max clock' 'global memory' \
    'max allocation' out-of-order sub-devices 'command buffer' 'okto lanes'; do
    if [ "$(grep -c "^    $field " "$tmp/plain.out" || true)" != "$ndev" ]; then
        fail "text lacks a '$field' line for some device"
        missing=1
    fi
done
if [ "$missing" = 0 ]; then pass "text has every property line for every device"; fi
if [ -s "$tmp/plain.err" ]; then fail "stderr not empty: $(cat "$tmp/plain.err")"; fi

# ---- 2. --json: parses, documented fields and types, matches the text ----------------------
run json "$probe" --json
if [ "$(rc json)" = 0 ]; then pass "--json exits 0"; else fail "--json exits $(rc json)"; fi
if python3 - "$tmp/json.out" "$tmp/plain.out" <<'EOF'; then
import json, re, sys

doc = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

check(isinstance(doc.get("okto_version"), str) and re.fullmatch(r"\d+\.\d+\.\d+", doc["okto_version"]),
      "okto_version is a x.y.z string")
devs = doc.get("devices")
check(isinstance(devs, list) and len(devs) >= 1, "devices is a non-empty list")
fields = {
    "index": int, "platform": str, "name": str, "vendor": str, "type": str,
    "opencl_version": str, "compute_units": int, "max_clock_mhz": int,
    "global_mem_bytes": int, "max_alloc_bytes": int, "out_of_order": bool,
    "partition": list, "command_buffer": bool, "lanes": dict, "default": bool,
}
for i, d in enumerate(devs or []):
    for key, typ in fields.items():
        v = d.get(key)
        # bool is a subclass of int in Python: an int field must not be a bool
        check(isinstance(v, typ) and (typ is bool or not isinstance(v, bool)),
              f"device {i}: {key} is a {typ.__name__} (got {v!r})")
    check(d.get("index") == i, f"device {i}: index is {i}")
    check(d.get("name", "") != "", f"device {i}: name not empty")
    check(re.fullmatch(r"(CPU|GPU|ACCELERATOR|CUSTOM|DEFAULT)(\|(CPU|GPU|ACCELERATOR|CUSTOM|DEFAULT))*",
                       str(d.get("type"))) is not None, f"device {i}: type is a known type")
    check(re.fullmatch(r"\d+\.\d+|unknown", str(d.get("opencl_version"))) is not None,
          f"device {i}: opencl_version looks like 1.2 or 3.0")
    check(d.get("compute_units", 0) >= 1, f"device {i}: compute_units >= 1")
    check(d.get("global_mem_bytes", 0) > 0, f"device {i}: global_mem_bytes > 0")
    check(0 < d.get("max_alloc_bytes", 0) <= d.get("global_mem_bytes", 0),
          f"device {i}: 0 < max_alloc_bytes <= global_mem_bytes")
    part = d.get("partition") or []
    check(all(p in ("equally", "by_counts", "by_affinity_domain") for p in part),
          f"device {i}: partition holds only known kinds ({part})")
    lanes = d.get("lanes") or {}
    check(isinstance(lanes.get("compute"), int) and 1 <= lanes["compute"] <= 64,
          f"device {i}: lanes.compute in 1..64")
    check(isinstance(lanes.get("copy"), int) and 0 <= lanes["copy"] <= 4,
          f"device {i}: lanes.copy in 0..4")
    # the text shows the same device the same way
    head = f"[{i}] {d.get('name')}" + ("  (default)" if d.get("default") else "")
    check(head in text.splitlines(), f"device {i}: text has the line {head!r}")
    check(f"{lanes.get('compute')} compute + {lanes.get('copy')} copy" in text,
          f"device {i}: text shows the same lanes")
check(sum(1 for d in devs or [] if d.get("default") is True) == 1, "exactly one default device")
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
EOF
    pass "--json parses and has the documented fields, matching the text"
else
    fail "--json output (above) does not match the documented fields"
fi

# ---- 3. two PoCL devices ---------------------------------------------------------------------
if grep -q 'platform        Portable Computing Language' "$tmp/plain.out"; then
    run two env POCL_DEVICES="pthread pthread" "$probe" --json
    if [ "$(rc two)" = 0 ] && python3 -c '
import json, sys
devs = json.load(open(sys.argv[1]))["devices"]
pocl = [d for d in devs if d["platform"] == "Portable Computing Language"]
assert len(pocl) == 2, f"{len(pocl)} PoCL devices"
assert [d["index"] for d in devs] == list(range(len(devs)))
assert sum(d["default"] for d in devs) == 1
' "$tmp/two.out"; then
        pass "POCL_DEVICES=\"pthread pthread\" lists two PoCL devices"
    else
        fail "POCL_DEVICES=\"pthread pthread\" does not list two PoCL devices"
    fi
    run twotext env POCL_DEVICES="pthread pthread" "$probe"
    if grep -q '^\[1\] ' "$tmp/twotext.out"; then pass "text lists device [1] too"; else fail "text lacks [1]"; fi
else
    echo "skip: no PoCL platform, the two-device check needs POCL_DEVICES"
fi

# ---- 4. no OpenCL platform -----------------------------------------------------------------
mkdir "$tmp/no-vendors"
for mode in "" --json; do
    run none env OCL_ICD_VENDORS="$tmp/no-vendors" "$probe" $mode
    lines=$(wc -l <"$tmp/none.err")
    if [ "$(rc none)" = 1 ] && [ "$lines" = 1 ] && [ ! -s "$tmp/none.out" ] &&
        grep -q 'pocl-opencl-icd' "$tmp/none.err"; then
        pass "no platform ${mode:+($mode) }exits 1 with one line: $(cat "$tmp/none.err")"
    else
        fail "no platform ${mode:+($mode) }: exit $(rc none), $lines stderr line(s): $(cat "$tmp/none.err")"
    fi
done

# ---- 5. command line -------------------------------------------------------------------------
run bad "$probe" --no-such-flag
if [ "$(rc bad)" = 2 ] && grep -q '^usage: okto-probe' "$tmp/bad.err" && [ ! -s "$tmp/bad.out" ]; then
    pass "unknown flag exits 2 with usage on stderr"
else
    fail "unknown flag: exit $(rc bad)"
fi
run help "$probe" --help
if [ "$(rc help)" = 0 ] && grep -q '^usage: okto-probe' "$tmp/help.out" && grep -q -- '--json' "$tmp/help.out"; then
    pass "--help exits 0 with usage on stdout"
else
    fail "--help: exit $(rc help)"
fi

# ---- the host lane: listed in both forms; OKTO_HOST_LANE=0 says it is off ---------------------
if grep -q '^    host lane       ' "$tmp/plain.out" &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["devices"]; assert all(isinstance(x["host_lane"]["threads"], int) and x["host_lane"]["what"] for x in d)' "$tmp/json.out"; then
    pass "the host lane is listed (text and --json)"
else
    fail "the host lane is not listed in the text or in --json"
fi
run nohost env OKTO_HOST_LANE=0 "$probe"
if grep -qE '^    host lane       (off: OKTO_HOST_LANE=0|none: )' "$tmp/nohost.out"; then
    pass "OKTO_HOST_LANE=0: the probe says the host lane is off"
else
    fail "OKTO_HOST_LANE=0: the probe does not say the host lane is off"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all okto-probe checks passed"
