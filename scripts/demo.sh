#!/usr/bin/env bash
# make demo: mount a demo tree over a local sandbox and show the whole cycle:
# host writes -> journal -> push -> exec in the sandbox -> sandbox edit ->
# flush (push + three-way pull) -> status -> unmount.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BIN=$PWD/$BUILD/bin
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/hermesfs-demo.XXXXXX)}
HOME_DIR=$DEMO/hermes        # stands for ~/.hermes (mounted over itself)
SANDBOX=$DEMO/sandbox        # the "remote" sandbox: a local directory
STATE=$DEMO/state
FSCTL="$BIN/hermes-fsctl -m $HOME_DIR"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cleanup() {
    if grep -q " $HOME_DIR fuse" /proc/self/mounts 2>/dev/null; then
        fusermount3 -u "$HOME_DIR" 2>/dev/null || fusermount3 -uz "$HOME_DIR" || true
    fi
}
trap cleanup EXIT

step "a home directory with a credential and a skill, and an empty sandbox"
mkdir -p "$HOME_DIR/skills" "$SANDBOX"
printf 'token=demo-secret\n' > "$HOME_DIR/credentials"
chmod 600 "$HOME_DIR/credentials"
printf '#!/bin/sh\necho "hello from the skill, running in $(pwd)"\n' > "$HOME_DIR/skills/hello.sh"
chmod 755 "$HOME_DIR/skills/hello.sh"
ls -lR "$HOME_DIR" | sed 's/^/  /'

step "mount hermesfs over the home directory itself, with one local sandbox"
run "$BIN/hermesfs" --state "$STATE" --sandbox demo="local:$SANDBOX" "$HOME_DIR"
for _ in $(seq 100); do grep -q " $HOME_DIR fuse" /proc/self/mounts && break; sleep 0.1; done

step "the agent writes through the mount; every change is journaled"
run mkdir -p "$HOME_DIR/memories"
printf 'the user likes tea\n' > "$HOME_DIR/memories/notes.md"
echo '$ echo "the user likes tea" > memories/notes.md'
run $FSCTL log

step "a command in the sandbox sees every host change made before it"
run $FSCTL exec -s demo -- 'ls -l; sh skills/hello.sh; cat memories/notes.md; export LAST=ran; cd memories'
run $FSCTL exec -s demo -- 'echo "cwd is now $(pwd), LAST=$LAST"'
echo "credentials mode in the sandbox: $(stat -c %a "$SANDBOX/credentials")"

step "the sandbox changes a file and creates one (as a remote agent would)"
printf 'the user likes tea and biscuits\n' > "$SANDBOX/memories/notes.md"
printf 'result: 42\n' > "$SANDBOX/memories/result.txt"
touch -d '+2 seconds' "$SANDBOX/memories/notes.md"

step "teardown: flush pushes what is pending and pulls back what changed"
run $FSCTL flush demo
run cat "$HOME_DIR/memories/notes.md" "$HOME_DIR/memories/result.txt"
run $FSCTL status

step "unmount cleanly"
run $FSCTL umount
for _ in $(seq 100); do grep -q " $HOME_DIR fuse" /proc/self/mounts || break; sleep 0.1; done
echo "the home directory keeps everything after unmount:"
run cat "$HOME_DIR/memories/result.txt"
printf '\ndemo finished; files are in %s\n' "$DEMO"
