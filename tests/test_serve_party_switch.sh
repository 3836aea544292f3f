#!/usr/bin/env bash
# `veil serve` groups, continued (/v1/groups; docs/net.md, "Groups"): collective public-key switching through
# the server, and the groups' lifecycle and limits, on loopback. Three tenants (parties 1, 2, 3) make joint keys
# through the server, each posts an encrypted update, and instead of decrypting the sum jointly they switch it
# to a receiver's keys: party 1 makes keys for the group's plan (veil keygen --plan) and PUTs their public
# evaluation keys, each party posts its switching shares of the sum (veil party switch), the server combines
# them into the sum under the receiver's keys, and the receiver pulls it and decrypts it alone; the result is
# checked against the plaintext sum. The refusals: shares before the receiver, a share for another ciphertext
# (not kept: the honest share is taken afterwards), decryption shares as switching shares, another party's
# shares, a tenant speaking for another's party, a duplicate, garbage; a secret key as the receiver's. Then the
# limits (groups per tenant: 429; bytes per group: 413) and deletion (by the group's maker or the admin scope;
# 403 for another member, 404 for an outsider). Every loop is bounded.
#   test_serve_party_switch.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx" # served: the server needs a model, groups do not use it
declare -A tok
for t in p1 p2 p3 mallory; do tok[$t]=$("$veil" token add --store "$work/store" --tenant $t 2>/dev/null | tail -1); done
tok[root]=$("$veil" token add --store "$work/store" --tenant root --admin 2>/dev/null | tail -1)
start_server --tenant-max-groups 3
[ -n "$port" ] || { echo "the server did not start: $(cat "$work/server.log")"; exit 1; }
cd "$work" || exit 1
model=(--model "$work/h/model.onnx" --calibrate "$work/h/train.csv")
push() { # push PARTY PATH FILE: veil party push as tenant pPARTY
    VEIL_TOKEN=${tok[p$1]} "$veil" party push --server "$url" --to "$2" --in "$3" >"$work/push.out" 2>"$work/push.err"
}
pull() { # pull PARTY PATH FILE
    VEIL_TOKEN=${tok[p$1]} "$veil" party pull --server "$url" --from "$2" --out "$3" 2>"$work/pull.err"
}

# the group and its keys, combined by the server (as tests/test_serve_party.sh checks in detail)
"$veil" party init --parties 3 "${model[@]}" --out G --quiet 2>/dev/null || fail "party init"
for i in 1 2 3; do push $i /v1/groups/fed G/group || fail "party $i joins: $(cat push.err)"; done
push 1 /v1/groups/fed/plan G/plan || fail "the plan: $(cat push.err)"
for i in 1 2 3; do
    "$veil" party keygen --group G --party $i --round 1 --out P$i --quiet 2>/dev/null || fail "keygen $i"
    push $i /v1/groups/fed/shares P$i/round1.share || fail "party $i's round-1 shares: $(cat push.err)"
done
mkdir -p J/eval
pull 1 /v1/groups/fed/joint J/joint.keys || fail "the joint keys"
pull 1 /v1/groups/fed/round1.agg J/round1.agg || fail "the round-1 aggregates"
for i in 1 2 3; do
    "$veil" party keygen --group G --party $i --round 2 --in J --out P$i --quiet 2>/dev/null || fail "keygen 2 $i"
    push $i /v1/groups/fed/shares P$i/round2.share || fail "party $i's round-2 shares: $(cat push.err)"
done
pull 1 /v1/groups/fed/joint/eval J/eval/eval.keys || fail "the eval keys"

# each party's update: the model's encrypted outputs on rows of its own data; the server sums them
/usr/bin/python3 - "$work/h/test.csv" <<'PY'
import csv, sys
lines = list(csv.reader(open(sys.argv[1])))
for i in (1, 2, 3):
    csv.writer(open(f"u{i}.csv", "w")).writerows([lines[0]] + lines[1 + 3 * (i - 1):1 + 3 * i])
PY
for i in 1 2 3; do
    "$veil" encrypt --keys J --in u$i.csv --out x$i.ct --quiet 2>/dev/null || fail "party $i encrypts"
    "$veil" eval "${model[@]}" --eval-keys J/eval --in x$i.ct --out u$i.ct --quiet 2>/dev/null || fail "eval $i"
    "$veil" plain "${model[@]}" --in u$i.csv --out y$i.csv 2>/dev/null || fail "plain $i"
    push $i "/v1/groups/fed/updates?party=$i" u$i.ct || fail "party $i's update: $(cat push.err)"
done
/usr/bin/python3 - <<'PY'
# the outputs are logits under encryption (the sigmoid comes after decryption): sigmoid(the sum of the logits)
import csv, math
logit = lambda p: math.log(p / (1 - p))
ys = [[[logit(float(v)) for v in r] for r in csv.reader(open(f"y{i}.csv"))] for i in (1, 2, 3)]
csv.writer(open("plain_sum.csv", "w")).writerows(
    [[1 / (1 + math.exp(-(a + b + c))) for a, b, c in zip(*rows)] for rows in zip(*ys)])
PY
pull 1 /v1/groups/fed/sum sum.ct || fail "the sum"

# the receiver: party 1's own keys for the group's plan; only their public evaluation keys go to the server
"$veil" keygen --plan G/plan --out R --quiet 2>/dev/null || fail "the receiver's keys"
"$veil" party switch --group G --party 2 --keys P2 --in sum.ct --to R/eval --out S2 --smudging-bits 16 --quiet \
    2>"$work/err" || fail "party 2's switching shares: $(cat "$work/err")"
expect 409 "switching shares before the receiver's keys" "${tok[p2]}" POST "/v1/groups/fed/switch?party=2" S2
check "the refusal says what is missing" grep -q "no receiver yet" body
expect 409 "the switched set before the receiver" "${tok[p1]}" GET /v1/groups/fed/switch/to
expect 422 "a secret key as the receiver's keys" "${tok[p1]}" PUT /v1/groups/fed/switch/to R/secret.key
expect 422 "a CSV file as the receiver's keys" "${tok[p1]}" PUT /v1/groups/fed/switch/to u1.csv
expect 404 "an outsider PUTs the receiver" "${tok[mallory]}" PUT /v1/groups/fed/switch/to R/eval/eval.keys
push 1 /v1/groups/fed/switch/to R/eval/eval.keys || fail "the receiver's keys: $(cat push.err)"
expect 200 "the same receiver's keys again" "${tok[p2]}" PUT /v1/groups/fed/switch/to R/eval/eval.keys
"$veil" keygen --plan G/plan --out R2 --quiet 2>/dev/null || fail "another receiver's keys"
expect 409 "another receiver once one is set" "${tok[p2]}" PUT /v1/groups/fed/switch/to R2/eval/eval.keys
"$veil" encrypt --keys R --in u1.csv --out xr.ct --quiet 2>/dev/null || fail "the receiver encrypts"
expect 422 "a set under other keys as the set to switch" "${tok[p1]}" PUT /v1/groups/fed/switch/in xr.ct
for i in 1 2 3; do # each party fetches the receiver's keys from the server and switches the sum towards them
    pull $i /v1/groups/fed/sum s$i.ct || fail "party $i pulls the sum"
    mkdir -p "T$i/eval" && pull $i /v1/groups/fed/switch/to "T$i/eval/eval.keys" || fail "party $i pulls the receiver"
    "$veil" party switch --group G --party $i --keys P$i --in s$i.ct --to T$i/eval --out S$i --smudging-bits 16 \
        --quiet 2>"$work/err" || fail "party $i's switching shares: $(cat "$work/err")"
done
check "the receiver's keys came back unchanged" cmp -s R/eval/eval.keys T3/eval/eval.keys
# party 2 forges: shares of its own update instead of the sum (a share that would change the result)
"$veil" party switch --group G --party 2 --keys P2 --in u2.ct --to R/eval --out F2 --smudging-bits 16 --quiet \
    2>/dev/null || fail "party 2's shares of another ciphertext"
"$veil" party decrypt --group G --party 2 --keys P2 --in sum.ct --out D2 --smudging-bits 16 --quiet 2>/dev/null ||
    fail "party 2's decryption shares"
expect 403 "a tenant sending another party's shares" "${tok[p3]}" POST "/v1/groups/fed/switch?party=1" S1
push 1 "/v1/groups/fed/switch?party=1" S1 || fail "party 1's switching shares: $(cat push.err)"
check "one of three in, not switched yet" grep -q '"in":1,"parties":3,"switched":false' push.out
expect 422 "shares for another ciphertext" "${tok[p2]}" POST "/v1/groups/fed/switch?party=2" F2
check "the refusal names the party and the ciphertext" grep -q "party 2's share is for another ciphertext" body
expect 422 "decryption shares as switching shares" "${tok[p2]}" POST "/v1/groups/fed/switch?party=2" D2
expect 422 "party 1's shares as party 2's" "${tok[p2]}" POST "/v1/groups/fed/switch?party=2" S1
expect 409 "a duplicate" "${tok[p1]}" POST "/v1/groups/fed/switch?party=1" S1
expect 400 "shares without their party" "${tok[p2]}" POST /v1/groups/fed/switch S2
expect 404 "an outsider's shares" "${tok[mallory]}" POST "/v1/groups/fed/switch?party=2" S2
expect 409 "the switched set before all shares are in" "${tok[p1]}" GET /v1/groups/fed/switch
check "the answer counts the shares in" grep -q "1 of the 3 parties' switching shares are in" body
expect 409 "the set to switch after shares of the sum are in" "${tok[p1]}" PUT /v1/groups/fed/switch/in u1.ct
head -c 5000 /dev/urandom >junk
for t in "PUT /v1/groups/fed/switch/to" "PUT /v1/groups/fed/switch/in" "POST /v1/groups/fed/switch?party=2"; do
    code=$(as "${tok[p2]}" $t junk)
    [[ "$code" =~ ^4 ]] || fail "random bytes to $t: HTTP $code"
done
push 2 "/v1/groups/fed/switch?party=2" S2 || fail "party 2's honest shares after the refusals: $(cat push.err)"
push 3 "/v1/groups/fed/switch?party=3" S3 || fail "party 3's switching shares: $(cat push.err)"
check "the last share completes the switch" grep -q '"in":3,"parties":3,"switched":true' push.out
expect 409 "shares once the set is switched" "${tok[p2]}" POST "/v1/groups/fed/switch?party=2" S2
expect 404 "an outsider asks for the switched set" "${tok[mallory]}" GET /v1/groups/fed/switch
pull 1 /v1/groups/fed/switch z.ct || fail "the receiver pulls the switched set: $(cat pull.err)"
"$veil" decrypt --keys R --in z.ct --out z.csv 2>"$work/err" || fail "the receiver decrypts: $(cat "$work/err")"
"$veil" decrypt --keys R2 --in z.ct --out z2.csv 2>/dev/null && fail "another key holder decrypted the switched set"
/usr/bin/python3 - <<'PY' || fail "the switched sum, decrypted by the receiver, is not the plaintext sum"
import csv
a = [[float(v) for v in r] for r in csv.reader(open("z.csv"))]
b = [[float(v) for v in r] for r in csv.reader(open("plain_sum.csv"))]
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), (len(a), len(b))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
# the probabilities of these sums are near 0 or 1: compare the logits too, where they are not saturated
import math
logit = lambda p: math.log(p / (1 - p))
pairs = [(logit(x), logit(y)) for ra, rb in zip(a, b) for x, y in zip(ra, rb) if 1e-12 < y < 1 - 1e-9]
assert pairs, "no unsaturated output to compare"
worst_logit = max(abs(x - y) for x, y in pairs)
print(f"the sum of 3 updates switched to the receiver through the server, {len(a)}x{len(a[0])}: "
      f"largest difference from plain {worst:.2e} (logits: {worst_logit:.2e} over {len(pairs)})")
assert worst <= 1e-3 and worst_logit <= 1e-2, (worst, worst_logit)
PY
expect 200 "what the group holds" "${tok[p3]}" GET /v1/groups/fed
check "the description shows the switch" grep -q '"receiver":true,"switch_in":"sum","switch":3,"switched":true' body

# a 2-of-3 group: keys through the server (the dealing of the threshold keys by files, as tests/test_serve_party.sh
# does it through the server), the sum switched by parties 1 and 2 with party 3 offline
"$veil" party init --parties 3 --threshold 2 "${model[@]}" --out T --quiet 2>/dev/null || fail "party init --threshold 2"
for i in 1 2 3; do push $i /v1/groups/thr T/group || fail "party $i joins the 2-of-3 group: $(cat push.err)"; done
push 1 /v1/groups/thr/plan T/plan || fail "the 2-of-3 group's plan: $(cat push.err)"
for i in 1 2 3; do
    "$veil" party keygen --group T --party $i --round 1 --out Q$i --quiet 2>/dev/null || fail "2-of-3 keygen $i"
    push $i /v1/groups/thr/shares Q$i/round1.share || fail "2-of-3: party $i's round-1 shares: $(cat push.err)"
done
mkdir -p TJ/eval
pull 1 /v1/groups/thr/joint TJ/joint.keys || fail "the 2-of-3 joint keys"
pull 1 /v1/groups/thr/round1.agg TJ/round1.agg || fail "the 2-of-3 round-1 aggregates"
for i in 1 2 3; do
    "$veil" party keygen --group T --party $i --round 2 --in TJ --out Q$i --quiet 2>/dev/null || fail "2-of-3 keygen 2 $i"
    push $i /v1/groups/thr/shares Q$i/round2.share || fail "2-of-3: party $i's round-2 shares: $(cat push.err)"
done
pull 1 /v1/groups/thr/joint/eval TJ/eval/eval.keys || fail "the 2-of-3 eval keys"
for r in 3 4; do
    for i in 1 2 3; do
        "$veil" party keygen --group T --party $i --round $r --in Q1 Q2 Q3 --out Q$i --quiet 2>"$work/err" ||
            fail "2-of-3 keygen $r $i: $(cat "$work/err")"
    done
done
for i in 1 2 3; do
    "$veil" encrypt --keys TJ --in u$i.csv --out tx$i.ct --quiet 2>/dev/null || fail "2-of-3: party $i encrypts"
    "$veil" eval "${model[@]}" --eval-keys TJ/eval --in tx$i.ct --out t$i.ct --quiet 2>/dev/null || fail "2-of-3: eval $i"
    push $i "/v1/groups/thr/updates?party=$i" t$i.ct || fail "2-of-3: party $i's update: $(cat push.err)"
done
pull 1 /v1/groups/thr/sum tsum.ct || fail "the 2-of-3 sum"
"$veil" keygen --plan T/plan --out RT --quiet 2>/dev/null || fail "the 2-of-3 receiver's keys"
push 1 /v1/groups/thr/switch/to RT/eval/eval.keys || fail "the 2-of-3 receiver: $(cat push.err)"
for i in 1 2; do
    "$veil" party switch --group T --party $i --keys Q$i --set 1,2 --in tsum.ct --to RT/eval --out TS$i         --smudging-bits 16 --quiet 2>"$work/err" || fail "party $i's threshold switching shares: $(cat "$work/err")"
done
"$veil" party switch --group T --party 3 --keys Q3 --set 1,3 --in tsum.ct --to RT/eval --out TS3x --smudging-bits 16 \
    --quiet 2>/dev/null || fail "party 3's shares for another set"
expect 422 "N-out-of-N switching shares in a 2-of-3 group" "${tok[p1]}" POST "/v1/groups/thr/switch?party=1" S1
# party 1 forges first (shares of its own update): fewer than t shares cannot be checked against the sum, so it
# is taken; party 2's honest shares then reveal it, and the server removes party 1's (the message says so)
"$veil" party switch --group T --party 1 --keys Q1 --set 1,2 --in t1.ct --to RT/eval --out TF1 --smudging-bits 16 \
    --quiet 2>/dev/null || fail "party 1's shares of another ciphertext"
push 1 "/v1/groups/thr/switch?party=1" TF1 || fail "party 1's first shares: $(cat push.err)"
expect 422 "the set's shares do not combine" "${tok[p2]}" POST "/v1/groups/thr/switch?party=2" TS2
check "the refusal names party 1's shares and removes them" grep -q "party 1's share is for another ciphertext.*party 1's shares are removed" body
expect 409 "nothing switched" "${tok[p1]}" GET /v1/groups/thr/switch
push 1 "/v1/groups/thr/switch?party=1" TS1 || fail "party 1's threshold switching shares: $(cat push.err)"
expect 409 "shares for another set of parties" "${tok[p3]}" POST "/v1/groups/thr/switch?party=3" TS3x
expect 409 "the switched set before the set is complete" "${tok[p1]}" GET /v1/groups/thr/switch
push 2 "/v1/groups/thr/switch?party=2" TS2 || fail "party 2's threshold switching shares: $(cat push.err)"
check "the set's last share completes the switch" grep -q '"switched":true' push.out
pull 1 /v1/groups/thr/switch tz.ct || fail "the 2-of-3 switched set"
"$veil" decrypt --keys RT --in tz.ct --out tz.csv 2>"$work/err" || fail "the 2-of-3 receiver decrypts: $(cat "$work/err")"
/usr/bin/python3 - <<'PY' || fail "the 2-of-3 switched sum is not the plaintext sum"
import csv
a = [[float(v) for v in r] for r in csv.reader(open("tz.csv"))]
b = [[float(v) for v in r] for r in csv.reader(open("plain_sum.csv"))]
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), (len(a), len(b))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print(f"2-of-3, party 3 offline: the sum switched to the receiver, largest difference from plain {worst:.2e}")
assert worst <= 1e-3, worst
PY

# limits: a tenant is a member of 3 groups at most here (--tenant-max-groups 3)
"$veil" party init --parties 2 --preset ckks-n8192-d2 --out H --quiet 2>/dev/null || fail "party init H"
expect 201 "party 1's third group" "${tok[p1]}" PUT /v1/groups/second H/group
expect 429 "party 1's fourth group, past its limit" "${tok[p1]}" PUT /v1/groups/third H/group
check "the refusal names the limit" grep -q "member of 3 groups, its limit" body
check "with Retry-After" grep -qi '^Retry-After: 60' headers
expect 200 "joining a group it is in already is no new group" "${tok[p1]}" PUT /v1/groups/second H/group
# deletion: by the group's maker, or the admin scope
expect 404 "an outsider deletes a group" "${tok[mallory]}" DELETE /v1/groups/fed
expect 200 "party 2 joins the second group" "${tok[p2]}" PUT /v1/groups/second H/group
expect 403 "a member that did not make the group deletes it" "${tok[p2]}" DELETE /v1/groups/second
expect 200 "its maker deletes it" "${tok[p1]}" DELETE /v1/groups/second
expect 404 "a deleted group is gone" "${tok[p2]}" GET /v1/groups/second
expect 404 "a deleted group is gone for its maker too" "${tok[p1]}" DELETE /v1/groups/second
expect 201 "the deleted group no longer counts against the limit" "${tok[p1]}" PUT /v1/groups/third H/group
# bytes per group: a server restarted with a limit below what the group holds refuses any more of it
stop_server || fail "the server's exit after SIGTERM (a sanitizer's report: $(tail -3 "$work/server.log"))"
# what a crash may leave: a group's removal half done, a temporary file of an interrupted write; gone at start
mkdir -p "$work/store/groups/.deleted.ghost" && echo x >"$work/store/groups/.deleted.ghost/sum"
echo x >"$work/store/groups/fed/sum.tmp.0123456789abcdef"
start_server --group-max-bytes 64K
check "a removal a crash interrupted is finished at start" test ! -e "$work/store/groups/.deleted.ghost"
check "a temporary file of an interrupted write is removed at start" test ! -e "$work/store/groups/fed/sum.tmp.0123456789abcdef"
expect 413 "an object past the group's byte limit" "${tok[p1]}" PUT /v1/groups/fed/switch/in u1.ct
check "the refusal names the limit" grep -q "past its limit of 65536 bytes" body
expect 200 "the group is still read" "${tok[p1]}" GET /v1/groups/fed
expect 200 "the admin scope deletes any group" "${tok[root]}" DELETE /v1/groups/fed
expect 404 "the group is gone for its members" "${tok[p1]}" GET /v1/groups/fed
check "nothing of it is left in the store" bash -c "! ls -a '$work/store/groups' | grep -q fed"
expect 200 "the server still answers" "${tok[p1]}" GET /v1/groups/third
stop_server || fail "the server's exit after SIGTERM (a sanitizer's report: $(tail -3 "$work/server.log"))"
[ "$fails" = 0 ] && echo "serve party switch: ok" || { echo "serve party switch: $fails failures"; exit 1; }
