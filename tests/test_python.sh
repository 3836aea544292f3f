#!/usr/bin/env bash
# The Python package as a user installs it: pip installs a copy of python/ into a fresh virtual environment
# (with Debian's numpy, scikit-learn, onnx and torch visible; offline, without build isolation), shipping this
# build's libveil.so; then pytest runs the package's suite against the installed package, not the source.
# usage: test_python.sh BUILD_DIR SOURCE_DIR [PYTEST ARGS...]
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
shift 2
venv=$build/python-venv
stamp=$venv/.installed-from
lock=$build/.python-install.lock
# one installation per build, shared by the test entries that run at once (flock: the first installs)
exec 9>"$lock"
flock 9
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(stat -c %Y "$build/libveil.so")" ] \
   || [ -n "$(find "$src/python/veil" "$src/python/setup.py" "$src/include" -newer "$stamp" -print -quit)" ]; then
  rm -rf "$venv" "$build/python-pkg"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  mkdir "$build/python-pkg"  # the package's sources only: never a stale build/ or egg-info of an earlier pip run
  (cd "$src/python" && cp -r pyproject.toml setup.py README.md veil "$build/python-pkg/")
  find "$build/python-pkg" -name __pycache__ -prune -exec rm -rf {} +
  (cd "$build/python-pkg" && VEIL_SOURCE_DIR=$src VEIL_LIBRARY=$build/libveil.so \
     "$venv/bin/pip" install --no-build-isolation --no-index --no-deps -q .)
  stat -c %Y "$build/libveil.so" > "$stamp"
fi
flock -u 9
args=()
for a in "$@"; do if [ -e "$a" ]; then args+=("$(realpath "$a")"); else args+=("$a"); fi; done
cd "$build"  # python -m puts the working folder on sys.path: not the source's, whose python/veil is not built
export VEIL_CLI=$build/veil VEIL_SOURCE_DIR=$src
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider --tb=short --import-mode=importlib "${args[@]}"
