#!/usr/bin/env bash
# Replicas of `veil serve` over one PostgreSQL key store (issue 22), on loopback: a throw-away cluster made with
# initdb in a temporary folder (Unix socket only), three replicas on the same store. Keys uploaded through one
# replica predict through the others (the bytes equal to `veil eval`'s); a token revoked through one is refused
# by the others; a bundle deleted through one is gone from the others; the schema is versioned; kill -9 of a
# replica during uploads loses no acknowledged key; PostgreSQL stopped: uploads answer 503 and the
# acknowledged keys are all there after it restarts. Skipped (exit 77) only without PostgreSQL's server
# binaries or a veil built without libpq. Every loop is bounded; everything is removed at exit.
#   test_scale.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"
pgbin=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && pgbin=$d; done
if [ -z "$pgbin" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then pgbin=$(dirname "$(command -v initdb)"); fi
if [ -z "$pgbin" ]; then
    echo "scale: skipped: PostgreSQL's server binaries (initdb, pg_ctl; Debian postgresql) are not installed"
    exit 77
fi
# PostgreSQL refuses to run as root: then as its own user
as_pg=()
if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "scale: skipped: running as root and there is no user postgres to run PostgreSQL as"
        exit 77
    fi
    as_pg=(runuser -u postgres --)
fi
pg="$work/pg"
mkdir -p "$pg"
chmod 755 "$work"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$pg"
replicas=(0 0 0)
ports=(0 0 0)
pg_stop() { "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1; }
scale_cleanup() {
    for p in "${replicas[@]}"; do [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null; done
    pg_stop
    cleanup
}
trap scale_cleanup EXIT
pg_start() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -t 60 \
        -o "-k $pg -c listen_addresses='' -c max_connections=60" start >/dev/null
}
"${as_pg[@]}" "$pgbin/initdb" -D "$pg/data" -A trust -U veil --no-sync >"$pg/initdb.log" 2>&1 || { echo "FAIL: initdb"; exit 1; }
pg_start || { echo "FAIL: PostgreSQL did not start"; cat "$pg/log"; exit 1; }
store="postgresql:///postgres?host=$pg&user=veil"

if "$veil" token list --store "$store" 2>&1 | grep -q "built without PostgreSQL"; then
    echo "scale: skipped: this veil was built without libpq (Debian libpq-dev)"
    exit 77
fi

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/h/train.csv" "$work/models/breast_cancer.calib.csv"
printf '{"calibrate": "breast_cancer.calib.csv"}\n' >"$work/models/breast_cancer.json"
head -6 "$work/h/test.csv" >"$work/five.csv"
alice=$("$veil" token add --store "$store" --tenant alice 2>/dev/null | tail -1)
bob=$("$veil" token add --store "$store" --tenant bob 2>/dev/null | tail -1)
carol=$("$veil" token add --store "$store" --tenant carol 2>/dev/null | tail -1)
check "token add on PostgreSQL prints a token" bash -c "[[ '$alice' =~ ^veil_[0-9a-f]{64}$ ]]"
check "token list on PostgreSQL names the tenants" bash -c "'$veil' token list --store '$store' | grep -q ' carol$'"

start_replica() { # start_replica I: replica I on the store; sets replicas[I], ports[I]
    local i=$1 out="$work/port$1.txt"
    : >"$out"
    "$veil" serve --models "$work/models" --store "$store" --listen 127.0.0.1:0 --threads 4 --quiet \
        >"$out" 2>>"$work/replica$i.log" &
    replicas[$i]=$!
    for _ in $(seq 600); do
        grep -q "listening on port" "$out" 2>/dev/null && break
        kill -0 "${replicas[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    ports[$i]=$(awk '{print $4}' "$out")
    [ -n "${ports[$i]}" ] || { echo "FAIL: replica $i did not start"; cat "$work/replica$i.log"; exit 1; }
}
on() { url="http://127.0.0.1:${ports[$1]}"; } # on I: the next requests (as, expect) go to replica I
id_of() { sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body"; }
for i in 0 1 2; do start_replica "$i"; done

# --- keys uploaded through one replica, used through the others ------------------------------------------
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ka" --quiet
"$veil" encrypt --keys "$work/ka" --in "$work/five.csv" --out "$work/xa.ct"
"$veil" eval --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --eval-keys "$work/ka/eval" --in "$work/xa.ct" \
    --out "$work/ya_local.ct" --quiet
on 0
expect 201 "alice uploads through replica 0" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
ida=$(id_of)
for i in 1 2; do
    on $i
    expect 200 "replica $i knows alice's keys" "$alice" GET "/v1/keys/$ida"
    expect 200 "alice predicts through replica $i" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
    check "replica $i's answer equals veil eval's, byte for byte" cmp -s "$work/body" "$work/ya_local.ct"
    expect 404 "bob cannot use alice's keys through replica $i" "$bob" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
    expect 200 "the same upload through replica $i: stored already" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
    check "replica $i says stored already" grep -q '"stored":false' "$work/body"
done
"$veil" decrypt --keys "$work/ka" --in "$work/ya_local.ct" --out "$work/ya.csv"
check "five predictions decrypted" test "$(wc -l <"$work/ya.csv")" = 5

# --- a token revoked through one replica is refused by the others ----------------------------------------
on 1
expect 200 "carol is served by replica 1" "$carol" GET /v1/models
ops=$("$veil" token add --store "$store" --tenant ops --admin 2>/dev/null | tail -1)
on 0
expect 200 "ops revokes carol's tokens through replica 0" "$ops" DELETE /v1/tenants/carol/tokens
for i in 0 1 2; do
    on $i
    expect 401 "carol's revoked token refused by replica $i" "$carol" GET /v1/models
done

# --- a bundle deleted through one replica is gone from the others (loaded in their caches first) ---------
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/kb" --quiet
"$veil" encrypt --keys "$work/kb" --in "$work/five.csv" --out "$work/xb.ct"
on 2
expect 201 "bob uploads through replica 2" "$bob" POST /v1/keys "$work/kb/eval/eval.keys"
idb=$(id_of)
for i in 0 1; do
    on $i
    expect 200 "bob predicts through replica $i (cached there)" "$bob" POST "/v1/models/breast_cancer/predict?keys=$idb" "$work/xb.ct"
done
on 2
expect 200 "bob deletes through replica 2" "$bob" DELETE "/v1/keys/$idb"
for i in 0 1; do
    on $i
    expect 404 "the deleted bundle is gone from replica $i" "$bob" POST "/v1/models/breast_cancer/predict?keys=$idb" "$work/xb.ct"
    expect 404 "its id is unknown to replica $i" "$bob" GET "/v1/keys/$idb"
done
expect 200 "ops sees the tenants' usage from the store" "$ops" GET /v1/tenants
check "alice holds one bundle in the store" grep -q '"name":"alice","tokens":1,"admin":false,"bundles":1' "$work/body"
check "bob holds none" grep -q '"name":"bob","tokens":1,"admin":false,"bundles":0' "$work/body"

# --- the schema: versioned, and a newer one refused ----------------------------------------------------------
psql=("${as_pg[@]}" "$pgbin/psql" -X -q -t -A -h "$pg" -U veil postgres)
check "the store's schema is version 1" test "$("${psql[@]}" -c 'SELECT max(version) FROM veil_schema')" = 1
check "the audit trail has the upload and the delete" \
    test "$("${psql[@]}" -c "SELECT count(*) FROM veil_audit WHERE action IN ('upload', 'delete')")" -ge 2
check "tokens are kept hashed" test "$("${psql[@]}" -c "SELECT count(*) FROM veil_tokens WHERE encode(hash, 'hex') = '${alice#veil_}'")" = 0
"${psql[@]}" -c 'INSERT INTO veil_schema VALUES (99)'
"$veil" token list --store "$store" >/dev/null 2>"$work/newer.txt"
check "a schema of a newer veil is refused" grep -q "newer veil" "$work/newer.txt"
"${psql[@]}" -c 'DELETE FROM veil_schema WHERE version = 99'

# --- kill -9 of a replica during uploads: no acknowledged key lost ------------------------------------------
for i in 1 2 3 4 5 6 7; do "$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/kf$i" --quiet; done
(for i in 1 2 3 4 5 6; do
     code=$(curl -s -H "Authorization: Bearer $alice" -o "$work/up$i" -w '%{http_code}' --max-time 30 \
         --data-binary "@$work/kf$i/eval/eval.keys" "http://127.0.0.1:${ports[1]}/v1/keys")
     echo "$i $code" >>"$work/acks.txt"
 done) &
uploader=$!
for _ in $(seq 300); do # once the first upload is acknowledged (30 s at most), while the others go on
    grep -q ' 20[01]$' "$work/acks.txt" 2>/dev/null && break
    sleep 0.1
done
kill -9 "${replicas[1]}"
wait "${replicas[1]}" 2>/dev/null
replicas[1]=0
wait "$uploader" 2>/dev/null
acked=0
on 0
while read -r i code; do
    case "$code" in 200 | 201)
        acked=$((acked + 1))
        id=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/up$i")
        expect 200 "acknowledged upload $i survives kill -9 of its replica" "$alice" GET "/v1/keys/$id"
        ;;
    esac
done <"$work/acks.txt"
check "nothing half-stored: every bundle has its chunks" \
    test "$("${psql[@]}" -c 'SELECT count(*) FROM veil_bundles b WHERE NOT EXISTS (SELECT 1 FROM veil_bundle_chunks c WHERE c.id = b.id)')" = 0
echo "kill -9: $acked of 6 uploads acknowledged before the replica died, all present through another"
check "at least one upload was acknowledged before kill -9" test "$acked" -ge 1

# --- PostgreSQL stopped: uploads 503, nothing acknowledged lost after its restart ------------------------------
pg_stop
on 2
expect 503 "an upload while PostgreSQL is down" "$alice" POST /v1/keys "$work/kf6/eval/eval.keys"
check "the 503 says to try again" grep -q "try again" "$work/body"
check "with Retry-After" grep -qi '^Retry-After:' "$work/headers"
expect 503 "a prediction while PostgreSQL is down" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
expect 200 "/healthz while PostgreSQL is down" - GET /healthz
pg_start || fail "PostgreSQL did not restart"
expect 200 "alice predicts after PostgreSQL's restart" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
check "the same bytes as veil eval's after the restart" cmp -s "$work/body" "$work/ya_local.ct"
on 0 # its connections were made before the restart and not used since: broken, made again at once
expect 200 "a replica idle through the outage predicts at once after it" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
expect 201 "and stores an upload at once" "$alice" POST /v1/keys "$work/kf7/eval/eval.keys"
while read -r i code; do
    case "$code" in 200 | 201)
        expect 200 "acknowledged upload $i there after PostgreSQL's restart" "$alice" GET "/v1/keys/$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/up$i")" ;;
    esac
done <"$work/acks.txt"

# --- SIGTERM: a replica finishes and closes its connections (under the sanitizers: nothing leaked) ----------
kill -TERM "${replicas[0]}"
wait "${replicas[0]}"
code=$?
replicas[0]=0
check "replica 0 exits 0 on SIGTERM (exit $code)" test "$code" = 0
check "no sanitizer report from the replicas" bash -c "! grep -q 'Sanitizer\|runtime error' '$work'/replica*.log"

if [ "$fails" = 0 ]; then echo "scale: ok"; else echo "scale: $fails failures"; exit 1; fi
