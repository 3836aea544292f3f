#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang's libFuzzer, ASan and UBSan, seeds each, and runs each
# for FUZZ_SECONDS (default 60): fuzz_load (every loader of the wire format, seeded with one valid object of
# each kind) and fuzz_cts (the ciphertext-set loader against fixed key sets, seeded with valid sets of every
# kind) and fuzz_serve (the server's request handlers, in-memory requests). A crash leaves its input in build-fuzz/.
# The fuzzing build defines VEIL_FUZZ_IGNORE_DIGEST: it still computes every integrity digest but ignores a
# mismatch, or nearly every mutation would stop there and never reach the parsers behind it.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=(clang libclang-rt-14-dev)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVEIL_FUZZ=ON -DVEIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_load make_corpus fuzz_cts make_cts_corpus fuzz_serve >/dev/null
corpus=build-fuzz/corpus cts_corpus=build-fuzz/cts-corpus
mkdir -p "$corpus" "$cts_corpus"
./build-fuzz/make_corpus "$corpus"
./build-fuzz/make_cts_corpus "$cts_corpus"
cd build-fuzz
./fuzz_load -max_total_time="${FUZZ_SECONDS:-60}" -max_len=600000 -rss_limit_mb=2048 corpus
./fuzz_cts -max_total_time="${FUZZ_SECONDS:-60}" -max_len=600000 -rss_limit_mb=2048 cts-corpus
# the server's request handlers (tests/fuzz/fuzz_serve.c: its input format), seeded with a few requests,
# the admin scope's among them (src/net/admin.c: tokens added and revoked, a tenant's bundles deleted, models
# unloaded and loaded; with the admin's token and with a tenant's, which gets 403)
mkdir -p serve-corpus && i=0 && for r in 'GET /v1/models\na\n' 'POST /v1/keys\nb\n@E' 'POST /v1/models/m/predict?keys=@K\na\n@C' 'DELETE /v1/keys/@K\nb\n' 'GET /v1/tenants\nx\n' 'GET /v1/keys/@K\nBearer veil_0\n' \
    'POST /v1/tenants/c/tokens?admin=1\nx\n' 'POST /v1/tenants/a/tokens?admin=2\nx\n' 'DELETE /v1/tenants/b/tokens\nx\n' \
    'DELETE /v1/tenants/a/keys\nx\n' 'DELETE /v1/tokens/0123456789abcdef\nx\n' 'DELETE /v1/models/m\nx\n' \
    'POST /v1/models/m/load\nx\n' 'DELETE /v1/models/m\na\n' 'POST /v1/tenants/a/tokens\nb\n'; do printf "$r" >"serve-corpus/seed$((i += 1))"; done
./fuzz_serve -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 -rss_limit_mb=2048 serve-corpus
