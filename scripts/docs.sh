#!/bin/sh
# Build the reference pages of docs/ as HTML (build/docs/html) and as man pages
# (build/docs/man: section 1 for the commands, 7 for the backends), with every
# Sphinx warning an error, so that a broken page fails CI.
set -eu
cd "$(dirname "$0")/.."
.venv/bin/python -m sphinx -W -q -b html docs build/docs/html
.venv/bin/python -m sphinx -W -q -b man docs build/docs/man
ls build/docs/man
