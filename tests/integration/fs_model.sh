#!/usr/bin/env bash
# Randomized model test: thousands of random operations (writes at offsets,
# appends, truncates, renames, unlinks, mkdir/rmdir, links, symlinks,
# long-lived handles across renames) through the mount and on a plain model
# directory, compared at every step; then every path that changed has a
# journal entry. Seed printed for replay: FS_MODEL_SEED=N.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_mount.sh"

B=$T/backing M=$T/mnt MODEL=$T/model
mkdir -p "$B" "$M" "$MODEL"
SEED=${FS_MODEL_SEED:-$(( $(date +%s) % 100000 ))}
STEPS=${FS_MODEL_STEPS:-3000}
note "seed $SEED, $STEPS steps"
mount_hermesfs "$B" "$M"
timeout 300 python3 "$(dirname "$0")/fs_model.py" "$M" "$B" "$MODEL" "$SEED" "$STEPS" ||
    fail "model test diverged (replay with FS_MODEL_SEED=$SEED)"

note "every path in the final tree was journaled"
unmount_hermesfs "$M" || fail "unclean exit"
journal | cut -d' ' -f3- | tr ' ' '\n' | sort -u > "$T/journaled"
(cd "$B" && find . -mindepth 1 -printf '%P\n') | sort > "$T/present"
# A path is covered by an entry for itself or for an ancestor (a directory
# renamed with everything in it).
missing=$(python3 - "$T/journaled" "$T/present" <<'PY'
import sys
j = set(open(sys.argv[1]).read().split("\n"))
for p in open(sys.argv[2]).read().split("\n"):
    parts = p.split("/")
    if p and not any("/".join(parts[:i]) in j for i in range(1, len(parts) + 1)):
        print(p)
PY
)
[ -z "$missing" ] || fail "paths never journaled: $missing"
echo PASS
