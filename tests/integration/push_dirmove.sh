#!/usr/bin/env bash
# Directories new to a sandbox are renamed into place whole (one mv) when
# the sandbox has nothing at their path; otherwise the per-file moves and
# their guards apply. Either way the result is the host tree with modes,
# the sandbox's own entries are kept (aside when in the way), and a file
# changed while it is sent is never placed, also inside a moved directory.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_push.sh"
DB=$T/store.db HOST=$T/host R=$T/loc
mkdir -p "$HOST" "$R"
"$TOOL" sandbox "$DB" loc "local:$R" || fail "add"

# new: nested new dirs with their own modes; mid: a file two levels down;
# made: the sandbox already made it (with its own file); clash: the sandbox
# has a file there; empty: a new empty directory inside a moved one.
mkdir -p "$HOST/new/a/b" "$HOST/new/empty" "$HOST/mid/x/y" "$HOST/made" "$HOST/clash"
for i in 1 2 3; do echo "n$i" > "$HOST/new/f$i"; echo "b$i" > "$HOST/new/a/b/g$i"; done
echo secret > "$HOST/new/a/key"; chmod 600 "$HOST/new/a/key"
ln -s f1 "$HOST/new/link"
echo deep > "$HOST/mid/x/y/z"
echo host > "$HOST/made/h"; echo host > "$HOST/clash/c"; echo top > "$HOST/top"
chmod 750 "$HOST/new/a"; chmod 700 "$HOST/new/a/b"; chmod 755 "$HOST/new" "$HOST/mid/x"
mkdir "$R/made"; echo own > "$R/made/own"
echo "sandbox file" > "$R/clash"
jr rescan ""
push loc
assert_eq "$(stat_of uploaded)" 12 "uploaded"
assert_eq "$(cat "$R/made/own")" own "the sandbox's own file in a directory it made"
rm "$R/made/own"
ls "$R" | grep -q '^clash\.conflict' || fail "the sandbox's file in the way was not kept aside: $(ls "$R")"
assert_eq "$(cat "$R"/clash.conflict*)" "sandbox file" "kept aside"
rm "$R"/clash.conflict*
fast_trees_equal "$HOST" "$R"
assert_absent "$R/.hermesfs-tmp/p-"*

note "a file changed while sent inside a new directory: the directory arrives without it"
mkdir -p "$HOST/late/sub"; echo s > "$HOST/late/sub/s"
head -c 2000000 /dev/urandom > "$HOST/late/big"
jr mkdir late; jr mkdir late/sub; jr create late/sub/s; jr create late/big
push loc --mutate late/big
assert_eq "$(stat_of changed)" 1 "changed during upload"
assert_eq "$(cat "$R/late/sub/s")" s "the rest of the new directory"
assert_absent "$R/late/big"
push loc
fast_trees_equal "$HOST" "$R"
echo ok
