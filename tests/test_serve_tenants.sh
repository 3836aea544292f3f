#!/usr/bin/env bash
# `veil serve` with tenants, on loopback: two tenants and an attacker with curl. No token or a bad or revoked
# one is 401; a tenant cannot see, use or delete another's keys (404, as for an unknown id); one bundle
# uploaded by both stays each one's; the admin scope (the tenants' usage, tokens added and revoked over HTTP, a
# tenant's bundles deleted, models unloaded and loaded; 403 for other tokens); --no-auth and plain HTTP refused off loopback; the store
# checked at start (a cut-off bundle, a file of another hash, a folder named like a bundle: moved aside); and
# a legitimate prediction succeeds throughout. Every loop is bounded.
#   test_serve_tenants.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"
id_of() { sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body"; }
# the body with key ids replaced: what an answer tells beyond the id asked for
shape() { sed 's/[0-9a-f]\{32\}/ID/g' "$work/body"; }

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/h/train.csv" "$work/models/breast_cancer.calib.csv"
printf '{"calibrate": "breast_cancer.calib.csv"}\n' >"$work/models/breast_cancer.json"
head -6 "$work/h/test.csv" >"$work/five.csv"
alice=$("$veil" token add --store "$work/store" --tenant alice 2>/dev/null | tail -1)
bob=$("$veil" token add --store "$work/store" --tenant bob 2>/dev/null | tail -1)
ops=$("$veil" token add --store "$work/store" --tenant ops --admin 2>/dev/null | tail -1)
check "token add prints the token alone on its last line" bash -c "[[ '$alice' =~ ^veil_[0-9a-f]{64}$ ]]"
check "the token file is 0600" test "$(stat -c %a "$work/store/tokens")" = 600
check "the token file holds no token in clear" bash -c "! grep -q '${alice#veil_}' '$work/store/tokens'"
check "token list names the tenants" bash -c "'$veil' token list --store '$work/store' | grep -q ' alice$'"
start_server

# --- authentication ---------------------------------------------------------------------------------------
expect 200 "/healthz without a token" - GET /healthz
expect 200 "/metrics without a token" - GET /metrics
expect 401 "no token" - GET /v1/models
check "401 carries WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$work/headers"
expect 401 "a made-up token" "veil_$(printf '%064d' 0)" GET /v1/models
expect 401 "a token with its last character changed" "${alice%?}x" GET /v1/models
check "a 401 is a JSON error" grep -q '"error":' "$work/body"
expect 401 "an upload without a token" - POST /v1/keys "$work/five.csv"
expect 200 "alice lists the models" "$alice" GET /v1/models

# --- keys: each tenant's own --------------------------------------------------------------------------------
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ka" --quiet
VEIL_TOKEN=$bob "$veil" keygen --server "$url" --model breast_cancer --out "$work/kb" --quiet
check "keygen --server with VEIL_TOKEN" test -s "$work/kb/eval/eval.keys"
"$veil" keygen --server "$url" --model breast_cancer --out "$work/knone" --quiet 2>/dev/null
check "keygen --server without a token fails" test $? != 0
"$veil" encrypt --keys "$work/ka" --in "$work/five.csv" --out "$work/xa.ct"
"$veil" encrypt --keys "$work/kb" --in "$work/five.csv" --out "$work/xb.ct"
expect 201 "alice uploads" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
ida=$(id_of)
expect 200 "alice predicts" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
legit "with VEIL_TOKEN"
unknown=0123456789abcdef0123456789abcdef
for m in GET DELETE; do
    expect 404 "$m of an unknown id" "$bob" "$m" "/v1/keys/$unknown"
    shape >"$work/unknown.$m"
    expect 404 "bob's $m of alice's keys" "$bob" "$m" "/v1/keys/$ida"
    check "bob's $m of alice's keys answers as for an unknown id" bash -c "cmp -s <(sed 's/[0-9a-f]\{32\}/ID/g' '$work/body') '$work/unknown.$m'"
done
expect 404 "bob predicts with an unknown id" "$bob" POST "/v1/models/breast_cancer/predict?keys=$unknown" "$work/xa.ct"
shape >"$work/unknown.predict"
expect 404 "bob predicts with alice's keys" "$bob" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
check "bob's prediction with alice's keys answers as for an unknown id" bash -c "cmp -s <(sed 's/[0-9a-f]\{32\}/ID/g' '$work/body') '$work/unknown.predict'"
expect 200 "alice's keys survive bob's DELETE" "$alice" GET "/v1/keys/$ida"
legit "after bob's attempts"

# --- one bundle, two tenants ---------------------------------------------------------------------------------
expect 201 "bob uploads alice's bundle: new to him" "$bob" POST /v1/keys "$work/ka/eval/eval.keys"
check "bob's upload answers as for a new bundle" grep -q '"stored":true' "$work/body"
expect 200 "alice deletes the shared bundle" "$alice" DELETE "/v1/keys/$ida"
expect 404 "gone for alice" "$alice" GET "/v1/keys/$ida"
expect 200 "still bob's" "$bob" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
expect 201 "alice uploads it again" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
expect 200 "bob deletes it" "$bob" DELETE "/v1/keys/$ida"
expect 200 "still alice's" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
expect 404 "bob's second DELETE" "$bob" DELETE "/v1/keys/$ida"
expect 201 "bob uploads his own keys" "$bob" POST /v1/keys "$work/kb/eval/eval.keys"
idb=$(id_of)
expect 404 "alice cannot use bob's keys" "$alice" POST "/v1/models/breast_cancer/predict?keys=$idb" "$work/xb.ct"
expect 200 "bob predicts with his keys (made from the server's plan)" "$bob" POST "/v1/models/breast_cancer/predict?keys=$idb" "$work/xb.ct"

# --- races: both tenants upload and delete one bundle at once, 10 times each; then each still owns it alone -----
racers=()
for t in "$alice" "$bob"; do
    (for i in $(seq 10); do
         curl -s -o /dev/null --max-time 60 -H "Authorization: Bearer $t" --data-binary "@$work/ka/eval/eval.keys" "$url/v1/keys"
         curl -s -o /dev/null --max-time 60 -H "Authorization: Bearer $t" -X DELETE "$url/v1/keys/$ida"
     done) &
    racers+=($!)
done
wait "${racers[@]}"
expect 404 "after the race: not alice's" "$alice" GET "/v1/keys/$ida"
expect 404 "after the race: not bob's" "$bob" GET "/v1/keys/$ida"
check "after the race: no bundle left in the store" test ! -e "$work/store/keys/$ida.keys"
expect 201 "after the race: alice uploads" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
expect 201 "after the race: bob uploads" "$bob" POST /v1/keys "$work/ka/eval/eval.keys"
expect 200 "after the race: bob deletes his" "$bob" DELETE "/v1/keys/$ida"
legit "after the race"

# --- the admin scope -----------------------------------------------------------------------------------------
expect 403 "a tenant lists the tenants" "$alice" GET /v1/tenants
expect 200 "the admin lists the tenants" "$ops" GET /v1/tenants
check "the tenants' list names alice and bob" bash -c "grep -q '\"name\":\"alice\"' '$work/body' && grep -q '\"name\":\"bob\"' '$work/body'"
check "the tenants' list gives alice's usage (1 bundle)" grep -q '"name":"alice","tokens":1,"admin":false,"bundles":1,"bytes":[1-9]' "$work/body"
expect 404 "the admin does not see alice's keys" "$ops" GET "/v1/keys/$ida"
: >"$work/empty"
tok_of() { sed 's/.*"token":"\([^"]*\)".*/\1/' "$work/body"; }
tid_of() { sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body"; }
# tokens over HTTP: added (shown once), used at once, revoked by id or by tenant; a tenant's token gets 403
expect 403 "a tenant adds a token" "$alice" POST /v1/tenants/dave/tokens "$work/empty"
expect 400 "the admin adds a token for a malformed tenant" "$ops" POST "/v1/tenants/da.ve/tokens" "$work/empty"
expect 400 "the admin adds a token of a scope neither 0 nor 1" "$ops" POST "/v1/tenants/dave/tokens?admin=yes" "$work/empty"
expect 201 "the admin adds a token for dave" "$ops" POST /v1/tenants/dave/tokens "$work/empty"
dave=$(tok_of) dave_id=$(tid_of)
check "the new token is a token, of the tenant scope" bash -c "[[ '$dave' =~ ^veil_[0-9a-f]{64}$ ]] && grep -q '\"admin\":false' '$work/body'"
check "the token file holds dave's token hashed, not in clear" bash -c "grep -q ' dave tenant ' '$work/store/tokens' && ! grep -q '${dave#veil_}' '$work/store/tokens'"
expect 200 "dave's new token works at once" "$dave" GET /v1/models
expect 403 "dave is no admin" "$dave" GET /v1/tenants
expect 201 "the admin adds a second, admin token for dave" "$ops" POST "/v1/tenants/dave/tokens?admin=1" "$work/empty"
dave_admin=$(tok_of)
expect 200 "dave's admin token lists the tenants" "$dave_admin" GET /v1/tenants
check "the tenants' list counts dave's 2 tokens, one admin" grep -q '"name":"dave","tokens":2,"admin":true' "$work/body"
expect 403 "a tenant revokes a token" "$alice" DELETE "/v1/tokens/$dave_id"
expect 400 "a malformed token id" "$ops" DELETE /v1/tokens/xyz
expect 404 "an unknown token id" "$ops" DELETE /v1/tokens/0123456789abcdef
expect 200 "the admin revokes dave's first token by its id" "$ops" DELETE "/v1/tokens/$dave_id"
check "one token revoked" grep -q '"revoked":1' "$work/body"
expect 401 "dave's revoked token, at once" "$dave" GET /v1/models
expect 200 "dave's other token still works" "$dave_admin" GET /v1/models
expect 403 "a tenant revokes a tenant's tokens" "$alice" DELETE /v1/tenants/dave/tokens
expect 200 "the admin revokes all of dave's tokens" "$ops" DELETE /v1/tenants/dave/tokens
expect 401 "dave's last token revoked" "$dave_admin" GET /v1/models
expect 404 "no token left for dave" "$ops" DELETE /v1/tenants/dave/tokens
# a tenant's bundles deleted by the admin: its own go, one shared with alice stays alice's
expect 201 "the admin adds a token for erin" "$ops" POST /v1/tenants/erin/tokens "$work/empty"
erin=$(tok_of)
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ke" --quiet
expect 201 "erin uploads her keys" "$erin" POST /v1/keys "$work/ke/eval/eval.keys"
ide=$(id_of)
expect 201 "erin uploads alice's bundle too" "$erin" POST /v1/keys "$work/ka/eval/eval.keys"
expect 403 "a tenant deletes erin's bundles" "$alice" DELETE /v1/tenants/erin/keys
expect 200 "erin's bundles are hers still" "$erin" GET "/v1/keys/$ide"
expect 200 "the admin deletes erin's bundles" "$ops" DELETE /v1/tenants/erin/keys
check "2 of erin's bundles deleted" grep -q '"tenant":"erin","deleted":2' "$work/body"
expect 404 "erin's bundle, deleted" "$erin" GET "/v1/keys/$ide"
expect 404 "erin's share of alice's bundle, deleted" "$erin" GET "/v1/keys/$ida"
check "erin's own bundle is gone from the store" test ! -e "$work/store/keys/$ide.keys"
check "erin's ownership records are gone" bash -c "[ -z \"\$(ls -A '$work/store/owners/erin' 2>/dev/null)\" ]"
expect 200 "alice's bundle, shared with erin, stays alice's" "$alice" GET "/v1/keys/$ida"
expect 200 "no bundle of erin's left to delete" "$ops" DELETE /v1/tenants/erin/keys
check "0 deleted" grep -q '"deleted":0' "$work/body"
legit "after the admin deleted erin's bundles"
# models: unloaded (no longer served) and loaded again from the models folder by the admin
expect 403 "a tenant unloads a model" "$alice" DELETE /v1/models/breast_cancer
expect 403 "a tenant loads a model" "$alice" POST /v1/models/breast_cancer/load "$work/empty"
expect 409 "loading a model served already" "$ops" POST /v1/models/breast_cancer/load "$work/empty"
expect 404 "loading a model with no file" "$ops" POST /v1/models/nosuch/load "$work/empty"
expect 200 "the admin unloads breast_cancer" "$ops" DELETE /v1/models/breast_cancer
expect 404 "an unloaded model is not described" "$alice" GET /v1/models/breast_cancer
expect 404 "an unloaded model does not predict" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
expect 200 "the models' list" "$alice" GET /v1/models
check "the models' list leaves the unloaded model out" bash -c "! grep -q breast_cancer '$work/body'"
expect 404 "unloading it twice" "$ops" DELETE /v1/models/breast_cancer
expect 201 "the admin loads breast_cancer again" "$ops" POST /v1/models/breast_cancer/load "$work/empty"
expect 200 "the reloaded model is listed" "$alice" GET /v1/models
check "the models' list names it" grep -q '"name":"breast_cancer"' "$work/body"
expect 200 "alice's stored keys predict with the reloaded model" "$alice" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
legit "after the model was unloaded and loaded again"

# --- revocation while the server runs -------------------------------------------------------------------------
carol=$("$veil" token add --store "$work/store" --tenant carol 2>/dev/null | tail -1)
expect 200 "a token added while the server runs" "$carol" GET /v1/models
"$veil" token revoke --store "$work/store" --tenant carol 2>/dev/null
expect 401 "a revoked token, at once" "$carol" GET /v1/models
bob_id=$("$veil" token list --store "$work/store" | awk '$4 == "bob" { print $1 }')
"$veil" token revoke --store "$work/store" --id "$bob_id" 2>/dev/null
expect 401 "bob's token revoked by its id" "$bob" GET "/v1/keys/$idb"
legit "after the revocations"
# a damaged token file while the server runs: no token is accepted (fail closed), the server stays up; fixed, it works
cp -p "$work/store/tokens" "$work/tokens.good"
printf 'veil-tokens 1\nnot a token line\n' >"$work/store/tokens.new" && mv "$work/store/tokens.new" "$work/store/tokens"
expect 401 "a malformed token file accepts no token" "$alice" GET /v1/models
expect 200 "healthy with a malformed token file" - GET /healthz
check "the malformed token file is logged" grep -q "not 'HASH TENANT SCOPE CREATED'" "$work/server.log"
cp -p "$work/tokens.good" "$work/store/tokens.new" && mv "$work/store/tokens.new" "$work/store/tokens"
expect 200 "the token file fixed" "$alice" GET /v1/models

# --- the client's token: VEIL_TOKEN or --token-file, checked -------------------------------------------------------
printf '%s\n' "$alice" >"$work/token"
chmod 600 "$work/token"
"$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" --out "$work/tf.csv" \
    --token-file "$work/token" --quiet
check "predict with --token-file" test "$(wc -l <"$work/tf.csv")" = 5
chmod 644 "$work/token"
"$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" --out "$work/tw.csv" \
    --token-file "$work/token" --quiet 2>"$work/tw.log"
check "a world-readable --token-file is refused" bash -c "[ ! -e '$work/tw.csv' ] && grep -q 'readable' '$work/tw.log'"
: >"$work/empty"
chmod 600 "$work/empty"
"$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" --out "$work/te.csv" \
    --token-file "$work/empty" --quiet 2>"$work/te.log"
check "an empty --token-file is refused" bash -c "[ ! -e '$work/te.csv' ] && grep -q 'empty' '$work/te.log'"
"$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" --out "$work/tn.csv" \
    --quiet 2>/dev/null
check "predict without a token fails" test $? != 0 -a ! -e "$work/tn.csv"
stop_server

# --- off loopback: --no-auth refused; plain HTTP refused without the override (nothing is bound) -----------------
timeout 60 "$veil" serve --models "$work/models" --store "$work/store" --listen 0.0.0.0:0 --no-auth \
    --tls-cert /nonexistent --tls-key /nonexistent >/dev/null 2>"$work/na.log"
check "--no-auth off loopback is refused" bash -c "[ $? != 0 ] && grep -q 'no-auth' '$work/na.log'"
timeout 60 "$veil" serve --models "$work/models" --store "$work/store" --listen 0.0.0.0:0 >/dev/null 2>"$work/tls.log"
check "plain HTTP off loopback is refused" bash -c "[ $? != 0 ] && grep -q 'insecure-http' '$work/tls.log'"

# --- --no-auth on loopback: one anonymous tenant, not the others' keys ------------------------------------------
start_server --no-auth
expect 200 "--no-auth: no token needed" - GET /v1/models
expect 404 "--no-auth: alice's keys stay hers" - GET "/v1/keys/$ida"
stop_server

# --- the store checked at start ---------------------------------------------------------------------------------
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/kc" --quiet
# --- a tenant's share of the store: 429 with Retry-After past it --------------------------------------------------
start_server --tenant-max-keys 1
expect 429 "alice's second bundle past --tenant-max-keys 1" "$alice" POST /v1/keys "$work/kc/eval/eval.keys"
check "429 carries Retry-After" grep -qi '^Retry-After: ' "$work/headers"
legit "past the tenant's limit"
stop_server
start_server --tenant-max-bytes $(($(stat -c %s "$work/kc/eval/eval.keys") + 1000))
expect 429 "alice's second bundle past --tenant-max-bytes" "$alice" POST /v1/keys "$work/kc/eval/eval.keys"
stop_server
start_server
expect 201 "alice uploads a second bundle" "$alice" POST /v1/keys "$work/kc/eval/eval.keys"
idc=$(id_of)
stop_server
bytes=$(stat -c %s "$work/store/keys/$idc.keys")
truncate -s $((bytes / 2)) "$work/store/keys/$idc.keys"                # cut off
head -c 5000 /dev/urandom >"$work/store/keys/fedcba9876543210fedcba9876543210.keys" # another hash
mkdir "$work/store/keys/00112233445566778899aabbccddeeff.keys"                # a folder named like a bundle
printf 'x' >"$work/store/keys/notes.txt"                                   # a stray file
mkdir "$work/store/owners/alice/junk"                                    # not an ownership record
start_server
check "the server starts after the damage" kill -0 "$server_pid"
expect 200 "healthy" - GET /healthz
expect 404 "a cut-off bundle is not served" "$alice" GET "/v1/keys/$idc"
expect 404 "a file of another hash is not served" "$alice" GET /v1/keys/fedcba9876543210fedcba9876543210
expect 404 "a folder named like a bundle is not served" "$alice" GET /v1/keys/00112233445566778899aabbccddeeff
check "only the checked bundles are left in keys/" test "$(ls "$work/store/keys" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$ida.keys" "$idb.keys" | sort | tr '\n' ' ')"
check "five things quarantined" test "$(ls "$work/store/quarantine" | wc -l)" = 5
check "the quarantine is logged" grep -q "does not hash to its id" "$work/server.log"
expect 200 "metrics" - GET /metrics
check "two bundles stored" grep -q '^veil_stored_keys 2$' "$work/body"
legit "after the store check"
stop_server
[ "$fails" = 0 ] || cat "$work/server.log"

[ "$fails" = 0 ] && echo "serve tenants: ok"
exit "$fails"
