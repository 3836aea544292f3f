#!/usr/bin/env bash
# veil eval --mpi (tools/mpi.c, docs/scale.md "Batch work over MPI"): with 2, 3 and 6 ranks (oversubscribed),
# more and fewer batches than ranks, the ranks mapping the input themselves and (VEIL_MPI_DEAL=1) rank 0 dealing
# it, the output file is byte for byte the one-process `veil eval`'s, and it
# decrypts to the plaintext model's outputs; a latency-packed set (not split: rank 0 evaluates it) too; a job
# whose ranks fail, or one of whose ranks is killed, exits non-zero with the message and writes nothing.
#   test_mpi.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
# under the sanitizers (make test-asan), this script runs veil without leak detection: Open MPI keeps allocations to the
# end in plugins it unloads (stacks LeakSanitizer cannot name, so not suppressible); memory errors are still
# caught, and test_ml checks veil_ciphertexts_take_batches/append for leaks
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { # mpi RANKS ARGS...: veil under mpirun (root in containers; more ranks than cores)
    local n=$1
    shift
    timeout -k 5 300 mpirun --allow-run-as-root --oversubscribe -n "$n" "$veil" "$@"
}
same() { # same WHAT EXPECTED GOT
    if ! cmp -s "$2" "$3"; then
        echo "FAIL: $1: the MPI output differs from the one-process run"
        fails=$((fails + 1))
    fi
}
d="$work/d" h="$work/h"
/usr/bin/python3 "$src/examples/diabetes/train.py" "$d" >/dev/null || exit 1
/usr/bin/python3 "$src/examples/hospital/train.py" "$h" >/dev/null || exit 1

# diabetes, 111 rows: batches of 16 rows (7 batches, the last partial) and of 128 (1 batch: fewer than the ranks)
for batch in 16 128; do
    k="$work/k$batch"
    "$veil" keygen --model "$d/model.onnx" --batch $batch --out "$k" --quiet || exit 1
    "$veil" encrypt --keys "$k" --in "$d/test.csv" --out "$work/x$batch.ct" || exit 1
    "$veil" eval --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/x$batch.ct" --out "$work/y$batch.ct" \
        --quiet || exit 1
    for ranks in 2 3 6; do
        out="$work/y$batch-$ranks.ct"
        mpi $ranks eval --mpi --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/x$batch.ct" --out "$out" \
            --quiet || { echo "FAIL: batch $batch, $ranks ranks: mpirun failed"; fails=$((fails + 1)); }
        same "diabetes, batch $batch, $ranks ranks" "$work/y$batch.ct" "$out"
    done
    # rank 0 dealing the input (the way across machines; on one machine the ranks map the file themselves)
    for ranks in 2 3; do
        out="$work/y$batch-deal$ranks.ct"
        VEIL_MPI_DEAL=1 mpi $ranks eval --mpi --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/x$batch.ct" \
            --out "$out" --quiet || { echo "FAIL: batch $batch, $ranks ranks dealt: mpirun failed"; fails=$((fails + 1)); }
        same "diabetes, batch $batch, $ranks ranks dealt" "$work/y$batch.ct" "$out"
    done
    "$veil" decrypt --keys "$k" --in "$work/y$batch-3.ct" --out "$work/enc$batch.csv" || exit 1
done
"$veil" plain --model "$d/model.onnx" --in "$d/test.csv" --out "$work/plain.csv" || exit 1
paste -d, "$work/enc16.csv" "$work/plain.csv" | awk -F, -v n="$(head -1 "$work/plain.csv" | awk -F, '{print NF}')" '
    { for (i = 1; i <= n; i++) { e = $i - $(i + n); if (e < 0) e = -e; if (e > m) m = e } }
    END { exit !(NR > 100 && m < 1e-3) }' ||
    { echo "FAIL: the MPI outputs do not decrypt to the plaintext model's"; fails=$((fails + 1)); }

# hospital (30 features, calibrated ranges), batches of 32 rows over 2 and 3 ranks
k="$work/kh"
"$veil" keygen --model "$h/model.onnx" --calibrate "$h/train.csv" --batch 32 --out "$k" --quiet || exit 1
"$veil" encrypt --keys "$k" --in "$h/test.csv" --out "$work/xh.ct" || exit 1
"$veil" eval --model "$h/model.onnx" --eval-keys "$k/eval" --in "$work/xh.ct" --out "$work/yh.ct" --quiet || exit 1
for ranks in 2 3; do
    mpi $ranks eval --mpi --model "$h/model.onnx" --eval-keys "$k/eval" --in "$work/xh.ct" --out "$work/yh-$ranks.ct" \
        --quiet || { echo "FAIL: hospital, $ranks ranks: mpirun failed"; fails=$((fails + 1)); }
    same "hospital, $ranks ranks" "$work/yh.ct" "$work/yh-$ranks.ct"
done

# the latency packing is not split: rank 0 evaluates the set, the same bytes
k="$work/kl"
"$veil" keygen --model "$d/model.onnx" --latency --out "$k" --quiet || exit 1
head -3 "$d/test.csv" >"$work/three.csv"
"$veil" encrypt --keys "$k" --in "$work/three.csv" --out "$work/xl.ct" || exit 1
"$veil" eval --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/xl.ct" --out "$work/yl.ct" --quiet || exit 1
mpi 2 eval --mpi --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/xl.ct" --out "$work/yl-2.ct" \
    2>"$work/err" || { echo "FAIL: latency: mpirun failed"; fails=$((fails + 1)); }
same "latency, 2 ranks" "$work/yl.ct" "$work/yl-2.ct"
grep -q "not split .*rank 0 evaluates it all" "$work/err" ||
    { echo "FAIL: latency: no note that rank 0 evaluates the set: $(cat "$work/err")"; fails=$((fails + 1)); }

# failures: the ranks' message, a non-zero exit, no output
if mpi 2 eval --mpi --model "$d/model.onnx" --eval-keys "$work/k16/eval" --in "$work/missing.ct" \
    --out "$work/bad.ct" --quiet 2>"$work/err"; then
    echo "FAIL: a job whose ranks failed exited 0"
    fails=$((fails + 1))
fi
grep -q "missing.ct" "$work/err" || { echo "FAIL: no message naming the missing file: $(cat "$work/err")"; fails=$((fails + 1)); }
[ ! -e "$work/bad.ct" ] || { echo "FAIL: a failed job wrote its output"; fails=$((fails + 1)); }
# the wrong keys for the set: refused on every rank
if mpi 2 eval --mpi --model "$d/model.onnx" --eval-keys "$work/k128/eval" --in "$work/x16.ct" \
    --out "$work/bad.ct" --quiet 2>"$work/err"; then
    echo "FAIL: a set of other keys was evaluated"
    fails=$((fails + 1))
fi
[ ! -e "$work/bad.ct" ] || { echo "FAIL: a refused job wrote its output"; fails=$((fails + 1)); }
# a damaged input (a byte of a ciphertext, or of the set's own digest, which rank 0 alone checks when the ranks
# map the file): refused, nothing written
for at in middle digest; do
    cp "$work/x16.ct" "$work/bad.in"
    size=$(stat -c %s "$work/bad.in")
    [ $at = middle ] && off=$((size / 2)) || off=$((size - 1))
    printf '\x5a' | dd of="$work/bad.in" bs=1 seek=$off conv=notrunc status=none
    cmp -s "$work/x16.ct" "$work/bad.in" && printf '\xa5' | dd of="$work/bad.in" bs=1 seek=$off conv=notrunc status=none
    if mpi 2 eval --mpi --model "$d/model.onnx" --eval-keys "$work/k16/eval" --in "$work/bad.in" --out "$work/bad.ct" \
        --quiet 2>"$work/err"; then
        echo "FAIL: a damaged input ($at) was evaluated"
        fails=$((fails + 1))
    fi
    grep -q "corrupt\|digest" "$work/err" || { echo "FAIL: damaged ($at): $(cat "$work/err")"; fails=$((fails + 1)); }
    [ ! -e "$work/bad.ct" ] || { echo "FAIL: a damaged input ($at) was written out"; fails=$((fails + 1)); }
done
# --mpi with output noise: refused
if mpi 1 eval --mpi --model "$d/model.onnx" --eval-keys "$work/k16/eval" --in "$work/x16.ct" --out "$work/bad.ct" \
    --dp-epsilon 1 --dp-delta 1e-6 2>"$work/err"; then
    echo "FAIL: --mpi with --dp-epsilon was not refused"
    fails=$((fails + 1))
fi
grep -q "does not go with --dp-epsilon" "$work/err" || { echo "FAIL: --dp-epsilon: $(cat "$work/err")"; fails=$((fails + 1)); }

# a rank killed in the middle (kill -9): the job fails, nothing is written. 40 times the rows (278 batches)
# so that the ranks are still at work when one is killed; a rank seen alive and killed cannot let the job end well.
(head -1 "$d/test.csv"; for i in $(seq 40); do tail -n +2 "$d/test.csv"; done) >"$work/big.csv"
"$veil" encrypt --keys "$work/k16" --in "$work/big.csv" --out "$work/big.ct" || exit 1
# (timeout -k: Open MPI 4.1's mpirun has been seen to hang once in a while after the kill, its ranks gone: killed)
timeout -k 5 120 mpirun --allow-run-as-root --oversubscribe -n 2 "$veil" eval --mpi --model "$d/model.onnx" \
    --eval-keys "$work/k16/eval" --in "$work/big.ct" --out "$work/killed.ct" --quiet >/dev/null 2>"$work/err" &
job=$!
victim=
for _ in $(seq 300); do # up to 30 s for both ranks to start
    pids=$(pgrep -f -- "--out $work/killed.ct" | while read -r p; do
        [ "$(cat /proc/"$p"/comm 2>/dev/null)" = veil ] && echo "$p"; done)
    if [ "$(wc -w <<<"$pids")" = 2 ]; then
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
    echo "FAIL: no rank to kill was seen running (pids: ${pids:-none})"
    fails=$((fails + 1))
elif [ $rc = 0 ] || [ -e "$work/killed.ct" ]; then
    echo "FAIL: a job with a killed rank exited $rc or wrote its output"
    fails=$((fails + 1))
fi

[ $fails = 0 ] && echo "mpi: ok"
exit $((fails > 0))
