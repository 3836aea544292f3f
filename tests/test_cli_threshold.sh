#!/usr/bin/env bash
# veil party, t-out-of-N: three hospitals make a 2-out-of-3 group for the breast-cancer model
# (examples/hospital), deal their shares (rounds 3 and 4), and every pair of them decrypts the server's result
# (and switches it to a receiver) without the third, offline party; the results match `veil plain`. Refusals:
# one share (fewer than the threshold), a share of a party outside the set, shares made for different sets,
# a --set without the party or below the threshold, the dealing in an N-out-of-N group, a deal edited in
# transit, a threshold key under another party's number, --threshold out of range.
#   test_cli_threshold.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect, compare

/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
h="$work/h"
model=(--model "$h/model.onnx" --calibrate "$h/train.csv")
cd "$work" || exit 1
head -40 "$h/test.csv" >x.csv

# keys: rounds 1 and 2 as for N-out-of-N, the dealing (3: deals sealed to box keys; 4: threshold keys)
run "$veil" party init --parties 3 --threshold 2 "${model[@]}" --out G
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 1 --out P$i; done
for i in 1 2 3; do [ -s P$i/box.key ] || fail "round 1 wrote no P$i/box.key"; done
run "$veil" party combine --group G --round 1 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i; done
run "$veil" party combine --group G --round 2 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 3 --in P1 P2 P3 --out P$i; done
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 4 --in P3 P1 P2 --out P$i; done
for i in 1 2 3; do [ "$(stat -c %a P$i/threshold.key)" = 600 ] || fail "P$i/threshold.key is not 0600"; done
run "$veil" encrypt --keys JOINT --in x.csv --out x.ct
run "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out y.ct
"$veil" plain "${model[@]}" --in x.csv --out plain.csv

# every pair decrypts with the third party offline; and switches to a receiver
run "$veil" keygen --plan G/plan --out R # the group's parameters (its plan has room for the smudging)
for pair in 1,2 1,3 2,3; do
    a=${pair%,*} b=${pair#*,}
    for i in $a $b; do
        run "$veil" party decrypt --group G --party $i --keys P$i --set $pair --in y.ct --out D$i.$a$b
    done
    run "$veil" party combine --group G --decrypt y.ct --in D$b.$a$b D$a.$a$b --out y$a$b.csv
    compare y$a$b.csv plain.csv 1e-3
    for i in $a $b; do
        run "$veil" party switch --group G --party $i --keys P$i --set $pair --in y.ct --to R/eval \
            --out S$i.$a$b
    done
    run "$veil" party combine --group G --switch y.ct --to R/eval --in S$a.$a$b S$b.$a$b --out z$a$b.ct
    "$veil" decrypt --keys R --in z$a$b.ct --out z$a$b.csv || fail "the receiver's decryption ($pair)"
    compare z$a$b.csv plain.csv 1e-3
done
# all three (a set of 3 >= t) decrypt too, and the N-out-of-N shares keep working in a threshold group
for i in 1 2 3; do run "$veil" party decrypt --group G --party $i --keys P$i --set 1,2,3 --in y.ct --out T$i; done
run "$veil" party combine --group G --decrypt y.ct --in T1 T2 T3 --out y123.csv
compare y123.csv plain.csv 1e-3
for i in 1 2 3; do run "$veil" party decrypt --group G --party $i --keys P$i --in y.ct --out N$i; done
run "$veil" party combine --group G --decrypt y.ct --in N1 N2 N3 --out yN.csv
compare yN.csv plain.csv 1e-3

# refusals: each a clear message and its exit code, nothing written
# smudging of 2^24 in two shares may move an output by 0.0083 at the plan's scale 2^40 (N = 8192): beyond 1e-3
for i in 1 2; do
    run "$veil" party decrypt --group G --party $i --keys P$i --set 1,2 --in y.ct --out W$i --smudging-bits 24
done
expect 1 "2 shares' smudging (2^24.0) may move an output by 0.0083" "$veil" party combine --group G --decrypt y.ct \
    --in W1 W2 --out out.bad
run "$veil" party combine --group G --decrypt y.ct --in W1 W2 --out w.csv --tolerance 0.02
compare w.csv plain.csv 2e-2
expect 3 "fewer than the group.s threshold of 2" "$veil" party combine --group G --decrypt y.ct --in D1.12 --out out.bad
expect 4 "made for another set of parties" "$veil" party combine --group G --decrypt y.ct --in D1.12 D3.13 \
    --out out.bad
expect 4 "made for another set of parties" "$veil" party combine --group G --decrypt y.ct --in D1.12 D3.23 \
    --out out.bad
expect 4 "expected a threshold decryption share" "$veil" party combine --group G --decrypt y.ct --in D1.12 N2 \
    --out out.bad
expect 2 "does not include party 1" "$veil" party decrypt --group G --party 1 --keys P1 --set 2,3 --in y.ct \
    --out out.bad
expect 2 "fewer than this group's threshold 2" "$veil" party decrypt --group G --party 1 --keys P1 --set 1 \
    --in y.ct --out out.bad
expect 2 "appears twice" "$veil" party decrypt --group G --party 1 --keys P1 --set 1,1 --in y.ct --out out.bad
expect 2 "party numbers 1 to 3" "$veil" party decrypt --group G --party 1 --keys P1 --set 1,4 --in y.ct --out out.bad
expect 4 "is party 2's, not party 1's" "$veil" party decrypt --group G --party 1 --keys P2 --set 1,2 --in y.ct \
    --out out.bad
mkdir E && cp P1/* E/ && cp P2/deal.to3 E/deal.to3
printf '\x55' | dd of=E/deal.to3 bs=1 seek=200 conv=notrunc 2>/dev/null
expect 3 "" "$veil" party keygen --group G --party 3 --round 4 --in E P2 P3 --out P3
expect 2 "all 3 parties" "$veil" party keygen --group G --party 1 --round 3 --in P1 P2 --out P1
expect 3 "already holds this party's deals" "$veil" party keygen --group G --party 1 --round 3 --in P1 P2 P3 \
    --out P1
expect 2 "2 to 3" "$veil" party init --parties 3 --threshold 4 "${model[@]}" --out out.bad
run "$veil" party init --parties 2 "${model[@]}" --out G2
expect 2 "no dealing" "$veil" party keygen --group G2 --party 1 --round 3 --in P1 P2 --out P1
expect 2 "N-out-of-N" "$veil" party decrypt --group G2 --party 1 --keys P1 --set 1,2 --in y.ct --out out.bad
"$veil" party --help >help.txt || fail "party --help"
grep -q -- "--round 3" help.txt || fail "party --help: no --round 3"

[ "$fails" = 0 ] && echo "cli threshold: ok"
exit "$fails"
