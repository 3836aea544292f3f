#!/usr/bin/env bash
# `veil serve` past one process (issue 22), on this machine: a throw-away PostgreSQL cluster (initdb in a
# temporary folder, Unix socket only) as the shared key store, three replicas on it and HAProxy in front
# (haproxy.cfg: health checks on /healthz, retries on another replica). Then the hospital demo through the
# balancer: the hospital uploads its evaluation keys once, 16 clients send 20 encrypted predictions each, and
# one replica is killed with kill -9 in the middle. Every answer must be 200 and byte for byte what `veil
# eval` computes on the same ciphertext: the clients see no failure. The balancers stream each request to its
# replica (haproxy.cfg, nginx.conf): one whose replica dies with its body on the way is answered 502, and the
# clients (curl) send it again as Veil's own client does (a 502 or 504, or a connection cut without an answer:
# up to 4 attempts, 0.1, 0.2, 0.4 s apart); the script says how many were sent again.
#
#   usage: examples/cluster/run.sh [BUILD_DIR] [WORK_DIR]      (exit 77: PostgreSQL or HAProxy missing)
#   BALANCER=nginx: nginx (nginx.conf) instead of HAProxy; HAPROXY_CFG, NGINX_CONF: another configuration;
#   HAPROXY_ENV: more of HAProxy's environment; HOLD=1: the balancer's configuration switched to holding each
#   request whole (held.sh), with clients that do not send a request again (the balancer does);
#   RETRY=0: clients that do not send a request again; CLIENTS, PER_CLIENT: 16 and 20 by default
#
# On several machines the same commands apply with real addresses: see docs/scale.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
veil="$build/veil"
given=${2:-}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
clients=${CLIENTS:-16} per_client=${PER_CLIENT:-20}

pgbin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pgbin=$d; done
balancer=${BALANCER:-haproxy} # or nginx (examples/cluster/nginx.conf)
if [ -z "$pgbin" ] || ! command -v "$balancer" >/dev/null; then
    echo "cluster: skipped: needs PostgreSQL's server (Debian postgresql) and $balancer (Debian $balancer): scripts/setup"
    exit 77
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi # PostgreSQL refuses to run as root

pg="$work/pg"
replicas=()
lb=""
cleanup() {
    [ -n "$lb" ] && kill "$lb" 2>/dev/null
    for p in "${replicas[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -d "$pg/data" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1
    [ -z "$given" ] && [ -z "${KEEP:-}" ] && rm -rf "$work"
}
trap cleanup EXIT

# --- PostgreSQL: the key store -------------------------------------------------------------------------------
mkdir -p "$pg"
chmod 755 "$work"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$pg/data" -A trust -U veil >"$pg/initdb.log" 2>&1 || { cat "$pg/initdb.log"; exit 1; }
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -t 60 -o "-k $pg -c listen_addresses=''" start >/dev/null ||
    { cat "$pg/log"; exit 1; }
store="postgresql:///postgres?host=$pg&user=veil"
echo "PostgreSQL: the key store, on the Unix socket in $pg"

# --- the hospital's model, served by three replicas --------------------------------------------------------
mkdir -p "$work/models" "$work/hospital"
/usr/bin/python3 "$here/../hospital/train.py" "$work/hospital" >/dev/null
cp "$work/hospital/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/hospital/train.csv" "$work/models/breast_cancer.calib.csv"
printf '{"calibrate": "breast_cancer.calib.csv"}\n' >"$work/models/breast_cancer.json"
token=$("$veil" token add --store "$store" --tenant hospital 2>/dev/null | tail -1)
ports=()
for i in 0 1 2; do
    "$veil" serve --models "$work/models" --store "$store" --listen 127.0.0.1:0 --threads 4 --quiet \
        >"$work/port$i.txt" 2>"$work/replica$i.log" &
    replicas+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 600); do
        grep -q "listening on port" "$work/port$i.txt" 2>/dev/null && break
        kill -0 "${replicas[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    ports+=("$(awk '{print $4}' "$work/port$i.txt")")
    [ -n "${ports[$i]}" ] || { echo "replica $i did not start:"; cat "$work/replica$i.log"; exit 1; }
done
echo "replicas: ports ${ports[*]}"

# --- HAProxy in front (BALANCER=nginx: nginx, nginx.conf) ---------------------------------------------------
# HOLD=1: the shipped configuration switched to holding each request whole, and clients that do not retry
haproxy_cfg=${HAPROXY_CFG:-$here/haproxy.cfg} nginx_conf=${NGINX_CONF:-$here/nginx.conf} haproxy_env=${HAPROXY_ENV:-}
if [ "${HOLD:-0}" = 1 ]; then
    "$here/held.sh" "$haproxy_cfg" >"$work/haproxy-held.cfg" && "$here/held.sh" "$nginx_conf" >"$work/nginx-held.conf" || exit 1
    haproxy_cfg=$work/haproxy-held.cfg nginx_conf=$work/nginx-held.conf haproxy_env="$haproxy_env $("$here/held.sh" --haproxy-env)"
    RETRY=0
fi
lb_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$balancer" = nginx ]; then
    mkdir -p "$work/nginx"
    sed -e "s|@LISTEN@|127.0.0.1:$lb_port|; s|@R0@|127.0.0.1:${ports[0]}|; s|@R1@|127.0.0.1:${ports[1]}|" \
        -e "s|@R2@|127.0.0.1:${ports[2]}|; s|@PREFIX@|$work/nginx|g" "$nginx_conf" >"$work/nginx/nginx.conf"
    [ "$(id -u)" = 0 ] && sed -i '1i user root;' "$work/nginx/nginx.conf" # its workers read its temporary files
    nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/haproxy.log" 2>&1 &
else
    # HAPROXY_ENV: more of HAProxy's environment (e.g. GLIBC_TUNABLES=... for a configuration that holds requests
    # in large buffers: haproxy.cfg's first lines)
    env $haproxy_env VEIL_LB_LISTEN="127.0.0.1:$lb_port" VEIL_R0="127.0.0.1:${ports[0]}" VEIL_R1="127.0.0.1:${ports[1]}" \
        VEIL_R2="127.0.0.1:${ports[2]}" haproxy -db -f "$haproxy_cfg" >"$work/haproxy.log" 2>&1 &
fi
lb=$!
url="http://127.0.0.1:$lb_port"
up=""
for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz")" = 200 ] && up=1 && break
    sleep 0.1
done
[ -n "$up" ] || { echo "$balancer did not answer:"; cat "$work/haproxy.log"; exit 1; }
echo "$balancer: $url"

# --- the hospital demo through the balancer ---------------------------------------------------------------
h="$work/hospital"
"$veil" keygen --model "$h/model.onnx" --calibrate "$h/train.csv" --out "$h/keys" --quiet
head -6 "$h/test.csv" >"$h/five.csv"
"$veil" encrypt --keys "$h/keys" --in "$h/five.csv" --out "$h/five.ct"
"$veil" eval --model "$h/model.onnx" --calibrate "$h/train.csv" --eval-keys "$h/keys/eval" --in "$h/five.ct" \
    --out "$h/expected.ct" --quiet
want=$(sha256sum <"$h/expected.ct" | cut -c1-64)
code=$(curl -s -o "$work/upload.json" -w '%{http_code}' --max-time 60 -H "Authorization: Bearer $token" \
    --data-binary "@$h/keys/eval/eval.keys" "$url/v1/keys")
[ "$code" = 201 ] || { echo "the upload through the balancer answered $code: $(cat "$work/upload.json")"; exit 1; }
id=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/upload.json")
echo "hospital: keys $id uploaded once, through the balancer (stored in PostgreSQL)"

client() { # client I: per_client predictions; a line "STATUS SHA256" each in $work/client.I, one per retry in retried.I
    for j in $(seq "$per_client"); do
        local out="$work/answer.$1.$j"
        local c rc attempt
        # as Veil's client (src/net/client.c): a balancer's 502 or 504, or a connection refused, cut or closed
        # without an answer (curl's exit 7, 18, 52, 55, 56), is sent again
        for attempt in 0 1 2 3; do
            rm -f "$out"
            c=$(curl -s -o "$out" -w '%{http_code}' --max-time 120 -H "Authorization: Bearer $token" \
                --data-binary "@$h/five.ct" "$url/v1/models/breast_cancer/predict?keys=$id")
            rc=$?
            case "$rc:$c" in 0:502 | 0:504 | 7:* | 18:* | 52:* | 55:* | 56:*) ;; *) break ;; esac
            [ "$attempt" = 3 ] || [ "${RETRY:-1}" = 0 ] && break
            echo "$rc $c" >>"$work/retried.$1"
            sleep "0.$((1 << attempt))"
        done
        touch "$out"
        echo "$c $(sha256sum <"$out" | cut -c1-64)" >>"$work/client.$1"
        rm -f "$out"
    done
}
t0=$(date +%s.%N)
pids=()
for i in $(seq "$clients"); do
    client "$i" &
    pids+=($!)
done
# kill -9 of one replica once the clients are well under way
for _ in $(seq 600); do
    [ "$(cat "$work"/client.* 2>/dev/null | wc -l)" -ge $((clients * per_client / 3)) ] && break
    sleep 0.05
done
kill -9 "${replicas[1]}"
echo "replica 1 killed (kill -9) after $(cat "$work"/client.* | wc -l) predictions"
wait "${pids[@]}"
t1=$(date +%s.%N)
total=$(cat "$work"/client.* | wc -l)
ok=$(cat "$work"/client.* | awk -v w="$want" '$1 == 200 && $2 == w' | wc -l)
failed=$((total - ok))
awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN { printf "clients: %d predictions in %.1f s (%.1f per second)\n", n, b - a, n / (b - a) }'
echo "clients: $ok answered 200 with veil eval's bytes, $failed failed; $(cat "$work"/retried.* 2>/dev/null | wc -l) sent again (502, 504 or a cut connection)"
"$veil" decrypt --keys "$h/keys" --in "$h/expected.ct" --out "$h/predictions.csv"
echo "hospital: the first prediction, decrypted: $(sed -n 2p "$h/predictions.csv")"
if [ "$total" = $((clients * per_client)) ] && [ "$failed" = 0 ]; then
    echo "cluster: ok"
else
    echo "cluster: FAILED ($failed of $total predictions failed; see $work with KEEP=1)"
    exit 1
fi
