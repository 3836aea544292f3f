#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs the README's example against it with
# pkg-config, statically and dynamically, as a user of the installed library would.
set -euo pipefail
build_dir=$1
src_dir=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
for f in bin/veil bin/veil-bench include/veil/veil.h include/veil/core.h include/veil/ring.h \
         lib/libveil.a lib/libveil.so lib/pkgconfig/veil.pc; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# static: the archive itself, with the private dependencies that pkg-config lists for static linking
cc "$src_dir/examples/first_ring.c" $(pkg-config --cflags veil) "$prefix/lib/libveil.a" \
  $(pkg-config --libs --static veil | sed 's/-lveil//') -o "$prefix/first_static"
cc "$src_dir/examples/first_ring.c" $(pkg-config --cflags --libs veil) -Wl,-rpath,"$prefix/lib" -o "$prefix/first_shared"
[ "$("$prefix/first_static")" = 1 ] || { echo "static example failed"; exit 1; }
[ "$("$prefix/first_shared")" = 1 ] || { echo "shared example failed"; exit 1; }
"$prefix/bin/veil" --version
echo "install test: ok"
