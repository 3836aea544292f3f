#!/usr/bin/env bash
# `veil info` on real files: a parameter set, a seeded compressed ciphertext, a secret key, and bad input.
set -euo pipefail
veil=$1
objects=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$objects" "$dir"
out=$("$veil" info "$dir/params.veil")
grep -q "object:     parameter set" <<<"$out"
grep -q "security:   128-bit" <<<"$out"
grep -q "N:          8192" <<<"$out"
out=$("$veil" info "$dir/x.ct")
grep -q "object:     CKKS ciphertext" <<<"$out"
grep -q "form:       seeded, zstd-compressed" <<<"$out"
grep -q "SECRET" <<<"$("$veil" info "$dir/secret.key")"
printf 'not a veil object, just some text that is long enough for a header ..........................' > "$dir/junk"
set +e; "$veil" info "$dir/junk" 2>"$dir/err"; code=$?; set -e
[ "$code" = 3 ] || { echo "junk: exit code $code, not 3 (bad input)"; exit 1; }
grep -q "magic" "$dir/err"
set +e; "$veil" info "$dir/missing" 2>/dev/null; code=$?; set -e
[ "$code" = 1 ] || { echo "missing file: exit code $code, not 1 (I/O)"; exit 1; }
set +e; "$veil" info 2>/dev/null; code=$?; set -e
[ "$code" = 2 ] || { echo "usage error exit code $code"; exit 1; }
echo "veil info test: ok"
