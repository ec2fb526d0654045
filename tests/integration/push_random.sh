#!/usr/bin/env bash
# Random operation sequences on a journaled host tree, pushed over local:
# and cmd: transports: after every push each sandbox equals the host byte
# for byte, with modes and symlinks; renames do not re-send content.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_push.sh"
DB=$T/store.db HOST=$T/host
mkdir -p "$HOST" "$T/loc" "$T/cmd"
"$TOOL" sandbox "$DB" loc "local:$T/loc" || fail "add loc"
"$TOOL" sandbox "$DB" cmd "cmd:env LC_ALL=C sh -c 'exec \"\$@\"' wrap#$T/cmd" || fail "add cmd"
RANDOM=4242
for round in 1 2 3 4; do
    random_ops 30
    for sb in loc cmd; do
        push "$sb"
        fast_trees_equal "$HOST" "$T/$sb"
        assert_eq "$(stat_of attempts)" 1 "attempts on $sb"
    done
    note "round $round: $STATS"
done
note "nothing pending: nothing sent"
push loc; assert_eq "$(stat_of bytes_out)" 0 "idle push traffic"

note "a directory rename moves remotely, content is not re-sent"
mkdir -p "$HOST/dd/sub"; head -c 100000 /dev/urandom > "$HOST/dd/sub/big"
jr mkdir dd; jr mkdir dd/sub; jr create dd/sub/big
for sb in loc cmd; do push "$sb"; done
mv "$HOST/dd" "$HOST/moved_dir"; jr rename dd moved_dir
for sb in loc cmd; do
    push "$sb"; fast_trees_equal "$HOST" "$T/$sb"
    assert_eq "$(stat_of bytes_sent)" 0 "bytes re-sent by a dir rename on $sb"
    assert_eq "$(stat_of renamed)" 1 "renames on $sb"
done
"$TOOL" ledger "$DB" loc | grep -q " moved_dir/sub/big$" || fail "ledger not renamed"
"$TOOL" ledger "$DB" loc | grep -q " dd/" && fail "old name left in the ledger"

note "same content under another mode: chmod only; 0600 stays 0600"
chmod 600 "$HOST/moved_dir/sub/big"; jr chmod moved_dir/sub/big; push loc
assert_eq "$(stat_of bytes_sent)" 0 "bytes sent for a chmod"
assert_eq "$(stat -c %a "$T/loc/moved_dir/sub/big")" 600 "mode on the sandbox"

note "rewrite with the same bytes: hashed, not sent"
cp "$HOST/moved_dir/sub/big" "$T/x"; cat "$T/x" > "$HOST/moved_dir/sub/big"; jr write moved_dir/sub/big
push loc; assert_eq "$(stat_of bytes_sent)" 0 "same content re-sent"; assert_eq "$(stat_of skipped)" 1 skipped

note "type changes: file -> dir -> symlink"
rm "$HOST/moved_dir/sub/big"; mkdir "$HOST/moved_dir/sub/big"; echo in > "$HOST/moved_dir/sub/big/f"
jr unlink moved_dir/sub/big; jr mkdir moved_dir/sub/big; jr create moved_dir/sub/big/f
push loc; fast_trees_equal "$HOST" "$T/loc"
rm -r "$HOST/moved_dir/sub/big"; ln -s ../x "$HOST/moved_dir/sub/big"
jr rmdir moved_dir/sub/big; jr symlink moved_dir/sub/big ../x
push loc; fast_trees_equal "$HOST" "$T/loc"

for sb in loc cmd; do push "$sb"; assert_trees_equal "$HOST" "$T/$sb"; done
note "the ignore predicate: never pushed, never deleted"
echo s > "$HOST/agent.sock"; jr create agent.sock; push loc --ignore agent.sock
assert_absent "$T/loc/agent.sock"
echo ok
