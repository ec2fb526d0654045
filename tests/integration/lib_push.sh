# lib_push.sh — helpers for push tests: a host tree changed by random
# operations, each journaled with tool_push as the mount would.
# Source after lib.sh. Uses $TOOL, $DB, $HOST.
TOOL=$HERMES_BUILD/itests/tool_push
export MANIFEST_EXCLUDE='^\.hermesfs-(sandbox|tmp)'

# jr OP PATH [PATH2]: journal one entry
jr() { "$TOOL" j "$DB" "$@" || fail "journal $*"; }
# _jq OP PATH [PATH2]: queue an entry (flushed by random_ops in one call)
_jq() { local IFS=$'\t'; echo "$*" >> "$T/.jq"; }
# With NOJ=1 nothing is journaled by hand (the tree is a hermesfs mount).
NOJ=${NOJ:-}

# _pick TYPE: a random existing entry of TYPE (f, d, l) under $HOST in $P
# (RANDOM is only drawn in this shell, never in a subshell: deterministic)
_pick() {
    local -a all
    mapfile -t all < <(cd "$HOST" && find . -mindepth 1 -type "$1" -printf '%P\n' | LC_ALL=C sort)
    ((${#all[@]})) || return 1
    P=${all[RANDOM % ${#all[@]}]}
}
# _dir: a random directory ("" = root, half of the time) in $D
_dir() { D=; ((RANDOM % 2)) && _pick d && D=$P; return 0; }
# _at NAME: NAME inside $D
_at() { [ -z "$D" ] && echo "$1" || echo "$D/$1"; }

# random_ops N: N random mutations of $HOST, journaled in one batch
random_ops() {
    local i n p q k
    : > "$T/.jq"
    for ((i = 0; i < $1; i++)); do
        k=$((RANDOM % 10)); n="n$RANDOM"
        case $k in
        0|1|2) _dir; p=$(_at "$n"); head -c $((RANDOM % 3000)) /dev/urandom > "$HOST/$p"; _jq create "$p" ;;
        3) _pick f || continue; p=$P; echo "more $RANDOM" >> "$HOST/$p"; _jq write "$p" ;;
        4) _dir; p=$(_at "d$n"); mkdir "$HOST/$p"; _jq mkdir "$p" ;;
        5|6) _pick "$( ((k == 5)) && echo f || echo d)" || continue; p=$P; _dir; q=$(_at "r$n")
           [[ $q == "$p"/* ]] && continue; mv "$HOST/$p" "$HOST/$q"; _jq rename "$p" "$q" ;;
        7) _pick f || continue; p=$P; rm "$HOST/$p"; _jq unlink "$p" ;;
        8) _pick f || continue; p=$P; chmod $((RANDOM % 2 ? 600 : 755)) "$HOST/$p"; _jq chmod "$p" ;;
        9) _dir; p=$(_at "l$n"); ln -s "t$RANDOM" "$HOST/$p"; _jq symlink "$p" "t" ;;
        esac
    done
    [ -n "$NOJ" ] || "$TOOL" j "$DB" - < "$T/.jq" || fail "journal batch"
}
# push NAME [args]: push $HOST to sandbox NAME, stats in $STATS
push() { local sb=$1; shift; STATS=$("$TOOL" push "$DB" "$sb" "$HOST" "$@") || fail "push $sb failed: $STATS"; }
# stat_of KEY: a value from the last push's stats
stat_of() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<< "$STATS"; }
# fast_trees_equal A B: same entries, types, modes, sizes, link targets and
# content, in a handful of processes (assert_trees_equal hashes per file).
fast_trees_equal() {
    local x='\./\.hermesfs-(sandbox|tmp)'
    (cd "$1" && find . -mindepth 1 -printf '%y %m %s %l %p\n' | grep -Ev " $x" | sed 's/^d \([0-7]*\) [0-9]*/d \1 -/' | LC_ALL=C sort -k5) > "$T/.f1"
    (cd "$2" && find . -mindepth 1 -printf '%y %m %s %l %p\n' | grep -Ev " $x" | sed 's/^d \([0-7]*\) [0-9]*/d \1 -/' | LC_ALL=C sort -k5) > "$T/.f2"
    diff -u "$T/.f1" "$T/.f2" >&2 || fail "trees differ (listing): $1 vs $2"
    diff -rq --no-dereference -x .hermesfs-sandbox -x .hermesfs-tmp "$1" "$2" >&2 || fail "trees differ (content): $1 vs $2"
}
