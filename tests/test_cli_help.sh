#!/usr/bin/env bash
# `veil COMMAND --help` (and -h, and `veil --help COMMAND`): that command's help on standard output, exit 0;
# an unknown command with --help is still a usage error.
#   test_cli_help.sh VEIL
set -uo pipefail
veil=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
for cmd in keygen encrypt eval decrypt plain plan info serve predict train party; do
    for form in "$cmd --help" "$cmd -h" "--help $cmd" "$cmd --model m.onnx --help"; do
        # shellcheck disable=SC2086
        "$veil" $form >"$out" 2>&1
        rc=$?
        [ "$rc" = 0 ] || fail "veil $form exited $rc"
        grep -q "^usage of veil $cmd:" "$out" || fail "veil $form: no usage heading: $(head -3 "$out")"
        grep -q "^  veil $cmd " "$out" || fail "veil $form: no line of the command"
        grep -q "^exit codes:" "$out" || fail "veil $form: no exit codes"
        if grep "^  veil " "$out" | grep -qv "^  veil $cmd "; then fail "veil $form shows another command's line"; fi
    done
done
"$veil" keygen --help | grep -q -- "--calibrate" || fail "keygen --help lacks the model options"
"$veil" decrypt --help | grep -q -- "--calibrate" && fail "decrypt --help shows the model options"
"$veil" train --help | grep -q "^encrypted training" || fail "train --help lacks its section's heading"
"$veil" nosuch --help >/dev/null 2>"$out"
[ $? = 2 ] && grep -q "unknown command" "$out" || fail "veil nosuch --help: not a usage error"
[ "$fails" = 0 ] && echo "cli help: ok"
exit "$fails"
