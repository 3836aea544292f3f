#!/usr/bin/env bash
# The time per prediction through: (a) one `veil serve` on its folder store, (b) one replica on a PostgreSQL
# store, (c) HAProxy in front of three replicas on that store (examples/cluster/haproxy.cfg, or HAPROXY_CFG), (d)
# nginx in front of the same replicas when it is installed (examples/cluster/nginx.conf, or NGINX_CONF).
# `veil-bench serve` (VEIL_BENCH_SERVE_ONLY=cluster, bench/bench_serve.c) sends the same 4096-sample request
# (2.6 MB) to each in turn, N rounds (the order reversed every other round), and prints one JSON line per endpoint
# (p50, p99, mean, overhead over (a) of the p50s and paired: the median and quartiles of the rounds' ratios), then
# each part's CPU time per request it served (serve_cluster_cpu) and PostgreSQL's scans (serve_cluster_store).
# The issue's target (at most 10% more time per prediction than (a)) is the "paired_overhead" of (c) and (d).
#   bench/scale_overhead.sh [BUILD_DIR] [N]                 the shipped configurations (N = 40 by default)
#   SCALE_HELD=1 bench/scale_overhead.sh build 120          and the same configurations holding each request whole
# SCALE_HELD=1: also haproxy_held and nginx_held, the shipped files switched to holding each request before it
# goes to a replica as their first lines describe, in the same rounds. HAPROXY_VARIANTS="NAME=CFG ...": other
# HAProxy configurations in front of the same replicas, measured in the same rounds (HAPROXY_MALLOC: glibc
# tunables for them); NGINX_VARIANTS the same for nginx; at most 8 endpoints in all.
# With SCALE_CURL=1, also the hospital model's prediction of five records (a 2.6 MB ciphertext) from `curl` (a
# connection per request), to the same endpoints in the same alternating rounds: p50, mean and the paired overhead
# over the folder server (median and quartiles of the rounds' ratios; curl's time_total; CURL_EXTRA: more options).
# With SCALE_RELAY=1, also what each path adds to a 2.6 MB request's transfer alone, in microseconds (the median
# of the rounds' differences with the folder server: serve_cluster_relay, "added_us").
# Needs PostgreSQL's server and HAProxy (scripts/setup).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
n=${2:-40}
veil="$build/veil"
work=$(mktemp -d)
pgbin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pgbin=$d; done
[ -n "$pgbin" ] && command -v haproxy >/dev/null || { echo "needs PostgreSQL and HAProxy"; exit 77; }
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
pids=()
cleanup() {
    # an nginx master killed alone would leave its workers running (and listening), and one whose workers are
    # killed first starts new ones: each process stopped, then its children and itself killed (the shell's "Killed"
    # line for each, printed where it reaps them, silenced)
    {
        for p in "${pids[@]}"; do kill -STOP "$p" && kill -9 $(ps -o pid= --ppid "$p") "$p"; done
        wait "${pids[@]}"
    } 2>/dev/null
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1
    [ -n "${SCALE_LOGS:-}" ] && cp "$work"/*.log "$SCALE_LOGS"/ # HAProxy's log: its timers per request
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/pg" "$work/models"
chmod 755 "$work"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -A trust -U veil >/dev/null 2>&1
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-k $work/pg -c listen_addresses=''" start >/dev/null
pgurl="postgresql:///postgres?host=$work/pg&user=veil"
/usr/bin/python3 "$here/../examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/hospital.onnx"
VEIL_BENCH_SERVE_ONLY=model VEIL_BENCH_SERVE_MODELS="$work/models" "$build/veil-bench" serve || exit 1
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/k" --quiet
head -6 "$work/h/test.csv" >"$work/five.csv"
"$veil" encrypt --keys "$work/k" --in "$work/five.csv" --out "$work/x.ct"

serve() { # serve NAME STORE: a server on it; its port in $NAME, its process id in ${NAME}_pid
    local out
    out=$(mktemp -p "$work")
    "$veil" serve --models "$work/models" --store "$2" --listen 127.0.0.1:0 --threads 4 --quiet >"$out" 2>>"$work/serve.log" &
    pids+=($!)
    printf -v "${1}_pid" %s $!
    for _ in $(seq 300); do grep -q "listening on port" "$out" && break; sleep 0.1; done
    printf -v "$1" %s "$(awk '{print $4}' "$out")"
}
cpu_ns() { # cpu_ns PID ...: the CPU time of these processes and their children so far, in ns (every thread's)
    local total=0 p t
    for p in "$@" $(ps -o pid= --ppid "$(echo "$@" | tr ' ' ,)" 2>/dev/null); do
        for t in /proc/"$p"/task/*/schedstat; do
            [ -r "$t" ] && total=$((total + $(cut -d' ' -f1 "$t" 2>/dev/null || echo 0)))
        done
    done
    echo "$total"
}
measure_curl() { # the same endpoints from curl, in turn, N rounds (the order reversed every other round)
    local ids=() e i k r id rounds="$work/curl_rounds"
    local list=($endpoints)
    for e in "${list[@]}"; do
        id=$(curl -s -H "Authorization: Bearer ${e##*=}" --data-binary "@$work/k/eval/eval.keys" "$(echo "$e" | cut -d= -f2)/v1/keys" |
            sed 's/.*"id":"\([0-9a-f]*\)".*/\1/')
        ids+=("$id")
    done
    : >"$rounds"
    for r in $(seq -3 "$n"); do # three warm-up rounds: each replica behind a balancer loads the keys
        for k in $(seq 0 $((${#list[@]} - 1))); do
            i=$k
            [ $((r % 2)) != 0 ] && i=$((${#list[@]} - 1 - k))
            e=${list[$i]}
            printf '%s %s ' "$r" "${e%%=*}" >>"$rounds"
            curl -s -o /dev/null -w '%{time_total}\n' ${CURL_EXTRA:-} -H "Authorization: Bearer ${e##*=}" \
                --data-binary "@$work/x.ct" "$(echo "$e" | cut -d= -f2)/v1/models/hospital/predict?keys=${ids[$i]}" >>"$rounds"
        done
    done
    /usr/bin/python3 - "$rounds" "${list[@]%%=*}" <<'PY'
import sys, statistics
order = sys.argv[2:]
t = {name: {} for name in order}
for line in open(sys.argv[1]):
    r, name, sec = line.split()
    if int(r) >= 1: t[name][int(r)] = float(sec)
first = order[0]
for name in order:
    v = sorted(t[name].values())
    q = lambda a, f: a[min(len(a) - 1, int(f * len(a)))]
    ratios = sorted(t[name][r] / t[first][r] for r in t[name] if r in t[first])
    print("curl %-24s p50 %6.1f ms  mean %6.1f ms  paired over %s: %+.1f%% [%+.1f%%, %+.1f%%]  (%d rounds)" % (
        name, 1000 * q(v, 0.5), 1000 * statistics.mean(v), first, 100 * (q(ratios, 0.5) - 1),
        100 * (q(ratios, 0.25) - 1), 100 * (q(ratios, 0.75) - 1), len(v)))
PY
}
tf=$("$veil" token add --store "$work/folder" --tenant t 2>/dev/null | tail -1)
tp=$("$veil" token add --store "$pgurl" --tenant t 2>/dev/null | tail -1)
serve pf "$work/folder"
serve p0 "$pgurl"
serve p1 "$pgurl"
serve p2 "$pgurl"
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
endpoints="folder=http://127.0.0.1:$pf=$tf postgresql=http://127.0.0.1:$p0=$tp"
balancers=""
haproxy_in_front() { # haproxy_in_front NAME CFG [VAR=VALUE ...]: HAProxy with CFG (and that environment) in front
    local port
    port=$(free_port)
    env "${@:3}" VEIL_LB_LISTEN="127.0.0.1:$port" VEIL_R0="127.0.0.1:$p0" VEIL_R1="127.0.0.1:$p1" \
        VEIL_R2="127.0.0.1:$p2" haproxy -db -f "$2" >>"$work/haproxy.log" 2>&1 &
    pids+=($!)
    balancers="$balancers $1=$!"
    endpoints="$endpoints $1=http://127.0.0.1:$port=$tp"
}
nginx_in_front() { # nginx_in_front NAME CONF: an nginx with CONF in front of the replicas, one more endpoint
    local port
    port=$(free_port)
    mkdir -p "$work/$1"
    sed -e "s|@LISTEN@|127.0.0.1:$port|; s|@R0@|127.0.0.1:$p0|; s|@R1@|127.0.0.1:$p1|; s|@R2@|127.0.0.1:$p2|" \
        -e "s|@PREFIX@|$work/$1|g" "$2" >"$work/$1/nginx.conf"
    [ "$(id -u)" = 0 ] && sed -i '1i user root;' "$work/$1/nginx.conf"
    nginx -p "$work/$1" -c "$work/$1/nginx.conf" -g 'daemon off;' >>"$work/nginx.log" 2>&1 &
    pids+=($!)
    balancers="$balancers $1=$!"
    endpoints="$endpoints $1=http://127.0.0.1:$port=$tp"
}
# HAPROXY_MALLOC=TUNABLES: GLIBC_TUNABLES for every HAProxy but haproxy_held, which has examples/cluster/held.sh's
# (the shipped configuration streams requests through 64 KiB buffers: none needed)
haproxy_in_front haproxy "${HAPROXY_CFG:-$here/../examples/cluster/haproxy.cfg}" "GLIBC_TUNABLES=${HAPROXY_MALLOC:-}"
# HAPROXY_VARIANTS="NAME=CFG ...": more balancers in front of the same replicas, measured in the same rounds
for v in ${HAPROXY_VARIANTS:-}; do haproxy_in_front "${v%%=*}" "${v#*=}" "GLIBC_TUNABLES=${HAPROXY_MALLOC:-}"; done
# nginx too when installed (examples/cluster/nginx.conf, or NGINX_CONF; NGINX=0: not); NGINX_VARIANTS="NAME=CONF
# ...": other nginx configurations in front of the same replicas, measured in the same rounds
have_nginx=0
command -v nginx >/dev/null && [ "${NGINX:-1}" = 1 ] && have_nginx=1
if [ "$have_nginx" = 1 ]; then
    nginx_in_front nginx "${NGINX_CONF:-$here/../examples/cluster/nginx.conf}"
    for v in ${NGINX_VARIANTS:-}; do nginx_in_front "${v%%=*}" "${v#*=}"; done
fi
# SCALE_HELD=1: also the shipped configurations switched to holding each request whole before it goes to a
# replica, as their first lines say (haproxy_held, nginx_held): what streaming saves, in the same rounds
if [ "${SCALE_HELD:-0}" = 1 ]; then
    cluster="$here/../examples/cluster"
    "$cluster/held.sh" "$cluster/haproxy.cfg" >"$work/haproxy_held.cfg" || exit 1
    haproxy_in_front haproxy_held "$work/haproxy_held.cfg" "$("$cluster/held.sh" --haproxy-env)"
    if [ "$have_nginx" = 1 ]; then
        "$cluster/held.sh" "$cluster/nginx.conf" >"$work/nginx_held.conf" || exit 1
        nginx_in_front nginx_held "$work/nginx_held.conf"
    fi
fi
balancers=${balancers# }
sleep 1
# the CPU time of each part over the run, per request it served: a figure the machine's other load barely moves
# (it does not count waiting for a core), unlike the times per prediction
pg_pid=$(head -1 "$work/pg/data/postmaster.pid")
parts="folder=$pf_pid replicas=$p0_pid,$p1_pid,$p2_pid postgresql=$pg_pid $balancers"
declare -A before
for x in $parts; do before[${x%%=*}]=$(cpu_ns $(echo "${x#*=}" | tr , " ")); done
VEIL_BENCH_SERVE_ONLY=cluster VEIL_BENCH_SERVE_ENDPOINTS="$endpoints" VEIL_BENCH_SERVE_ROUNDS="$n" \
    "$build/veil-bench" serve ${BENCH_EXTRA:-} || echo "veil-bench serve failed (see $work/serve.log)"
# requests (4 warm-ups + n rounds each, and one upload): the folder server's, the replicas' (every endpoint but the
# folder's reaches one), the store's (the same), each balancer's
per=$((n + 5))
endpoint_count=$(echo "$endpoints" | wc -w)
for x in $parts; do
    name=${x%%=*}
    case $name in folder) req=$per ;; replicas | postgresql) req=$((per * (endpoint_count - 1))) ;; *) req=$per ;; esac
    used=$(($(cpu_ns $(echo "${x#*=}" | tr , " ")) - before[$name]))
    awk -v name="$name" -v ns="$used" -v req="$req" 'BEGIN {
        printf "{\"op\":\"serve_cluster_cpu\",\"part\":\"%s\",\"requests\":%d,\"cpu_ms_per_request\":%.3f}\n", name, req, ns / req / 1e6 }'
done
# what the replicas asked PostgreSQL for, per table (every table's scans over the whole run, warm-ups and uploads
# included): a prediction reads a token and an ownership; a bundle's chunks only at a replica's first use
"$pgbin/psql" "$pgurl" -Atc "SELECT relname, coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables
    WHERE relname IN ('veil_tokens', 'veil_owners', 'veil_bundles', 'veil_bundle_chunks') ORDER BY relname" |
    awk -F'|' -v req=$((per * (endpoint_count - 1))) '{ printf "{\"op\":\"serve_cluster_store\",\"table\":\"%s\",\"scans\":%d,\"requests\":%d}\n", $1, $2, req }'
if [ "${SCALE_CURL:-0}" = 1 ]; then measure_curl; fi
# SCALE_RELAY=1: the relay alone, in ms: the hospital demo's 2.6 MB ciphertext with its first bytes spoiled, sent
# as a prediction with the right keys to each endpoint over a kept connection, N rounds (the order reversed every
# other round): each server reads the whole body, then refuses it at once (400), so what a path adds to the
# folder server's time here is its transfer's cost without the evaluation's time and noise around it
if [ "${SCALE_RELAY:-0}" = 1 ]; then
    /usr/bin/python3 - "$n" "$work/k/eval/eval.keys" "$work/x.ct" $endpoints <<'PY'
import http.client, json, sys, time, urllib.parse
rounds, keys_path, ct_path, specs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
keys = open(keys_path, 'rb').read()
body = bytearray(open(ct_path, 'rb').read())
body[0:8] = b'XXXXXXXX'  # not Veil's magic: refused once read
body = bytes(body)
eps = []
for spec in specs:
    name, rest = spec.split('=', 1)
    url, token = rest.rsplit('=', 1)
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    auth = {'Authorization': 'Bearer ' + token}
    c.request('POST', '/v1/keys', keys, auth)
    r = c.getresponse()
    key_id = json.loads(r.read())['id']
    eps.append((name, c, auth, '/v1/models/hospital/predict?keys=' + key_id))
t = {name: [] for name, *_ in eps}
for r in range(-3, rounds):
    for name, c, auth, path in (eps if r % 2 == 0 else eps[::-1]):
        t0 = time.perf_counter()
        c.request('POST', path, body, auth)
        a = c.getresponse()
        a.read()
        if a.status != 400:
            sys.exit('relay: %s answered %d, not 400' % (name, a.status))
        if r >= 0:
            t[name].append(time.perf_counter() - t0)
first = eps[0][0]
for name, *_ in eps:
    v = sorted(t[name])
    d = sorted(x - y for x, y in zip(t[name], t[first]))
    print('{"op":"serve_cluster_relay","endpoint":"%s","request_bytes":%d,"rounds":%d,"p50_us":%.1f,"p10_us":%.1f,'
          '"added_us":%.1f,"added_q1_us":%.1f,"added_q3_us":%.1f}' % (
              name, len(body), rounds, 1e6 * v[len(v) // 2], 1e6 * v[len(v) // 10], 1e6 * d[len(d) // 2],
              1e6 * d[len(d) // 4], 1e6 * d[3 * len(d) // 4]))
PY
fi
