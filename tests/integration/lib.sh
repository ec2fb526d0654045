# lib.sh — shared helpers for shell integration tests (source it).
# Each test gets its own scratch dir $T, removed at exit along with anything
# registered with `at_exit`. Binaries come from $HERMES_BUILD.
set -u
HERMES_SRC=${HERMES_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HERMES_BUILD=${HERMES_BUILD:-$HERMES_SRC/build}
HERMESFS=$HERMES_BUILD/bin/hermesfs
FSCTL=$HERMES_BUILD/bin/hermes-fsctl
T=$(mktemp -d "${TMPDIR:-/tmp}/hermes-test.XXXXXX")
# A clean HOME of its own: the commands a test runs through exec start a
# login shell, and the machine's ~/.bashrc (pyenv rehash takes a lock, and
# a killed shell leaves it behind) must not stall or print into them.
export HOME=$T/userhome
mkdir -p "$HOME"
_exit_cmds=()
at_exit() { _exit_cmds+=("$*"); }
_run_exit() {
    local rc=$? i
    for ((i = ${#_exit_cmds[@]} - 1; i >= 0; i--)); do eval "${_exit_cmds[i]}" >/dev/null 2>&1 || true; done
    rm -rf "$T" 2>/dev/null || true
    exit $rc
}
trap _run_exit EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "--- $*"; }
assert_eq() { [ "$1" == "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }
assert_file_eq() { cmp -s "$1" "$2" || fail "files differ: $1 $2"; }
assert_exists() { [ -e "$1" ] || [ -L "$1" ] || fail "missing: $1"; }
assert_absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "should not exist: $1"; }

# tree_manifest DIR: one line per entry: type, mode, size, sha256/target, path
# (sorted). Excludes names given in $MANIFEST_EXCLUDE (a grep -E pattern).
tree_manifest() {
    (cd "$1" && find . -mindepth 1 -printf '%y %m %P\n' | sort -k3 | while read -r ty mo p; do
        [ -n "${MANIFEST_EXCLUDE:-}" ] && [[ $p =~ $MANIFEST_EXCLUDE ]] && continue
        case $ty in
        f) echo "f $mo $(stat -c %s "$p") $(sha256sum < "$p" | cut -c1-64) $p" ;;
        l) echo "l - - $(readlink "$p") $p" ;;
        d) echo "d $mo - - $p" ;;
        *) echo "$ty $mo - - $p" ;;
        esac
    done)
}
# assert_trees_equal A B: same entries, types, modes and content.
assert_trees_equal() {
    tree_manifest "$1" > "$T/.m1"; tree_manifest "$2" > "$T/.m2"
    diff -u "$T/.m1" "$T/.m2" >&2 || fail "trees differ: $1 vs $2"
}
# wait_for CMD...: retry for up to ${WAIT_S:-10}s.
wait_for() {
    local i
    for ((i = 0; i < ${WAIT_S:-10} * 20; i++)); do "$@" && return 0; sleep 0.05; done
    return 1
}
# free_port: an unused TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}
