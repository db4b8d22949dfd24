#!/bin/sh
# Install everything tlsc, its two backends and its tests need, on a fresh
# Debian machine: the peer programs the tests talk to, and a virtual
# environment in .venv with the core and both backends (editable).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    openssl gnutls-bin ucspi-tcp stunnel4 socat procps man-db >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# editable_mode=compat: a plain path in a .pth file.  The default mode installs
# an import hook whose module imports pathlib, importlib.util and more at every
# interpreter start: ~25 ms and 2 MiB added to every tlsc run (and to the
# benchmark's figures), which an installed wheel never pays.
.venv/bin/pip install -q --config-settings editable_mode=compat \
  -e . -e backends/openssl -e backends/tlslite
.venv/bin/pip install -q -r requirements-test.txt
# Editable installs get no bytecode cache, and PYTHONDONTWRITEBYTECODE may be set:
# without this every tlsc start recompiles the core (tens of ms per connection).
# -f: compileall skips a file whose cache has the right mtime, even when the size
# differs (a file rewritten within the same second), which the import system
# still rejects: in a working tree that is being edited, such a module is
# recompiled on every start.
.venv/bin/python -m compileall -f -q tlsc tlsc_stdlib backends/openssl/tlsc_openssl backends/tlslite/tlsc_tlslite >/dev/null
echo "installed: $(.venv/bin/tlsc --version); backends:"
.venv/bin/tlsc --list-backends
