#!/usr/bin/env bash
# `veil serve` as a multi-party aggregator (/v1/groups; docs/multiparty.md, "The server as aggregator"), on
# loopback: three tenants (parties 1, 2, 3) run key generation through the server (veil party push|pull), which
# combines both rounds itself (checked byte for byte against a party's own combination), each encrypts its
# update under the joint public key, the server sums the three, and the parties decrypt the sum together from
# the decryption shares the server relays; the result is checked against the plaintext sum. Then a 2-of-3 group:
# box keys and sealed deals through the server, and the sum decrypted by parties 1 and 2 with party 3 offline.
# The refusals: a share of another group, a duplicate, a share or update too early, a tenant outside the group,
# a party number another tenant speaks for, a deal fetched by another than its recipient, a share for another
# decrypting set, a share the server cannot store (nothing of it kept). Every loop is bounded.
#   test_serve_party.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/h/train.csv" "$work/models/breast_cancer.calib.csv"
printf '{"calibrate": "breast_cancer.calib.csv"}\n' >"$work/models/breast_cancer.json"
declare -A tok
for t in p1 p2 p3 mallory; do tok[$t]=$("$veil" token add --store "$work/store" --tenant $t 2>/dev/null | tail -1); done
start_server
cd "$work" || exit 1
model=(--model "$work/h/model.onnx" --calibrate "$work/h/train.csv")
push() { # push PARTY PATH FILE: veil party push as tenant pPARTY
    VEIL_TOKEN=${tok[p$1]} "$veil" party push --server "$url" --to "$2" --in "$3" >"$work/push.out" 2>"$work/push.err"
}
pull() { # pull PARTY PATH FILE
    VEIL_TOKEN=${tok[p$1]} "$veil" party pull --server "$url" --from "$2" --out "$3" 2>"$work/pull.err"
}

# the group, made by party 1 and joined by the others (the same object); nobody else sees it
"$veil" party init --parties 3 "${model[@]}" --out G --quiet 2>/dev/null || fail "party init"
for i in 1 2 3; do push $i /v1/groups/fed G/group || fail "party $i joins: $(cat push.err)"; done
expect 404 "a tenant outside the group does not see it" "${tok[mallory]}" GET /v1/groups/fed
expect 200 "a member sees it" "${tok[p2]}" GET /v1/groups/fed
check "the group has 3 parties" grep -q '"parties":3' body
"$veil" party init --parties 3 "${model[@]}" --out G2 --quiet 2>/dev/null || fail "party init G2"
expect 409 "another group object under the same name" "${tok[p1]}" PUT /v1/groups/fed G2/group
expect 422 "not a group object" "${tok[p1]}" PUT /v1/groups/bad "$work/h/test.csv"

# round 1 through the server
for i in 1 2 3; do "$veil" party keygen --group G --party $i --round 1 --out P$i --quiet 2>/dev/null || fail "keygen $i"; done
push 1 /v1/groups/fed/shares P1/round1.share || fail "party 1's round-1 shares: $(cat push.err)"
expect 409 "the others' shares before all are in" "${tok[p1]}" GET /v1/groups/fed/shares/1/1
expect 409 "a duplicated share" "${tok[p1]}" POST /v1/groups/fed/shares P1/round1.share
expect 403 "a tenant sending another party's shares" "${tok[p3]}" POST /v1/groups/fed/shares P1/round1.share
"$veil" party keygen --group G2 --party 2 --round 1 --out O2 --quiet 2>/dev/null || fail "keygen G2"
expect 409 "a share of another group" "${tok[p2]}" POST /v1/groups/fed/shares O2/round1.share
check "the refusal says so" grep -q "another group" body
expect 404 "a non-member's share" "${tok[mallory]}" POST /v1/groups/fed/shares P2/round1.share
expect 422 "a secret share" "${tok[p2]}" POST /v1/groups/fed/shares P2/secret.share
# the group's plan, so that the server combines the round shares itself
expect 422 "a plan that is not one" "${tok[p1]}" PUT /v1/groups/fed/plan G/group
push 1 /v1/groups/fed/plan G/plan || fail "the plan: $(cat push.err)"
expect 200 "the same plan again" "${tok[p2]}" PUT /v1/groups/fed/plan G/plan
check "the server says it is the same" grep -q "same" body
expect 422 "a CSV file as the plan" "${tok[p2]}" PUT /v1/groups/fed/plan "$work/h/test.csv"
expect 409 "an update before the joint keys" "${tok[p1]}" POST "/v1/groups/fed/updates?party=1" P1/round1.share
expect 409 "the joint keys before all round-1 shares are in" "${tok[p1]}" GET /v1/groups/fed/joint
expect 409 "the round-1 aggregates before all round-1 shares are in" "${tok[p1]}" GET /v1/groups/fed/round1.agg
push 2 /v1/groups/fed/shares P2/round1.share || fail "party 2's round-1 shares: $(cat push.err)"
push 3 /v1/groups/fed/shares P3/round1.share || fail "party 3's round-1 shares: $(cat push.err)"
check "the last share completes round 1 and the server combines it" grep -q '"combined":true' push.out
# each party fetches what the server combined (the joint key set and the round-1 aggregates); party 1 also
# fetches the others' shares and combines them itself: the server's keys are the same bytes
for i in 1 2 3; do
    mkdir -p "V$i/G" "V$i/JOINT"
    cp G/plan G/group "V$i/G/"
    pull $i /v1/groups/fed/joint "V$i/JOINT/joint.keys" || fail "party $i pulls the joint keys"
    pull $i /v1/groups/fed/round1.agg "V$i/JOINT/round1.agg" || fail "party $i pulls the round-1 aggregates"
    cp "V$i/JOINT/joint.keys" "V$i/G/"
done
for j in 1 2 3; do mkdir -p "L/P$j" && pull 1 /v1/groups/fed/shares/1/$j "L/P$j/round1.share" || fail "pull 1 $j"; done
mkdir -p L/G && cp G/plan G/group L/G/
"$veil" party combine --group L/G --round 1 --in L/P1 L/P2 L/P3 --out L/JOINT --quiet 2>/dev/null || fail "party 1 combines round 1"
check "the server's joint keys are those party 1 combined" cmp -s L/JOINT/joint.keys V1/JOINT/joint.keys
check "the server's round-1 aggregates are those party 1 combined" cmp -s L/JOINT/round1.agg V1/JOINT/round1.agg
# the PUT of the joint keys still answers: the same bytes are accepted, others refused
expect 200 "a party's PUT of the same joint keys" "${tok[p1]}" PUT /v1/groups/fed/joint L/JOINT/joint.keys
expect 422 "a secret share as the joint keys" "${tok[p1]}" PUT /v1/groups/fed/joint P1/secret.share
pull 2 /v1/groups/fed/joint joint.keys || fail "pull the joint keys"

# round 2 through the server: it combines the evaluation keys
for i in 1 2 3; do
    "$veil" party keygen --group G --party $i --round 2 --in V$i/JOINT --out P$i --quiet 2>/dev/null || fail "keygen 2 $i"
done
expect 409 "round-2 shares before all are in" "${tok[p1]}" GET /v1/groups/fed/shares/2/1
expect 409 "the eval keys before all round-2 shares are in" "${tok[p1]}" GET /v1/groups/fed/joint/eval
for i in 1 2 3; do push $i /v1/groups/fed/shares P$i/round2.share || fail "party $i's round-2 shares: $(cat push.err)"; done
check "the last round-2 share completes it and the server combines it" grep -q '"combined":true' push.out
for i in 1 2 3; do
    mkdir -p "V$i/JOINT/eval"
    pull $i /v1/groups/fed/joint/eval "V$i/JOINT/eval/eval.keys" || fail "party $i pulls the eval keys"
done
for j in 1 2 3; do pull 1 /v1/groups/fed/shares/2/$j "L/P$j/round2.share" || fail "pull 2 1 $j"; done
"$veil" party combine --group L/G --round 2 --in L/P1 L/P2 L/P3 --out L/JOINT --quiet 2>/dev/null || fail "party 1 combines round 2"
check "the server's eval keys are those party 1 combined" cmp -s L/JOINT/eval/eval.keys V1/JOINT/eval/eval.keys

# each party's encrypted update, a ciphertext set under the joint key (here: the model's encrypted outputs on
# rows of its own data, evaluated with the joint evaluation keys; FedAvg sends its model times its record
# count), and the server's sum of the three
/usr/bin/python3 - "$work/h/test.csv" <<'PY'
import csv, sys
lines = list(csv.reader(open(sys.argv[1])))
for i in (1, 2, 3):  # each party's rows of its own (inside the range the keys were calibrated for)
    csv.writer(open(f"u{i}.csv", "w")).writerows([lines[0]] + lines[1 + 4 * (i - 1):1 + 4 * i])
PY
for i in 1 2 3; do
    "$veil" encrypt --keys V$i/JOINT --in u$i.csv --out x$i.ct --quiet 2>/dev/null || fail "party $i encrypts"
    "$veil" eval "${model[@]}" --eval-keys V$i/JOINT/eval --in x$i.ct --out u$i.ct --quiet 2>/dev/null || fail "eval $i"
    "$veil" plain "${model[@]}" --in u$i.csv --out y$i.csv 2>/dev/null || fail "plain $i"
done
/usr/bin/python3 - <<'PY'
# the model's encrypted outputs are logits (its sigmoid is applied after decryption): the plaintext of the sum
# is sigmoid(the sum of the three logits)
import csv, math
logit = lambda p: math.log(p / (1 - p))
ys = [[[logit(float(v)) for v in r] for r in csv.reader(open(f"y{i}.csv"))] for i in (1, 2, 3)]
csv.writer(open("plain_sum.csv", "w")).writerows(
    [[1 / (1 + math.exp(-(a + b + c))) for a, b, c in zip(*rows)] for rows in zip(*ys)])
PY
push 1 "/v1/groups/fed/updates?party=1&records=30" u1.ct || fail "party 1's update: $(cat push.err)"
expect 409 "the sum before all updates are in" "${tok[p1]}" GET /v1/groups/fed/sum
expect 409 "a duplicated update" "${tok[p1]}" POST "/v1/groups/fed/updates?party=1&records=30" u1.ct
expect 400 "an update without its party" "${tok[p2]}" POST /v1/groups/fed/updates u2.ct
expect 400 "a record count of 0" "${tok[p2]}" POST "/v1/groups/fed/updates?party=2&records=0" u2.ct
expect 422 "an update that is not a ciphertext set" "${tok[p2]}" POST "/v1/groups/fed/updates?party=2" G/group
push 2 "/v1/groups/fed/updates?party=2&records=50" u2.ct || fail "party 2's update: $(cat push.err)"
push 3 "/v1/groups/fed/updates?party=3&records=20" u3.ct || fail "party 3's update: $(cat push.err)"
expect 200 "the sum" "${tok[p3]}" GET /v1/groups/fed/sum
check "the sum declares 100 records" grep -qi '^X-Veil-Records: 100' headers
expect 404 "a non-member asks for the sum" "${tok[mallory]}" GET /v1/groups/fed/sum

# joint decryption: each party's share through the server, then each fuses all three itself
for i in 1 2 3; do
    pull $i /v1/groups/fed/sum sum$i.ct || fail "party $i pulls the sum"
    "$veil" party decrypt --group V$i/G --party $i --keys P$i --in sum$i.ct --out D$i --smudging-bits 16 \
        --quiet 2>"$work/err" || fail "party $i's decryption share: $(cat "$work/err")"
done
check "every party received the same sum" bash -c "cmp -s sum1.ct sum2.ct && cmp -s sum1.ct sum3.ct"
push 1 "/v1/groups/fed/decrypt?party=1" D1 || fail "party 1's decryption share: $(cat push.err)"
expect 409 "the shares before all are in" "${tok[p2]}" GET /v1/groups/fed/decrypt/1
expect 409 "a duplicated decryption share" "${tok[p1]}" POST "/v1/groups/fed/decrypt?party=1" D1
expect 422 "a secret share as a decryption share" "${tok[p2]}" POST "/v1/groups/fed/decrypt?party=2" P2/secret.share
for i in 2 3; do push $i "/v1/groups/fed/decrypt?party=$i" D$i || fail "party $i's decryption share: $(cat push.err)"; done
for i in 1 2 3; do
    for j in 1 2 3; do pull $i /v1/groups/fed/decrypt/$j V$i/D$j || fail "party $i pulls share $j"; done
    "$veil" party combine --group V$i/G --decrypt sum$i.ct --in V$i/D1 V$i/D2 V$i/D3 --out sum$i.csv --quiet \
        2>"$work/err" || fail "party $i fuses: $(cat "$work/err")"
done
/usr/bin/python3 - <<'PY' || fail "the jointly decrypted sum is not the plaintext sum"
import csv
b = [[float(v) for v in r] for r in csv.reader(open("plain_sum.csv"))]
for i in (1, 2, 3):
    a = [[float(v) for v in r] for r in csv.reader(open(f"sum{i}.csv"))]
    assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), (len(a), len(b))
    worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
    print(f"party {i}: the sum of 3 updates, {len(a)}x{len(a[0])}, largest difference from plain {worst:.2e}")
    assert worst <= 1e-3, worst
PY
# garbage and damaged objects: a 4xx, never a crash (the server answers afterwards)
head -c 3000 /dev/urandom >junk
head -c 20000 P1/round1.share >cut.share
for t in "PUT /v1/groups/junk" "POST /v1/groups/fed/shares" "PUT /v1/groups/fed/joint" \
    "POST /v1/groups/fed/updates?party=1" "POST /v1/groups/fed/decrypt?party=1"; do
    code=$(as "${tok[p1]}" $t junk)
    [[ "$code" =~ ^4 ]] || fail "random bytes to $t: HTTP $code"
    code=$(as "${tok[p1]}" $t cut.share)
    [[ "$code" =~ ^4 ]] || fail "a cut-off object to $t: HTTP $code"
done
expect 404 "a share path out of range" "${tok[p1]}" GET /v1/groups/fed/shares/1/4
expect 404 "a decryption share path out of range" "${tok[p1]}" GET /v1/groups/fed/decrypt/0
expect 400 "a group name with a dot first" "${tok[p1]}" GET /v1/groups/.hidden
expect 200 "the server still answers" "${tok[p1]}" GET /v1/groups/fed
# the groups survive a restart (stored as key bundles are)
stop_server
start_server
expect 200 "the group after a restart" "${tok[p1]}" GET /v1/groups/fed
check "its state after a restart" grep -q '"round1":3,"round2":3,"joint":true,"updates":3,"sum":true,"decrypt":3,"plan":true,"eval":true' body

# a 2-of-3 group through the server: the server combines round 1, relays the box keys and the sealed deals
# (each only to its recipient), sums the parties' encrypted rows, and two parties decrypt with party 3 offline
"$veil" party init --parties 3 --threshold 2 "${model[@]}" --out T --quiet 2>/dev/null || fail "party init --threshold 2"
for i in 1 2 3; do push $i /v1/groups/thr T/group || fail "party $i joins the 2-of-3 group: $(cat push.err)"; done
push 1 /v1/groups/thr/plan T/plan || fail "the 2-of-3 group's plan: $(cat push.err)"
for i in 1 2 3; do
    "$veil" party keygen --group T --party $i --round 1 --out Q$i --quiet 2>/dev/null || fail "2-of-3 keygen $i"
    push $i /v1/groups/thr/shares Q$i/round1.share || fail "2-of-3: party $i's round-1 shares: $(cat push.err)"
done
check "the server combined the 2-of-3 group's round 1" grep -q '"combined":true' push.out
mkdir -p TJ/eval
pull 1 /v1/groups/thr/joint TJ/joint.keys || fail "the 2-of-3 joint keys"
pull 1 /v1/groups/thr/round1.agg TJ/round1.agg || fail "the 2-of-3 round-1 aggregates"
for i in 1 2 3; do
    "$veil" party keygen --group T --party $i --round 2 --in TJ --out Q$i --quiet 2>/dev/null || fail "2-of-3 keygen 2 $i"
    push $i /v1/groups/thr/shares Q$i/round2.share || fail "2-of-3: party $i's round-2 shares: $(cat push.err)"
done
pull 1 /v1/groups/thr/joint/eval TJ/eval/eval.keys || fail "the 2-of-3 eval keys"
push 1 /v1/groups/thr/boxkeys Q1/box.key || fail "party 1's box key: $(cat push.err)"
expect 409 "the box keys before all are in" "${tok[p1]}" GET /v1/groups/thr/boxkeys/1
expect 403 "a tenant sending another party's box key" "${tok[p2]}" POST /v1/groups/thr/boxkeys Q1/box.key
expect 409 "a box key in an N-out-of-N group" "${tok[p2]}" POST /v1/groups/fed/boxkeys Q2/box.key
for i in 2 3; do push $i /v1/groups/thr/boxkeys Q$i/box.key || fail "party $i's box key: $(cat push.err)"; done
for i in 1 2 3; do # each party: the box keys of all, then its deals, through the server
    for k in 1 2 3; do mkdir -p "W$i/Q$k" && pull $i /v1/groups/thr/boxkeys/$k "W$i/Q$k/box.key" || fail "box key $k to $i"; done
    "$veil" party keygen --group T --party $i --round 3 --in W$i/Q1 W$i/Q2 W$i/Q3 --out Q$i --quiet 2>"$work/err" ||
        fail "party $i deals: $(cat "$work/err")"
    for j in 1 2 3; do push $i /v1/groups/thr/deals Q$i/deal.to$j || fail "party $i's deal for $j: $(cat push.err)"; done
done
expect 409 "a deal twice" "${tok[p1]}" POST /v1/groups/thr/deals Q1/deal.to2
expect 403 "a deal fetched by another party than its recipient" "${tok[p1]}" GET /v1/groups/thr/deals/2/3
expect 404 "a deal fetched by an outsider" "${tok[mallory]}" GET /v1/groups/thr/deals/2/3
expect 422 "a box key as a deal" "${tok[p1]}" POST /v1/groups/thr/deals Q1/box.key
for j in 1 2 3; do
    for k in 1 2 3; do pull $j /v1/groups/thr/deals/$k/$j "W$j/Q$k/deal.to$j" || fail "deal $k to $j"; done
    "$veil" party keygen --group T --party $j --round 4 --in W$j/Q1 W$j/Q2 W$j/Q3 --out Q$j --quiet 2>"$work/err" ||
        fail "party $j's threshold key: $(cat "$work/err")"
done
# each party encrypts its rows under the joint key; the server sums the three sets of encrypted rows
# (the model's outputs on each party's rows, evaluated with the group's joint evaluation keys, as above)
for i in 1 2 3; do
    "$veil" encrypt --keys TJ --in u$i.csv --out tx$i.ct --quiet 2>/dev/null || fail "2-of-3: party $i encrypts"
    "$veil" eval "${model[@]}" --eval-keys TJ/eval --in tx$i.ct --out t$i.ct --quiet 2>/dev/null || fail "2-of-3: eval $i"
    push $i "/v1/groups/thr/updates?party=$i&records=4" t$i.ct || fail "2-of-3: party $i's update: $(cat push.err)"
done
pull 1 /v1/groups/thr/sum tsum.ct || fail "the 2-of-3 sum"
# party 3 is offline: parties 1 and 2 decrypt with the set {1,2}
for i in 1 2; do
    "$veil" party decrypt --group T --party $i --keys Q$i --set 1,2 --in tsum.ct --out E$i --smudging-bits 16 --quiet \
        2>"$work/err" || fail "party $i's threshold share: $(cat "$work/err")"
done
"$veil" party decrypt --group T --party 3 --keys Q3 --set 1,3 --in tsum.ct --out E3x --smudging-bits 16 --quiet 2>/dev/null ||
    fail "party 3's share for another set"
expect 422 "an N-out-of-N share in a 2-of-3 group" "${tok[p1]}" POST "/v1/groups/thr/decrypt?party=1" D1
# a share that cannot be stored (the server under a file size limit that the share is over, the record of the set
# it names not): refused, and that record not kept either (it would hold every later share to that set)
stop_server
printf '#!/usr/bin/env bash\ntrap "" XFSZ\nulimit -f 16\nexec "%s" "$@"\n' "$veil" >"$work/limited.sh"
chmod +x "$work/limited.sh"
unlimited=$veil veil=$work/limited.sh
start_server
veil=$unlimited
[ "$(stat -c %s E1)" -gt 32768 ] || fail "party 1's threshold share is over the server's file size limit"
expect 500 "a share the server cannot store" "${tok[p1]}" POST "/v1/groups/thr/decrypt?party=1" E1
[ ! -e "$work/store/groups/thr/dset" ] || fail "the set of a share not stored is kept"
[ ! -e "$work/store/groups/thr/d.p1" ] || fail "a share not stored is kept"
stop_server
start_server
push 1 "/v1/groups/thr/decrypt?party=1" E1 || fail "party 1's threshold share: $(cat push.err)"
expect 409 "the threshold shares before the set is complete" "${tok[p1]}" GET /v1/groups/thr/decrypt/1
expect 409 "a share for another set" "${tok[p3]}" POST "/v1/groups/thr/decrypt?party=3" E3x
expect 422 "party 2's shares sent as party 1's" "${tok[p1]}" POST "/v1/groups/thr/decrypt?party=1" E2
push 2 "/v1/groups/thr/decrypt?party=2" E2 || fail "party 2's threshold share: $(cat push.err)"
expect 404 "a party outside the set" "${tok[p1]}" GET /v1/groups/thr/decrypt/3
for j in 1 2; do pull 1 /v1/groups/thr/decrypt/$j TE$j || fail "threshold share $j"; done
mkdir -p TG && cp T/plan T/group TJ/joint.keys TG/
"$veil" party combine --group TG --decrypt tsum.ct --in TE1 TE2 --out tsum.csv --quiet 2>"$work/err" ||
    fail "parties 1 and 2 fuse: $(cat "$work/err")"
/usr/bin/python3 - <<'PY' || fail "the 2-of-3 decryption of the sum is not the plaintext sum"
import csv
b = [[float(v) for v in r] for r in csv.reader(open("plain_sum.csv"))]
a = [[float(v) for v in r] for r in csv.reader(open("tsum.csv"))]
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), (len(a), len(b))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print(f"2-of-3, party 3 offline: the sum of 3 updates, {len(a)}x{len(a[0])}, largest difference from plain {worst:.2e}")
assert worst <= 1e-3, worst
PY
[ "$fails" = 0 ] && echo "serve party: ok" || { echo "serve party: $fails failures"; exit 1; }
