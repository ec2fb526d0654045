#!/usr/bin/env bash
# Settings of the config file reach the daemon's sync engine, per sandbox:
# retry schedule (explicit sync and background pushes), conflict policy,
# pull caps, and ignore patterns applied to the pull (gap 5: an ignored
# sandbox-side venvs/ is neither pulled nor counted against max-files).
. "$(dirname "$0")/lib.sh"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -x "$HERMESFS" ] || fail "hermesfs not built"

H=$T/home S1=$T/sb1 S2=$T/sb2 ST=$T/state
MANIFEST_EXCLUDE="^\.hermesfs-"
mkdir -p "$H" "$S1" "$S2" "$T/config/hermesfs" "$T/nowhere"
export XDG_CONFIG_HOME=$T/config
# A sandbox whose every remote call fails, counting the calls.
cat > "$T/failsb" <<EOF
#!/bin/sh
echo call >> "$T/calls.\$1"
exit 1
EOF
chmod +x "$T/failsb"
cat > "$T/config/hermesfs/config" <<'EOF'
[defaults]
auto-push = no
max-files = 100
ignore = venvs/
[sandbox a]
conflict = host-wins
max-file-size = 1K
[sandbox x]
retry = 0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1
[sandbox y]
auto-push = yes
retry = 0.2
EOF
mounted() { grep -q " $H fuse" /proc/self/mounts; }
at_exit 'mounted && fusermount3 -uz "$H"'
ctl() { "$FSCTL" -m "$H" "$@"; }
expect_rc() { local want=$1; shift; "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "'$*': exit $rc, wanted $want"; }; }
calls() { cat "$T/calls.$1" 2>/dev/null | wc -l; }

"$HERMESFS" -f --state "$ST" --sandbox a="local:$S1" --sandbox b="local:$S2" \
    --sandbox x="cmd:$T/failsb x#$T/nowhere" --sandbox y="cmd:$T/failsb y#$T/nowhere" \
    "$H" 2>>"$T/daemon.log" &
DPID=$!
wait_for mounted || { cat "$T/daemon.log"; fail "mount did not appear"; }
printf 'base\n' > "$H/f"
mkdir -p "$H/venvs/host"; printf 'host venv\n' > "$H/venvs/host/keep"
expect_rc 0 ctl sync a
expect_rc 0 ctl sync b
assert_eq "$(cat "$S1/f")" "base" "pushed to a"
assert_absent "$S1/venvs"

note "retry list of [sandbox x] drives an explicit sync: 1 + 8 attempts"
expect_rc 1 ctl sync x
grep -q "after 9 attempts" "$T/err" || fail "retry = 8 delays not used: $(cat "$T/err")"
per=$(( $(calls x) / 9 ))
[ "$per" -ge 1 ] && [ $(( per * 9 )) = "$(calls x)" ] || fail "$(calls x) remote calls for 9 attempts"
note "and a pull: 9 listing attempts 0.1 s apart (doubling would take 25 s)"
rm "$T/calls.x"
expect_rc 1 timeout 15 "$FSCTL" -m "$H" pull x
assert_eq "$(calls x)" 9 "pull attempts"

note "retry of [sandbox y] drives the background backoff (0.2 s, not 2, 4, 8 s)"
# y has failed in the background since the mount. The default schedule
# (2, 4, 8 ... 60 s) allows 5 attempts in the first 30 s, never 8.
WAIT_S=20 wait_for eval '[ "$(calls y)" -ge $((per * 8)) ]' ||
    fail "only $(calls y) background calls to y"
expect_rc 0 ctl sandbox rm y
grep -q "push to y failed" "$T/daemon.log" || fail "background failures not logged"

note "conflict = host-wins in [sandbox a]; b keeps the default (conflict copy)"
printf 'host\n' > "$H/f"
printf 'from a\n' > "$S1/f"; touch -d '+3 seconds' "$S1/f"
printf 'from b\n' > "$S2/f"; touch -d '+3 seconds' "$S2/f"
expect_rc 0 ctl pull a
assert_eq "$(cat "$H/f")" "host" "host-wins kept the host version"
ls "$H" | grep -q '^f\.conflict-' && fail "host-wins made a conflict copy"
expect_rc 5 ctl pull b
assert_eq "$(cat "$H/f")" "from b" "default policy applies the remote"
copy=$(ls "$H" | grep '^f\.conflict-b-') || fail "no conflict copy for b"
assert_eq "$(cat "$H/$copy")" "host" "host version kept beside it"

note "max-file-size = 1K in [sandbox a] refuses a 2 KiB file; b has no such cap"
head -c 2048 /dev/urandom > "$S1/big"
cp "$S1/big" "$S2/big2"
expect_rc 1 ctl pull a
grep -q "cap" "$T/err" || fail "cap message: $(cat "$T/err")"
assert_absent "$H/big"
expect_rc 0 ctl pull b
cmp -s "$S2/big2" "$H/big2" || fail "b's 2 KiB file not pulled"
rm "$S1/big"

note "ignore = venvs/ applies to the pull: 2000 sandbox files, max-files = 100"
mkdir -p "$S2/venvs/lib"
for i in $(seq 2000); do : > "$S2/venvs/lib/m$i.py"; done
ln -s /usr/bin/python3 "$S2/venvs/python"     # would be refused (absolute)
printf 'real\n' > "$S2/real"
tree_manifest "$H/venvs" > "$T/venvs.before"
expect_rc 0 ctl pull b
assert_eq "$(cat "$H/real")" "real" "the real change was applied"
grep -q "cap" "$T/err" && fail "ignored files hit the cap: $(cat "$T/err")"
grep -q " 0 refused" "$T/out" || fail "pull summary: $(cat "$T/out")"
cat "$T/out" "$T/err" | grep -v " 0 refused" | grep -q "refused" &&
    fail "ignored paths were refused: $(cat "$T/out" "$T/err")"
tree_manifest "$H/venvs" > "$T/venvs.after"
diff -u "$T/venvs.before" "$T/venvs.after" || fail "host venvs/ changed by the pull"
note "without the ignore rule the same pull hits the cap (so the above can fail)"
expect_rc 0 ctl umount
wait_for eval '! mounted' || fail "umount"
wait "$DPID"
sed -i '/^ignore = venvs/d' "$T/config/hermesfs/config"
"$HERMESFS" -f --state "$ST" "$H" 2>>"$T/daemon.log" &
DPID=$!
wait_for mounted || { cat "$T/daemon.log"; fail "remount"; }
expect_rc 1 ctl pull b
grep -q "cap" "$T/err" || fail "no cap without the ignore rule: $(cat "$T/err")"
expect_rc 0 ctl umount
wait_for eval '! mounted' || fail "umount"
wait "$DPID"; assert_eq "$?" 0 "daemon exit"
echo ok
