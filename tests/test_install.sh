#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds the README's first program with the README's own
# commands (pkg-config: libveil.a linked in, and libveil.so), as a user of the installed library would, and
# runs both.
set -euo pipefail
build_dir=$1
src_dir=$(cd "$2" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
for f in bin/veil bin/veil-bench include/veil/veil.h include/veil/core.h include/veil/ring.h \
         lib/libveil.a lib/libveil.so lib/pkgconfig/veil.pc lib/pkgconfig/veil-static.pc share/man/man1/veil.1; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# the README's program and its build commands, as written there
mkdir "$prefix/user" && cd "$prefix/user"
awk '/^```c$/ { f = 1; next } /^```$/ { f = 0 } f' "$src_dir/README.md" >first.c
grep -q "veil_poly_mul" first.c || { echo "the README's first program was not found"; exit 1; }
static_cmd=$(grep -o 'cc first\.c \$(pkg-config [^`]*veil-static)' "$src_dir/README.md")
shared_cmd=$(grep -o 'cc first\.c \$(pkg-config --cflags --libs veil)[^`]*' "$src_dir/README.md")
[ -n "$static_cmd" ] && [ -n "$shared_cmd" ] || { echo "the README's build commands were not found"; exit 1; }
eval "$static_cmd -o first_static"
eval "$shared_cmd -o first_shared"
# libveil.a is in the first, libveil.so only in the second's needs
if readelf -d first_static | grep -q 'libveil'; then echo "the static build needs libveil.so"; exit 1; fi
readelf -d first_shared | grep -q 'libveil\.so' || { echo "the shared build does not use libveil.so"; exit 1; }
[ "$(./first_static)" = 1 ] || { echo "static example failed"; exit 1; }
[ "$(./first_shared)" = 1 ] || { echo "shared example failed"; exit 1; }
# everything libveil.a calls is in veil-static.pc: no undefined symbol left at the link above; and veil.pc
# lists the same private libraries for users who pass the archive themselves
cc first.c $(pkg-config --cflags veil) "$prefix/lib/libveil.a" $(pkg-config --libs --static veil | sed 's/-lveil//') \
  -o first_archive
[ "$(./first_archive)" = 1 ] || { echo "archive example failed"; exit 1; }
# the installed libveil.so exports the API only (tests/test_exports.py checks the whole set): no internal
# function, no symbol of the generated protobuf code
exported=$(nm -D --defined-only "$prefix/lib/libveil.so" | awk '{ print $NF }')
grep -qx 'veil_poly_mul' <<<"$exported" || { echo "libveil.so does not export veil_poly_mul"; exit 1; }
if grep -E -x 'veil_fail|veil_alloc_scratch|onnx__.*' <<<"$exported"; then echo "libveil.so exports internals"; exit 1; fi
"$prefix/bin/veil" --version
echo "install test: ok"
