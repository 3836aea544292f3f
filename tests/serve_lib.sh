# Sourced by the tests that start `veil serve` (test_serve*.sh): a work folder removed at exit (KEEP=1 keeps
# it), the server killed at exit, failures counted, and the server's start. Expects $build; sets veil, work,
# server_pid, port, url, fails; bg_pids: background processes to kill at exit.
veil="$build/veil"
work=$(mktemp -d)
server_pid=""
bg_pids=()
cleanup() {
    [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
unset VEIL_TOKEN
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    "$@" || fail "$what"
}
start_server() { # start_server [EXTRA OPTIONS]: the models of $models (else $work/models); sets server_pid, port, url
    : >"$work/port.txt"
    "$veil" serve --models "${models:-$work/models}" --store "$work/store" --listen 127.0.0.1:0 --threads 4 --quiet "$@" \
        >"$work/port.txt" 2>>"$work/server.log" &
    server_pid=$!
    # loading and planning the models takes seconds under the sanitizers on a busy machine: wait up to 60 s,
    # and no longer than the server lives
    for _ in $(seq 600); do
        grep -q "listening on port" "$work/port.txt" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    port=$(awk '{print $4}' "$work/port.txt")
    url="http://127.0.0.1:$port"
}
stop_server() { # SIGTERM, and wait for the server to finish
    kill -TERM "$server_pid"
    wait "$server_pid"
    server_pid=""
}
# as TOKEN METHOD PATH [BODY_FILE]: the HTTP status (body in $work/body, headers in $work/headers); TOKEN "-": none
as() {
    local auth=() data=()
    [ "$1" != - ] && auth=(-H "Authorization: Bearer $1")
    [ $# -ge 4 ] && data=(--data-binary "@$4" -H "Content-Type: application/octet-stream")
    curl -s -D "$work/headers" -o "$work/body" -w '%{http_code}' -X "$2" "${auth[@]}" "${data[@]}" --max-time 60 "$url$3"
}
expect() { # expect CODE WHAT TOKEN METHOD PATH [BODY]
    local got
    got=$(as "${@:3}")
    [ "$got" = "$1" ] || fail "$2: HTTP $got, wanted $1 ($(head -c 200 "$work/body"))"
}
legit() { # legit WHAT: alice's ($alice) prediction of $work/five.csv with $work/ka through veil predict succeeds
    rm -f "$work/legit.csv"
    VEIL_TOKEN=$alice "$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" \
        --out "$work/legit.csv" --quiet 2>>"$work/client.log"
    [ "$(wc -l <"$work/legit.csv" 2>/dev/null)" = 5 ] || fail "a legitimate prediction $1"
}
