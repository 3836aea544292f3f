#!/usr/bin/env bash
# veil train --mpi (tools/mpi.c, veil_train_split in veil/train.h; docs/scale.md "Batch work over MPI"): logistic
# regression on the breast-cancer data twice over (910 records, 4 ciphertexts of records at 256 each) with 2, 3
# and 4 ranks (oversubscribed): the model file is byte for byte the one-process `veil train`'s (the ranks' partial
# gradients are summed exactly), and its weights are within 1e-3 of `veil train --plain`; --dp-epsilon with
# --mpi, and a missing data file, are refused; a rank killed in the middle (kill -9) fails the job, with
# mpirun's message naming the rank, and nothing is written. Each rank loads only its share (mapped, or dealt by
# rank 0: VEIL_MPI_DEAL=1), over one set or two; a changed byte in the file is refused, nothing written.
#   test_mpi_train.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
# Open MPI's plugins keep allocations LeakSanitizer cannot name (see test_mpi.sh)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { # mpi RANKS ARGS...: veil under mpirun (root in containers; more ranks than cores)
    local n=$1
    shift
    timeout -k 5 300 mpirun --allow-run-as-root --oversubscribe -n "$n" "$veil" "$@"
}
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
cd "$work" || exit 1
/usr/bin/python3 "$src/examples/training/make_data.py" . >/dev/null || exit 1
(cat breast_train.csv; tail -n +2 breast_train.csv) >twice.csv # 910 records: 4 ciphertexts of 256
"$veil" keygen --train logistic --features 30 --iterations 2 --out keys --quiet || exit 1
"$veil" encrypt --keys keys --in twice.csv --labels-column label --out train.ct --quiet || exit 1
"$veil" train --eval-keys keys/eval --in train.ct --iterations 2 --out one.ct --quiet || exit 1

for ranks in 2 3 4; do
    mpi $ranks train --mpi --eval-keys keys/eval --in train.ct --iterations 2 --out "m$ranks.ct" --quiet --threads 1 ||
        fail "$ranks ranks: mpirun failed"
    cmp -s one.ct "m$ranks.ct" || fail "$ranks ranks: the model differs from the one-process run's"
done

# each rank loads only its share of the records (veil_train_run_serialized): rank 0 dealing the file instead of
# every rank mapping it (the other machines' way) gives the same bytes; so do two data owners' sets (2 + 4
# ciphertexts of records) over 4 ranks, whose shares cross from one set into the other
VEIL_MPI_DEAL=1 mpi 2 train --mpi --eval-keys keys/eval --in train.ct --iterations 2 --out dealt.ct --quiet \
    --threads 1 || fail "2 ranks, rank 0 dealing: mpirun failed"
cmp -s one.ct dealt.ct || fail "2 ranks, rank 0 dealing: the model differs from the one-process run's"
"$veil" encrypt --keys keys --in breast_train.csv --labels-column label --out owner1.ct --quiet || exit 1
"$veil" train --eval-keys keys/eval --in owner1.ct --in train.ct --iterations 2 --out one2.ct --quiet || exit 1
mpi 4 train --mpi --eval-keys keys/eval --in owner1.ct --in train.ct --iterations 2 --out m2sets.ct --quiet \
    --threads 1 || fail "two sets, 4 ranks: mpirun failed"
cmp -s one2.ct m2sets.ct || fail "two sets, 4 ranks: the model differs from the one-process run's"
# a byte changed in rank 1's share (a ciphertext of records past the middle): refused, by rank 1's loading or by
# rank 0's check of the whole set's digest, whether mapped or dealt; nothing written
size=$(stat -c %s train.ct)
cp train.ct changed.ct
printf '\x5a' | dd of=changed.ct bs=1 seek=$((size * 7 / 10)) conv=notrunc status=none
cmp -s train.ct changed.ct && fail "the byte was not changed"
for deal in 0 1; do
    if VEIL_MPI_DEAL=$deal mpi 2 train --mpi --eval-keys keys/eval --in changed.ct --iterations 2 --out badout.ct \
        --quiet --threads 1 2>err; then
        fail "a changed data set was trained on (VEIL_MPI_DEAL=$deal)"
    fi
    grep -qi "digest\|corrupt\|integrity" err || fail "no message about the changed set: $(head -c 600 err)"
    [ ! -e badout.ct ] || fail "a job on a changed data set wrote its output"
done

# the weights: those of the plaintext algorithm within 1e-3 (relative above 1), as test_cli_train.sh
"$veil" decrypt --keys keys --in m4.ct --out enc.csv --no-flood || exit 1
"$veil" train --plain --train logistic --in twice.csv --labels-column label --iterations 2 --out plain.csv || exit 1
paste -d'|' enc.csv plain.csv | awk -F'|' '
    { k = split($1, a, ","); split($2, b, ",")
      for (i = 1; i <= k; i++) { d = a[i] - b[i]; if (d < 0) d = -d; m = b[i] < 0 ? -b[i] : b[i]
                                 if (m > 1) d /= m; if (d > worst) worst = d } }
    END { printf "4 ranks: %d weights, largest difference from the plaintext training %.3g\n", k, worst
          exit !(k == 31 && worst <= 1e-3) }' || fail "the 4-rank weights are not the plaintext training's"

# refused: DP-GD split over ranks (each would draw its own noise); a missing data file: message, non-zero, no output
if mpi 2 train --mpi --eval-keys keys/eval --in train.ct --iterations 2 --out bad.ct --dp-epsilon 1 --dp-delta 1e-6 \
    2>err; then
    fail "--mpi with --dp-epsilon was not refused"
fi
grep -q "does not go with --dp-epsilon" err || fail "--dp-epsilon: $(cat err)"
if mpi 2 train --mpi --eval-keys keys/eval --in missing.ct --iterations 2 --out bad.ct --quiet 2>err; then
    fail "a job whose ranks failed exited 0"
fi
grep -q "missing.ct" err || fail "no message naming the missing file: $(cat err)"
[ ! -e bad.ct ] || fail "a failed job wrote its output"

# a rank killed in the middle (kill -9): 4 ranks, rank 3 killed once all four run; the job fails, nothing written
# (timeout -k: Open MPI 4.1's mpirun has been seen to hang once in a while after the kill, its ranks gone: killed)
timeout -k 5 120 mpirun --allow-run-as-root --oversubscribe -n 4 "$veil" train --mpi --eval-keys keys/eval --in train.ct \
    --iterations 2 --out "$work/killed.ct" --quiet --threads 1 >/dev/null 2>err &
job=$!
victim=
for _ in $(seq 300); do # up to 30 s for the ranks to start
    pids=$(pgrep -f -- "--out $work/killed.ct" | while read -r p; do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = veil ] && echo "$p"; done)
    if [ "$(wc -w <<<"$pids")" = 4 ]; then
        victim=$(tail -n 1 <<<"$pids")
        break
    fi
    sleep 0.1
done
killed=no
[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null && killed=yes
wait $job
rc=$?
if [ $killed = no ]; then
    fail "no rank to kill was seen running (pids: ${pids:-none})"
elif [ $rc = 0 ] || [ -e killed.ct ]; then
    fail "a job with a killed rank exited $rc or wrote its output"
elif ! grep -qi "signal 9\|killed" err; then
    fail "no message about the killed rank: $(cat err)"
fi

[ $fails = 0 ] && echo "mpi train: ok"
exit $((fails > 0))
