#!/usr/bin/env bash
# The main job on the bundled examples: set up (scripts/setup.sh), then compile each
# example domain with its profile into examples/out/, print each result, and check
# every result with libvirt itself (RelaxNG schema + the embedded QEMU driver).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
mkdir -p examples/out
compile() {  # compile NAME DOMAIN PROFILE
    echo "== virtuned compile $2 -p $3" >&2
    .venv/bin/virtuned compile "$2" -p "$3" -o "examples/out/$1.xml"
    cat "examples/out/$1.xml"
}
compile web-server examples/domains/web-server.xml examples/profiles/server.vt
compile legacy-guest examples/domains/legacy-guest.xml examples/profiles/legacy.vt
echo "== virtuned compile -t 'video qxl' -t 'guest agent' (no input domain)" >&2
.venv/bin/virtuned compile -t 'video qxl' -t 'guest agent' -o examples/out/from-scratch.xml
cat examples/out/from-scratch.xml
# Host-aware: an NFV guest placed on the bundled 2-node SMT host, CPUs 0 and 8 kept
# for the host OS, its passed-through NIC on host node 1; then what it needs of any
# host (phase one) and which of the bundled hosts it fits.
NFV=(examples/domains/nfv-guest.xml -p nfv -t 'guest numa nodes 2')
HOST=(--reserved-cpus 0,8 --device-node 0000:3b:00.0=1)
echo "== virtuned compile ${NFV[*]} ${HOST[*]} --host examples/hosts/two-node-smt.xml" >&2
.venv/bin/virtuned compile "${NFV[@]}" "${HOST[@]}" --host examples/hosts/two-node-smt.xml \
    -o examples/out/nfv-guest.xml
cat examples/out/nfv-guest.xml
echo "== virtuned plan ${NFV[*]}" >&2
.venv/bin/virtuned plan "${NFV[@]}" > examples/out/nfv-plan.json
cat examples/out/nfv-plan.json
echo "== virtuned fit ${NFV[*]} ${HOST[*]} --hosts examples/hosts/*.xml" >&2
.venv/bin/virtuned fit "${NFV[@]}" "${HOST[@]}" --hosts examples/hosts/*.xml \
    > examples/out/nfv-fit.json
cat examples/out/nfv-fit.json
echo "== libvirt's verdict" >&2
/usr/bin/python3 -I tests/libvirt_checker.py examples/out/*.xml > examples/out/libvirt.json || true
/usr/bin/python3 - examples/out/libvirt.json <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    notes = "".join(f" ({note})" for note in r.get("notes", []))
    print(f"{r['file']}: schema {r['rng']}, QEMU driver {r['qemu']}{notes}")
    for error in (r["rng_error"], r["qemu_error"]):
        if error:
            print("    " + error)
sys.exit(any(r["rng"] != "PASS" or r["qemu"] != "PASS" for r in results))
PY
