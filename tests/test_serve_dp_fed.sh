#!/usr/bin/env bash
# `veil serve` as the aggregator of updates that carry shares of distributed noise (docs/privacy.md,
# "Federated aggregation with distributed noise"): three tenants push their joint keys and updates, each with
# its share (veil eval --dp-parties 3); the server's sum records the three shares (a complete release, the
# same as veil party sum's), and each party's joint-decryption share is charged to its budget. The server
# refuses to sum an update without a share beside ones with shares (409). Every loop is bounded.
#   test_serve_dp_fed.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null
declare -A tok
for t in p1 p2 p3; do tok[$t]=$("$veil" token add --store "$work/store" --tenant $t 2>/dev/null | tail -1); done
cp "$work/d/model.onnx" "$work/models/diabetes.onnx" # the server needs a model to serve
start_server
cd "$work" || exit 1
model=(--model "$work/d/model.onnx")
push() { VEIL_TOKEN=${tok[p$1]} "$veil" party push --server "$url" --to "$2" --in "$3" >push.out 2>push.err; }
pull() { VEIL_TOKEN=${tok[p$1]} "$veil" party pull --server "$url" --from "$2" --out "$3" 2>pull.err; }
q() { "$@" --quiet 2>err.txt || fail "'$*': $(cat err.txt)"; }

# joint keys made by the parties (the server relays: no plan), each party's update with its noise share
q "$veil" party init --parties 3 "${model[@]}" --out G
for i in 1 2 3; do q "$veil" party keygen --group G --party $i --round 1 --out P$i; done
q "$veil" party combine --group G --round 1 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do q "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i; done
q "$veil" party combine --group G --round 2 --in P1 P2 P3 --out JOINT
q "$veil" encrypt --keys JOINT --in "$work/d/test.csv" --out x.ct
for i in 1 2 3; do
    q "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out u$i.ct --dp-epsilon 4 --dp-delta 1e-6 \
        --dp-sensitivity 20 --dp-parties 3
done
q "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out u0.ct
for g in fed mix; do
    for i in 1 2 3; do push $i /v1/groups/$g G/group || fail "party $i joins $g: $(cat push.err)"; done
    for i in 1 2 3; do push $i /v1/groups/$g/shares P$i/round1.share || fail "party $i's shares: $(cat push.err)"; done
    push 1 /v1/groups/$g/joint JOINT/joint.keys || fail "the joint keys of $g: $(cat push.err)"
done
for i in 1 2 3; do push $i "/v1/groups/fed/updates?party=$i&records=111" u$i.ct || fail "update $i: $(cat push.err)"; done
pull 2 /v1/groups/fed/sum sum.ct || fail "the sum: $(cat pull.err)"
"$veil" info sum.ct | grep -q "3 of 3 noise shares (a complete release)" || fail "the server's sum: $("$veil" info sum.ct)"
q "$veil" party sum --group G --in u1.ct u2.ct u3.ct --out local.ct
[ "$("$veil" info sum.ct | grep privacy)" = "$("$veil" info local.ct | grep privacy)" ] || fail "the sums' records differ"
# each party's decryption share charges its budget; the joint decryption of the server's sum
for i in 1 2 3; do
    "$veil" budget --keys P$i --epsilon 5 --delta 1e-6 >/dev/null || fail "budget $i"
    q "$veil" party decrypt --group G --party $i --keys P$i --in sum.ct --out D$i --smudging-bits 16
    "$veil" budget --keys P$i | grep -q "in 1 release;" || fail "party $i's budget: $("$veil" budget --keys P$i)"
done
q "$veil" party combine --group G --decrypt sum.ct --in D1 D2 D3 --out sum.csv
[ "$(wc -l <sum.csv)" = 111 ] || fail "the decrypted sum has $(wc -l <sum.csv) rows"
# an update without a share beside two with shares: the sum is refused
for i in 1 2; do push $i "/v1/groups/mix/updates?party=$i&records=111" u$i.ct || fail "mix update $i: $(cat push.err)"; done
push 3 "/v1/groups/mix/updates?party=3&records=111" u0.ct || fail "mix update 3: $(cat push.err)"
expect 409 "a sum of updates with and without noise shares" "${tok[p1]}" GET /v1/groups/mix/sum
grep -q "noise share" body || fail "the refusal names the noise shares: $(head -c 300 body)"

stop_server
[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "serve dp fed: ok"
