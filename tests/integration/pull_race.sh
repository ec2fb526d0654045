#!/usr/bin/env bash
# A host write racing a pull is never lost. The pull hashes the host file,
# decides (remote changed only: apply; remote deleted, host unchanged:
# delete), and only then replaces or removes it. A write landing in
# between (HERMES_PAUSE_AT=pull-decided holds the pull exactly there) must
# survive: the item is skipped, and the next pull sees both sides changed
# and keeps both versions (remote at the path, host as a conflict copy).
source "$(dirname "$0")/lib.sh"
TOOL=$HERMES_BUILD/itests/tool_pull
[ -x "$TOOL" ] || fail "missing $TOOL"

# setup NAME: host and sandbox hold f = "base" (in the ledger), then the
# sandbox changes or deletes f.
setup() {
    C=$T/$1 H=$T/$1/host R=$T/$1/remote DB=$T/$1/state.db
    mkdir -p "$H" "$R"
    echo base > "$H/f"; echo base > "$R/f"; echo other > "$H/g"; echo other > "$R/g"
    "$TOOL" seed "$DB" sbx "local:$R" "$R" || fail "seed"
}
pull() { "$TOOL" pull "$DB" sbx "local:$R" "$H" > "$C/out" 2>&1; local rc=$?; cat "$C/out"; return $rc; }
# paused_pull CMD...: run a pull held after its decision, run CMD on the
# host while it waits, let it go on.
paused_pull() {
    HERMES_PAUSE_AT=pull-decided HERMES_PAUSE_FILE=$C/paused \
        "$TOOL" pull "$DB" sbx "local:$R" "$H" > "$C/out" 2>&1 &
    local pid=$! rc
    at_exit "kill -9 $pid 2>/dev/null"
    WAIT_S=20 wait_for test -e "$C/paused" || { cat "$C/out"; fail "pull never paused"; }
    "$@"
    rm -f "$C/paused"
    wait "$pid"; rc=$?
    cat "$C/out"
    return $rc
}
conflict_copies() { find "$H" -name 'f.conflict-*' | sort; }

note "remote changed, host written during the pull"
setup apply
echo "sandbox edit" > "$R/f"; touch -d @1700000000 "$R/f"
paused_pull eval 'echo "host edit during pull" > "$H/f"' || fail "pull failed"
assert_eq "$(cat "$H/f")" "host edit during pull" "host write survives the racing pull"
grep -q "changed on the host during the pull" "$C/out" || fail "skip not reported"
[ -z "$(conflict_copies)" ] || fail "unexpected conflict copy"
pull || fail "second pull"
assert_eq "$(cat "$H/f")" "sandbox edit" "second pull: sandbox version at the path"
copy=$(conflict_copies)
[ -n "$copy" ] || fail "no conflict copy after the second pull"
assert_eq "$(cat "$copy")" "host edit during pull" "host version kept as a copy"

note "remote deleted, host written during the pull"
setup delete
rm "$R/f"
paused_pull eval 'echo "host edit during pull" > "$H/f"' || fail "pull failed"
assert_eq "$(cat "$H/f" 2>/dev/null)" "host edit during pull" "host file not deleted"
pull || fail "second pull"
assert_eq "$(cat "$H/f" 2>/dev/null)" "host edit during pull" "changed host file kept after the sandbox deleted it"

note "new remote file, host created the same path during the pull"
setup create
echo "sandbox new" > "$R/n"
paused_pull eval 'echo "host new" > "$H/n"' || fail "pull failed"
assert_eq "$(cat "$H/n")" "host new" "host file created during the pull survives"

note "control: without a racing write the pull applies"
setup control
echo "sandbox edit" > "$R/f"; touch -d @1700000000 "$R/f"
paused_pull true || fail "pull failed"
assert_eq "$(cat "$H/f")" "sandbox edit" "applied"
