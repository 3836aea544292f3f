#!/usr/bin/env bash
# haproxy.cfg or nginx.conf switched to holding each request whole before it goes to a replica (their first lines
# say why and when: for clients that do not send a request again after a 502), on standard output:
#   examples/cluster/held.sh haproxy.cfg >haproxy-held.cfg      examples/cluster/held.sh nginx.conf >nginx-held.conf
#   examples/cluster/held.sh --haproxy-env    the environment HAProxy then needs (glibc's malloc keeping its buffers)
# run.sh (HOLD=1) and bench/scale_overhead.sh (SCALE_HELD=1) use it. Exit 1 when the file lacks the lines it switches.
set -uo pipefail
if [ "${1:-}" = --haproxy-env ]; then
    echo "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:glibc.malloc.arena_max=1"
    exit 0
fi
[ $# = 1 ] && [ -r "$1" ] || { echo "usage: held.sh haproxy.cfg|nginx.conf, or held.sh --haproxy-env" >&2; exit 2; }
if grep -q 'proxy_pass ' "$1"; then # nginx
    grep -q '^    proxy_request_buffering off;$' "$1" && grep -q '^    client_body_buffer_size 128k;$' "$1"
else
    grep -q '^    tune.bufsize 65536$' "$1" && grep -q '^    retry-on ' "$1" && ! grep -q '^ *option http-buffer-request' "$1"
fi || { echo "held.sh: $1 lacks the lines it switches" >&2; exit 1; }
sed -e 's/^    tune.bufsize 65536$/    tune.bufsize 8388608\n    tune.maxrewrite 16384/' \
    -e 's/^    retry-on .*/&\n    option http-buffer-request/' \
    -e 's/^    proxy_request_buffering off;$/    proxy_request_buffering on;/' \
    -e 's/^    client_body_buffer_size 128k;$/    client_body_buffer_size 8m;/' "$1"
