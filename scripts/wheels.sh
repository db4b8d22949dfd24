#!/bin/sh
# Build what a packager ships and prove it installs and runs on its own.
#
# 1. `python -m build` makes an sdist and a wheel of each distribution (the core
#    with its stdlib backend, tlsc-openssl, tlsc-tlslite) into build/dist/.
# 2. The wheels of their dependencies are fetched into the same wheelhouse
#    (build/wheelhouse/), which then holds everything an install needs.
# 3. A fresh virtual environment gets the three distributions from that
#    wheelhouse only (no index, no editable install), so a file missing from a
#    wheel shows up here, not on a user's machine.
# 4. Smoke test with that environment alone: --list-backends lists every
#    backend, and the demo (tlsc against openssl s_server, then tlsclient to
#    tlsd under tcpserver) runs once per backend.
#
# Usage: sh scripts/wheels.sh   (after scripts/install.sh, which brings `build`)
set -eu
cd "$(dirname "$0")/.."
top=$PWD
py=$top/.venv/bin/python
dist=$top/build/dist
house=$top/build/wheelhouse
rm -rf "$dist" "$house"
mkdir -p "$dist" "$house"
for d in . backends/openssl backends/tlslite; do
  "$py" -m build -q --outdir "$dist" "$d" >/dev/null
done
ls "$dist"
cp "$dist"/*.whl "$house"/
"$py" -m pip download -q -d "$house" "$dist"/*.whl 2>&1 | grep -v "^WARNING: Location" || true

venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT INT TERM
python3 -m venv "$venv"
"$venv/bin/pip" install -q --no-index --find-links "$house" tlsc tlsc-openssl tlsc-tlslite
# Nothing of the source tree may be importable by accident.
cd "$(dirname "$venv")"
"$venv/bin/tlsc" --version
"$venv/bin/tlsc" --list-backends | tee backends.txt
for b in openssl tlslite stdlib; do
  grep -q "^$b " backends.txt || { echo "wheels: backend $b missing from the wheel install" >&2; exit 1; }
done
for b in openssl tlslite stdlib; do
  echo "== demo, backend $b"
  TLSC_BACKEND=$b DEMO_VENV=$venv bash "$top/scripts/demo.sh"
done
echo "wheels: OK"
