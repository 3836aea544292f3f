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
if "$veil" info "$dir/junk" 2>"$dir/err"; then echo "junk accepted"; exit 1; fi
grep -q "magic" "$dir/err"
if "$veil" info "$dir/missing" 2>/dev/null; then echo "missing file accepted"; exit 1; fi
set +e; "$veil" info 2>/dev/null; code=$?; set -e
[ "$code" = 2 ] || { echo "usage error exit code $code"; exit 1; }
echo "veil info test: ok"
