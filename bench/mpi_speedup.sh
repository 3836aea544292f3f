#!/usr/bin/env bash
# MPI speed-up of `veil eval --mpi` and `veil train --mpi` (issue 22; docs/performance.md, "MPI, third round"):
# one process, `mpirun -n 1` and `mpirun -n 2`, RUNS times each, with every process's user + system CPU time
# (/usr/bin/time around each rank) besides the wall time, and the outputs compared with cmp.
#   bench/mpi_speedup.sh BUILD_DIR [WORK_DIR] [RUNS]
# JOBS="train-3640 ..." runs only the jobs named (eval-digits, train-3640, train-14560, train-58240); all but
# train-58240 (about 3 GB per process and a minute a run) by default.
# Data: the digits MLP (examples/digits) on its test set twice over (898 rows, batches of 16: 57 batches,
# 591 MB), and logistic regression on breast_train x 8 (3640 records, 8 ciphertexts of 512 records; keys for
# 3 iterations, N = 2^15, 148 MB), x 32 (14560 records) and x 128 (58240). --threads 1 per rank.
# On a loaded machine the wall times say little: the CPU bound is T1 / max over ranks of the rank's CPU time
# (T1: the one-rank run's CPU), what the job would take on idle cores less the messages.
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$(dirname "$0")/.." && pwd)
work=${2:-$(mktemp -d)} runs=${3:-3}
veil=$build/veil
mkdir -p "$work"
cd "$work"
mpi=(mpirun --allow-run-as-root --oversubscribe)
if [ ! -e dg2.ct ]; then
    /usr/bin/python3 "$src/examples/digits/train.py" dg >/dev/null
    (head -1 dg/test.csv; for _ in 1 2; do tail -n +2 dg/test.csv; done) >dg2.csv
    "$veil" keygen --model dg/model.onnx --batch 16 --out kd --quiet
    "$veil" encrypt --keys kd --in dg2.csv --out dg2.ct
fi
if [ ! -e t32.ct ]; then
    /usr/bin/python3 "$src/examples/training/make_data.py" . >/dev/null
    (cat breast_train.csv; for _ in $(seq 7); do tail -n +2 breast_train.csv; done) >b8.csv
    (cat b8.csv; for _ in 1 2 3; do tail -n +2 b8.csv; done) >b32.csv
    "$veil" keygen --train logistic --features 30 --iterations 3 --out kt --quiet
    "$veil" encrypt --keys kt --in b8.csv --labels-column label --out t8.ct --quiet
    "$veil" encrypt --keys kt --in b32.csv --labels-column label --out t32.ct --quiet
fi
if [[ " ${JOBS:-} " == *" train-58240 "* && ! -e t128.ct ]]; then
    (cat b32.csv; for _ in 1 2 3; do tail -n +2 b32.csv; done) >b128.csv
    "$veil" encrypt --keys kt --in b128.csv --labels-column label --out t128.ct --quiet
fi
# cpu FILE...: the user + system seconds in /usr/bin/time -f "%U %S" files
cpu() { awk '{ print $1 + $2 }' "$@"; }
# one NAME ARGS...: one process, then mpirun -n 1 and -n 2 (ARGS: veil's, --mpi added for the ranks)
one() {
    local name=$1 out=$2
    shift 2
    [ -z "${JOBS:-}" ] || [[ " $JOBS " == *" $name "* ]] || return 0
    for run in $(seq "$runs"); do
        local load t0 t1 w1 w2 wn
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s.%N)
        /usr/bin/time -f "%U %S" -o p.time "$veil" "$@" --out "$out.1" --quiet --threads 1
        t1=$(date +%s.%N)
        w1=$(echo "$t1 - $t0" | bc)
        rm -f r.time.*
        "${mpi[@]}" -n 1 sh -c '/usr/bin/time -f "%U %S" -o r.time.n1 "$0" "$@"' "$veil" "$@" --mpi --out "$out.n1" \
            --quiet --threads 1
        t0=$(date +%s.%N)
        wn=$(echo "$t0 - $t1" | bc)
        "${mpi[@]}" -n 2 sh -c '/usr/bin/time -f "%U %S" -o r.time.$OMPI_COMM_WORLD_RANK "$0" "$@"' "$veil" "$@" --mpi \
            --out "$out.2" --quiet --threads 1
        w2=$(echo "$(date +%s.%N) - $t0" | bc)
        cmp -s "$out.1" "$out.n1" && cmp -s "$out.1" "$out.2" || { echo "$name: the outputs differ" >&2; exit 1; }
        local c1 cn r0 r1
        c1=$(cpu p.time) cn=$(cpu r.time.n1) r0=$(cpu r.time.0) r1=$(cpu r.time.1)
        awk -v n="$name" -v l="$load" -v c1="$c1" -v cn="$cn" -v r0="$r0" -v r1="$r1" -v w1="$w1" -v wn="$wn" -v w2="$w2" \
            'BEGIN { m = r0 > r1 ? r0 : r1
                printf "{\"job\":\"%s\",\"load\":%s,\"cpu_one_process\":%.2f,\"cpu_one_rank\":%.2f,\"cpu_rank0\":%.2f,\"cpu_rank1\":%.2f,\"bound_vs_process\":%.2f,\"bound_vs_one_rank\":%.2f,\"wall_one_process\":%.2f,\"wall_one_rank\":%.2f,\"wall_two_ranks\":%.2f}\n",
                    n, l, c1, cn, r0, r1, c1 / m, cn / m, w1, wn, w2 }'
    done
}
one eval-digits e eval --model dg/model.onnx --eval-keys kd/eval --in dg2.ct
one train-3640 r8 train --eval-keys kt/eval --in t8.ct --iterations 3
one train-14560 r32 train --eval-keys kt/eval --in t32.ct --iterations 3
[[ " ${JOBS:-} " == *" train-58240 "* ]] && one train-58240 r128 train --eval-keys kt/eval --in t128.ct --iterations 3
exit 0
