#!/usr/bin/env bash
# The input of `veil eval --mpi` and `veil train --mpi` changed under the ranks that map it (tools/mpi.c,
# docs/scale.md "Batch work over MPI"), each change made at a point mpi_input_race.py makes deterministic
# (it stops the ranks with SIGSTOP once they have the file mapped):
# - the file cut to a quarter under 2 eval ranks, and under 2 training ranks: the ranks read the missing pages
#   (SIGBUS, once a rank's death); the job fails with "the input file ... changed while it was read", naming the
#   rank that found it shrunk, with no signal, and writes nothing;
# - two ciphertexts swapped through a shared writable mapping whose pages were all written before the job (so
#   Linux stamps no new time: only the bytes change), after rank 0 checked the set's digest (and, for eval, before
#   the ranks loaded the last batch, where they are), under 2 eval and 2 training ranks: each ciphertext still
#   valid, the file's times unchanged; the job fails (rank 0 compares the set's fingerprint once every rank has
#   read with the one before any did), nothing written (it used to write its output, exit 0);
# - a rank whose outputs lack a batch (VEIL_MPI_TEST_FAULT=drop-batch, a fault only the tests set): rank 0
#   refuses the job, the joined output's rows not the input's, mapped or dealt (VEIL_MPI_DEAL=1); nothing written.
#   test_mpi_input.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
# Open MPI's plugins keep allocations LeakSanitizer cannot name (see test_mpi.sh)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
mpirun=(timeout -k 5 300 mpirun --allow-run-as-root --oversubscribe)
race() { # race truncate|swap FILE RANKS ARGS...: veil ARGS under mpirun, FILE changed under its ranks
    local mode=$1 file=$2 ranks=$3
    shift 3
    timeout -k 5 300 /usr/bin/python3 "$src/tests/mpi_input_race.py" "$mode" "$file" "$ranks" -- \
        "${mpirun[@]}" -n "$ranks" "$veil" "$@"
}
refused() { # refused WHAT STATUS OUTPUT PATTERN: the job failed with PATTERN in err, no signal, OUTPUT not written
    [ "$2" != 0 ] || fail "$1: the job exited 0"
    [ "$2" != 124 ] || fail "$1: the change was not made (or the job hung): $(cat "$work/err")"
    [ ! -e "$3" ] || fail "$1: the job wrote its output"
    rm -f "$3"
    grep -q -- "$4" "$work/err" || fail "$1: no message /$4/: $(head -c 1500 "$work/err")"
    if grep -qi "bus error\|signal 7\|received signal\|core dumped" "$work/err"; then
        fail "$1: a rank died of a signal: $(head -c 1500 "$work/err")"
    fi
}
cd "$work" || exit 1

# 1332 rows of the diabetes data in batches of 16: 84 batches (2 a chunk over 2 ranks), 74 MB
/usr/bin/python3 "$src/examples/diabetes/train.py" d >/dev/null || exit 1
(head -1 d/test.csv; for _ in $(seq 12); do tail -n +2 d/test.csv; done) >big.csv
"$veil" keygen --model d/model.onnx --batch 16 --out k --quiet || exit 1
"$veil" encrypt --keys k --in big.csv --out x.ct || exit 1
eval_args=(eval --mpi --model d/model.onnx --eval-keys k/eval --quiet)

# the file cut under the ranks
cp x.ct cut.ct
race truncate cut.ct 2 "${eval_args[@]}" --in cut.ct --out y.ct 2>err
refused "eval, file cut" $? y.ct "changed while it was read (rank [0-9], which found it shrunk under its mapping)"
/usr/bin/python3 "$src/examples/training/make_data.py" . >/dev/null || exit 1
"$veil" keygen --train logistic --features 30 --iterations 2 --out tk --quiet || exit 1
"$veil" encrypt --keys tk --in breast_train.csv --labels-column label --out train.ct --quiet || exit 1
race truncate train.ct 2 train --mpi --eval-keys tk/eval --in train.ct --iterations 2 --out m.ct --quiet \
    --threads 1 2>err
refused "train, file cut" $? m.ct "changed while it was read (rank [0-9], which found it shrunk under its mapping)"

# two valid ciphertexts swapped, the file's times unchanged
cp x.ct swapped.ct
race swap swapped.ct 2 "${eval_args[@]}" --in swapped.ct --out y.ct 2>err
refused "eval, ciphertexts swapped" $? y.ct "changed while it was read (rank 0)"
grep -q "swapped under" err || fail "the ciphertexts were not swapped (eval): $(cat err)"
"$veil" encrypt --keys tk --in breast_train.csv --labels-column label --out train.ct --quiet || exit 1
race swap train.ct 2 train --mpi --eval-keys tk/eval --in train.ct --iterations 2 --out m.ct --quiet --threads 1 \
    2>err
refused "train, ciphertexts swapped" $? m.ct "changed while it was read (rank 0)"
grep -q "swapped under" err || fail "the ciphertexts were not swapped (train): $(cat err)"

# a rank's outputs short of a batch: rank 0 checks the rows it would write
for deal in 0 1; do
    VEIL_MPI_DEAL=$deal VEIL_MPI_TEST_FAULT=drop-batch "${mpirun[@]}" -n 2 "$veil" "${eval_args[@]}" --in x.ct \
        --out y.ct 2>err
    refused "a batch dropped (VEIL_MPI_DEAL=$deal)" $? y.ct "outputs hold 1316 rows, the input 1332: nothing written"
    grep -q "rank 1 drops a batch" err || fail "the fault was not made (VEIL_MPI_DEAL=$deal): $(cat err)"
done

[ $fails = 0 ] && echo "mpi input: ok"
exit $((fails > 0))
