# The command-line tests' helpers (sourced by test_cli_party.sh, test_cli_threshold.sh, test_cli_encmodel.sh):
# the caller sets `work` (a scratch folder) and counts failures in `fails`.
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
run() { "$@" --quiet 2>"$work/err" || { fail "'$*': $(cat "$work/err")"; return 1; }; }
expect() { # expect CODE PATTERN COMMAND...: the exit code, a message on standard error, and no output file
    local code=$1 pattern=$2
    shift 2
    rm -f "$work/out.bad"
    "$@" 2>"$work/err" >/dev/null
    local rc=$?
    if [ "$rc" != "$code" ] || ! grep -q -- "$pattern" "$work/err"; then
        fail "'$*' gave $rc (wanted $code), stderr: $(cat "$work/err") (wanted /$pattern/)"
    fi
    [ -e "$work/out.bad" ] && fail "'$*' left an output file"
}
# compare A.csv B.csv TOL: the same rows, every value within TOL
compare() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'EOF' || fail "$1 is not $2 within $3"
import csv, sys
a = [[float(v) for v in r] for r in csv.reader(open(sys.argv[1]))]
b = [[float(v) for v in r] for r in csv.reader(open(sys.argv[2]))]
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print(f"{sys.argv[1]}: {len(a)} rows, largest difference from {sys.argv[2]} {worst:.2e}")
assert worst <= float(sys.argv[3]), worst
EOF
}
