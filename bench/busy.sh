#!/usr/bin/env bash
# Latency evaluation on an idle and on a busy machine (issue 15: OpenMP threads that spin while they wait).
#   bench/busy.sh BUILD_DIR [RUNS]      (RUNS: 1 to 50, default 5)
# Prepares examples/digits (64 -> 32 -> 10, square activation) in the latency packing, 12 rows, then RUNS times,
# back to back: `veil eval` with VEIL_THREADS=1 and with the default threads on the machine as it is ("idle"),
# then the same two while one busy process (a shell loop) runs, and stops it. One JSON line per evaluation
# (wall and CPU seconds), then the medians and the ratio the issue bounds: busy default / idle single <= 1.5.
# The environment passes on to `veil` (OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS: to compare policies).
set -euo pipefail
build=${1:?usage: bench/busy.sh BUILD_DIR [RUNS]}
runs=${2:-5}
case $runs in '' | *[!0-9]*) echo "busy.sh: RUNS must be a number" >&2; exit 2 ;; esac
if [ "$runs" -lt 1 ] || [ "$runs" -gt 50 ]; then echo "busy.sh: RUNS must be 1 to 50" >&2; exit 2; fi
src=$(cd "$(dirname "$0")/.." && pwd)
veil="$(cd "$build" && pwd)/veil"
[ -x "$veil" ] || { echo "busy.sh: no $veil" >&2; exit 2; }
work=$(mktemp -d)
busy_pid=""
stop_busy() {
    if [ -n "$busy_pid" ]; then
        kill "$busy_pid" 2>/dev/null || true
        wait "$busy_pid" 2>/dev/null || true
        busy_pid=""
    fi
}
trap 'stop_busy; rm -rf "$work"' EXIT

/usr/bin/python3 "$src/examples/digits/train.py" "$work/owner" >/dev/null
head -n 13 "$work/owner/test.csv" >"$work/rows.csv"
"$veil" keygen --model "$work/owner/model.onnx" --latency --out "$work/keys" --quiet
"$veil" encrypt --keys "$work/keys" --in "$work/rows.csv" --out "$work/x.ct"

# ticks: CPU ticks of this (sub)shell and of its children waited for so far (fields 14-17 of /proc/PID/stat)
cpu_ticks() {
    local st
    read -ra st </proc/$BASHPID/stat
    ticks=$((st[13] + st[14] + st[15] + st[16]))
}

# one evaluation: prints "WALL CPU" in seconds
evaluate() {
    local t0 t1 c0 ticks
    cpu_ticks
    c0=$ticks
    t0=$(date +%s%N)
    env "$@" "$veil" eval --model "$work/owner/model.onnx" --eval-keys "$work/keys/eval" --in "$work/x.ct" \
        --out "$work/y.ct" --quiet
    t1=$(date +%s%N)
    cpu_ticks
    awk -v t="$((t1 - t0))" -v c="$((ticks - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f %.2f\n", t / 1e9, c / hz }'
}

record() { # NAME WALL CPU
    printf '{"op":"busy_%s","threads_env":"%s","wall_s":%s,"cpu_s":%s}\n' "$1" "$2" "$3" "$4"
    echo "$1 $3" >>"$work/times"
}

for ((r = 1; r <= runs; r++)); do
    read -r w c < <(evaluate VEIL_THREADS=1) && record idle_single 1 "$w" "$c"
    read -r w c < <(evaluate) && record idle_default "${VEIL_THREADS:-}" "$w" "$c"
    timeout 300 sh -c 'while :; do :; done' &
    busy_pid=$!
    sleep 0.2
    read -r w c < <(evaluate VEIL_THREADS=1) && record busy_single 1 "$w" "$c"
    read -r w c < <(evaluate) && record busy_default "${VEIL_THREADS:-}" "$w" "$c"
    stop_busy
done

awk '{ v[$1] = v[$1] " " $2 }
     function median(s,   a, n, i, j, t) {
         n = split(s, a, " ")
         for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
         return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
     }
     END {
         is = median(v["idle_single"]); id = median(v["idle_default"])
         bs = median(v["busy_single"]); bd = median(v["busy_default"])
         printf "{\"op\":\"busy_summary\",\"runs\":%d,\"idle_single_s\":%.3f,\"idle_default_s\":%.3f,", split(v["idle_single"], x, " "), is, id
         printf "\"busy_single_s\":%.3f,\"busy_default_s\":%.3f,\"busy_default_over_idle_single\":%.2f,", bs, bd, bd / is
         printf "\"idle_default_over_idle_single\":%.2f}\n", id / is
     }' "$work/times"
