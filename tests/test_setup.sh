#!/usr/bin/env bash
# scripts/setup against stand-ins for dpkg-query, apt-get, sudo and id: a missing package is installed with
# apt-get update and install, each told to wait for the package manager's lock; nothing runs when all are there.
#   test_setup.sh SOURCE_DIR
set -uo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
cat >"$work/bin/dpkg-query" <<'STUB'
#!/bin/sh
# every package installed but cmake, unless ALL_THERE is set
for a; do p=$a; done
if [ -z "${ALL_THERE:-}" ] && [ "$p" = cmake ]; then exit 1; fi
printf 'install ok installed'
STUB
cat >"$work/bin/apt-get" <<'STUB'
#!/bin/sh
echo "apt-get $*" >>"$LOG"
STUB
cat >"$work/bin/sudo" <<'STUB'
#!/bin/sh
echo "sudo" >>"$LOG"
exec "$@"
STUB
printf '#!/bin/sh\necho 1000\n' >"$work/bin/id"
chmod +x "$work/bin"/*
fails=0
export LOG="$work/log"
PATH="$work/bin:$PATH" bash "$src/scripts/setup" 2>/dev/null || { echo "FAIL: setup exited $?"; fails=$((fails + 1)); }
for step in update "install .*cmake"; do
    grep -q "^apt-get -o DPkg::Lock::Timeout=600 $step" "$LOG" ||
        { echo "FAIL: apt-get $step does not wait for the lock: $(cat "$LOG")"; fails=$((fails + 1)); }
done
grep -q "^sudo" "$LOG" || { echo "FAIL: no sudo when not root"; fails=$((fails + 1)); }
rm -f "$LOG"
ALL_THERE=1 PATH="$work/bin:$PATH" bash "$src/scripts/setup" || { echo "FAIL: setup with all present"; fails=$((fails + 1)); }
[ ! -e "$LOG" ] || { echo "FAIL: apt-get ran with every package present: $(cat "$LOG")"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "setup: ok"
exit "$fails"
