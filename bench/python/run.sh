#!/usr/bin/env bash
# Veil through Python against TenSEAL and Concrete-ML, back to back on this machine (issue 20):
#
#   bench/python/run.sh [BUILD_DIR] [OUT_DIR] [TASK...]      TASK: lr cnn overhead (default: all three)
#
# BUILD_DIR (default build/) holds libveil.so and the veil CLI. Writes OUT_DIR/results.jsonl (one JSON object
# per tool and task, every repetition's time in it), OUT_DIR/table.md (the tables), and the logs.
# The peers are installed from PyPI into a throw-away virtual environment outside the repository
# (VEIL_BENCH_VENV, default ~/.cache/veil-bench/venv; pinned: tenseal 0.3.16, concrete-ml 1.9.0, which pins
# torch 2.3.1: the CPU wheel from download.pytorch.org when it answers, else PyPI's), never as dependencies
# of the package. The veil package is installed against BUILD_DIR's libveil.so into another one
# (VEIL_BENCH_VEIL_VENV, default ~/.cache/veil-bench/veil-venv, with the system's site packages: numpy,
# scikit-learn, onnx). Every measurement runs on one core (VEIL_BENCH_CPU, default 1) with one thread.
# Environment: VEIL_BENCH_REPS (5), VEIL_BENCH_CNN_IMAGES (Veil's accuracy images, 20),
# VEIL_BENCH_TENSEAL_CNN_IMAGES (5, about 30 s each), VEIL_BENCH_CONCRETE_ROWS (64),
# VEIL_BENCH_SKIP (e.g. "concrete_cnn": its keygen and one image take minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-/tmp/veil-bench-python-$(date -u +%Y%m%dT%H%M%S)}
shift $(($# < 2 ? $# : 2))
tasks=${*:-lr cnn overhead}
peers=${VEIL_BENCH_VENV:-$HOME/.cache/veil-bench/venv}
veilenv=${VEIL_BENCH_VEIL_VENV:-$HOME/.cache/veil-bench/veil-venv}
cpu=${VEIL_BENCH_CPU:-1}
skip=" ${VEIL_BENCH_SKIP:-} "
mkdir -p "$out/data"
out=$(cd "$out" && pwd)
export VEIL_BENCH_OUT=$out VEIL_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# the peers' environment, made once (the marker records the pins it was made with)
pins="tenseal==0.3.16 concrete-ml==1.9.0"
if [ "$(cat "$peers/.veil-bench-pins" 2>/dev/null)" != "$pins" ]; then
    echo "run.sh: installing $pins into $peers (minutes; about 6 GB with PyPI's torch)" >&2
    rm -rf "$peers"
    /usr/bin/python3 -m venv "$peers"
    "$peers/bin/pip" install -q --upgrade pip >"$out/pip.log" 2>&1 || true
    # torch 2.3.1 (concrete-ml's pin), CPU build: skipped when download.pytorch.org does not answer
    "$peers/bin/pip" install -q --retries 0 --timeout 20 --index-url https://download.pytorch.org/whl/cpu \
        "torch==2.3.1" >>"$out/pip.log" 2>&1 || echo "run.sh: no CPU torch wheel (download.pytorch.org unreachable?): PyPI's torch" >&2
    if "$peers/bin/pip" install $pins >>"$out/pip.log" 2>&1; then
        echo "$pins" >"$peers/.veil-bench-pins"
    else
        echo "run.sh: installing the peers failed, see $out/pip.log" >&2
    fi
fi
"$peers/bin/pip" freeze 2>/dev/null | grep -Ei '^(tenseal|concrete-ml|concrete-python|torch|numpy|scikit-learn)==' \
    >"$out/peers-versions.txt" || true

# the veil package against this build
[ -x "$veilenv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$veilenv"
(cd "$root/python" && VEIL_LIBRARY="$build/libveil.so" "$veilenv/bin/pip" install -q --no-build-isolation \
    --no-index --force-reinstall --no-deps . >>"$out/pip.log" 2>&1)

# the data: the breast-cancer records and the CNN trained by examples/fashion/train.py (Debian's torch)
if [ ! -e "$out/data/cnn.npz" ]; then
    [ -e "$out/data/fashion/model.onnx" ] ||
        taskset -c "$cpu" /usr/bin/python3 "$root/examples/fashion/train.py" "$out/data/fashion" 100 >"$out/train.log"
    (cd "$out" && "$veilenv/bin/python" "$here/prepare.py" "$out/data" "$out/data/fashion")
fi

one() { # one TOOL TASK SCRIPT [ARGS...]: runs a script pinned; a failure becomes a record saying why
    local tool=$1 task=$2 script=$3 py
    shift 3
    case $skip in *" ${script%.py} "*) echo "run.sh: skipping $script" >&2; return 0 ;; esac
    if [ "$tool" = veil ]; then py=$veilenv/bin/python; else py=$peers/bin/python; fi
    echo "== $tool $task ($script)" >&2
    if ! (cd "$out" && taskset -c "$cpu" "$py" "$here/$script" "$@" >>"$out/${script%.py}.log" 2>&1); then
        local why
        why=$(grep -v '^ ' "$out/${script%.py}.log" | tail -n 1)
        /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from common import record
record(tool=sys.argv[2], task=sys.argv[3], failed=sys.argv[4])' "$here" "$tool" "$task" "${why:-exit status}"
    fi
}

for task in $tasks; do
    case $task in
    lr)
        one veil lr veil_lr.py
        one tenseal lr tenseal_lr.py
        one concrete-ml lr concrete_lr.py ;;
    cnn)
        one veil cnn_one veil_cnn.py
        one tenseal cnn_one tenseal_cnn.py
        one concrete-ml cnn_one concrete_cnn.py ;;
    overhead)
        one veil overhead veil_cli_lr.py "$build/veil" ;;
    *)
        echo "run.sh: unknown task $task (lr, cnn, overhead)" >&2
        exit 2 ;;
    esac
done
{
    echo "machine: $(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "pinned to core $cpu, one thread; $(cat "$out/peers-versions.txt" | tr '\n' ' ')"
} >"$out/machine.txt"
/usr/bin/python3 "$here/table.py" "$out"
echo "run.sh: $out/results.jsonl, $out/table.md" >&2
