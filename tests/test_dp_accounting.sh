#!/usr/bin/env bash
# Veil's privacy accountant (veil budget, the zCDP composition and its conversion to (epsilon, delta)) against
# an independent implementation: Google's dp-accounting from PyPI, pinned, installed once by pip into a
# virtual environment in the build folder (Debian's numpy and scipy from the system). Usage:
#   test_dp_accounting.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
venv=$build/dp-accounting-venv
version=0.6.0
if [ ! -f "$venv/.installed-$version" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "dp-accounting==$version"
  touch "$venv/.installed-$version"
fi
exec "$venv/bin/python" "$src/tests/dp_accounting_check.py" "$build/veil"
