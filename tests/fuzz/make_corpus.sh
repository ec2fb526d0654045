#!/usr/bin/env bash
# Regenerates the seed corpus in tests/fuzz/corpus/ (committed; run by hand
# when a format changes). Tars come from GNU tar in each of its formats,
# listings from the real listing script (pull_list_script) run on a real
# tree in both variants. Everything is small: seeds only need to reach the
# parsers' main paths, the fuzzer finds the rest.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TZ=UTC LC_ALL=C TAR_OPTIONS=--blocking-factor=1
rm -rf "$C"
mkdir -p "$C"/{pull_tar,pull_list,pull_path,url,config,ignore,exec_marker}

# ---- pull_tar: the harness requests a, b.txt, big, d/e, d/f/g, dup, empty, "x y", z
mk_tree() {
    rm -rf "$T/t" && mkdir -p "$T/t/d/f" && cd "$T/t"
    printf 'alpha\n' >a; printf 'bee text\n' >b.txt; : >empty
    printf 'e\n' >d/e; printf 'g content\n' >d/f/g; printf 'space\n' >'x y'
    head -c 3000 /dev/zero | tr '\0' z >z
    touch -d @1700000000 a b.txt empty d/e d/f/g 'x y' z d d/f .
    cd - >/dev/null
}
mk_tree
for fmt in gnu ustar pax v7 oldgnu; do
    tar -C "$T/t" --format=$fmt --owner=0 --group=0 --sort=name -cf "$C/pull_tar/$fmt.tar" \
        ./a ./b.txt ./empty ./d ./x\ y ./z 2>/dev/null || true
done
# Not requested, links, a fifo, a device: all must be refused.
( cd "$T/t" && ln -s a link && ln a hard && mkfifo fifo && mknod null c 1 3 2>/dev/null || true
  printf 'no\n' >unrequested )
tar -C "$T/t" --format=pax --sort=name -cf "$C/pull_tar/hostile-types.tar" \
    ./a ./link ./hard ./fifo ./unrequested $( [ -e "$T/t/null" ] && echo ./null )
# Over the 16 KiB single-file cap of the harness.
head -c 17000 /dev/zero | tr '\0' B >"$T/t/big"
tar -C "$T/t" --format=gnu -cf "$C/pull_tar/cap-size.tar" ./big
# The same name twice (second copy refused), via two concatenated archives.
printf 'one\n' >"$T/t/dup"
tar -C "$T/t" --format=ustar -cf "$T/p1.tar" ./dup ./a
tar -C "$T/t" --format=ustar -cf "$T/p2.tar" ./dup ./z
cat "$T/p1.tar" "$T/p2.tar" >"$C/pull_tar/concatenated-dup.tar"
# Names outside the tree (GNU tar keeps them with -P).
mkdir -p "$T/evil/sub"; printf x >"$T/evil/sub/f"; printf y >"$T/evil/abs"
tar -C "$T/evil/sub" -P --format=pax -cf "$C/pull_tar/dotdot.tar" ../sub/f "$T/evil/abs"
# Long names (pax and GNU long-name extensions).
L=$(printf 'n%.0s' $(seq 1 120))/$(printf 'm%.0s' $(seq 1 120))
mkdir -p "$T/long/${L%/*}"; printf long >"$T/long/$L"
tar -C "$T/long" --format=pax -cf "$C/pull_tar/longname-pax.tar" "./$L"
tar -C "$T/long" --format=gnu -cf "$C/pull_tar/longname-gnu.tar" "./$L"
# Truncated in the middle of a member.
head -c 700 "$C/pull_tar/gnu.tar" >"$C/pull_tar/truncated.tar"

# ---- pull_list: the real listing script on a real tree, both variants
cat >"$T/script.c" <<'EOC'
#include <stdio.h>
#include <stdlib.h>
#include "sync/pull_int.h"
int main(int argc, char **argv)
{
	char *s = pull_list_script(argv[1], argc > 2);
	if (!s)
		return 1;
	fputs(s, stdout);
	free(s);
	return 0;
}
EOC
cc -std=gnu11 -D_GNU_SOURCE -I. -o "$T/script" "$T/script.c" sync/pull_list.c sync/pull_path.c
mk_tree
( cd "$T/t" && ln -s d/e link && ln -s ../x dangling 2>/dev/null; mkdir -p .hermesfs-tmp
  printf 'id-1234\n' >.hermesfs-sandbox; printf s >.hermesfs-tmp/staged )
"$T/script" "$T/t" >"$T/gnu.sh"
"$T/script" "$T/t" portable >"$T/portable.sh"
sh "$T/gnu.sh" >"$C/pull_list/gnu.bin"
sh "$T/portable.sh" >"$C/pull_list/portable.bin"
"$T/script" "$T/missing" >"$T/missing.sh"
sh "$T/missing.sh" >"$C/pull_list/root-missing.bin"
# Hand-made hostile records: escape, forged child of a symlink, duplicate,
# device, negative mtime, bad numbers, truncated (no E record).
printf 'Gd 755 4096 1700000000.5 d\0\0Gf 644 3 1700000000.0000000001 d/x\0\0Gl 777 5 1 up\0../..\0Gf 600 1 -5 ../esc\0\0Gl 777 1 1 d/l\0..\0Gf 644 1 1 d/l/x\0\0Gf 644 1 1 d/x\0\0Gc 644 0 1 dev\0\0Gf 9a 1 1 bad\0\0E\0' \
    >"$C/pull_list/hostile.bin"
printf 'S41ed 4096 1700000000 ./d\0\0S81a4 12 1700000000 ./d/f\0\0SA1ff 3 1700000000 ./d/s\0f\0S2190 0 1 ./tty\0\0' \
    >"$C/pull_list/truncated-portable.bin"
printf 'Mmarker \n\0Mforged\0E\0tail' >"$C/pull_list/marker-trailing.bin"

# ---- pull_path: PATH NUL SYMLINK-TARGET
i=0
while IFS= read -r line; do
    i=$((i + 1)); printf '%b' "$line" >"$C/pull_path/p$i"
done <<'EOL'
a/b\0c
./a/b/c\0../../x
d/e/l\0../../..
a\0/etc/passwd
../x\0y
a//b\0z
dir/link\0./../a/./b
x\0a/../..
.hermesfs-tmp/f\0a
.hermesfs-sandbox\0a
a\x1b[31mred\nforged line\0a
EOL

# ---- url
i=0
while IFS= read -r line; do
    i=$((i + 1)); printf '%s' "$line" >"$C/url/u$i"
done <<'EOL'
local:/tmp/sandbox
local:/
local:/a/../b
ssh://user@host:2222/home/user/.hermes
ssh://host/root/
ssh://[::1]:22/srv/x
ssh://@host/x
ssh://host:99999/x
cmd:docker exec -i box#/root
cmd:kubectl exec -i pod -- #/home/agent
cmd:sh -c 'a "b c"' \x #/x
cmd:"unbalanced
cmd:#/x
http://example.com/x
EOL

# ---- config
cat >"$C/config/full.ini" <<'EOI'
# hermesfs config
[defaults]
retry = 2,4,8
conflict = conflict-copy
max-total-bytes = 4G
max-files = 200000
max-file-size = 1G
parallel = 4
accept-new-host-keys = no
identity = ~/.ssh/id_ed25519
known-hosts = ~/.ssh/known_hosts
ignore = *.sock
ignore = cache/
ignore = !cache/keep

[sandbox box]
retry = 0.5, 1
ignore = /build/**/tmp
max-file-size = 10M
EOI
printf '[sandbox]\nretry = 1\n' >"$C/config/bad-section.ini"
printf '[defaults]\nunknown = 1\n' >"$C/config/bad-key.ini"
printf '; only a comment\n\n   \n[ defaults ]\nparallel=1\n[sandbox  s1 ]\nconflict=host-wins\n' \
    >"$C/config/spacing.ini"

# ---- ignore: patterns, NUL, paths
printf '*.sock\ncache/\n!cache/keep\n/build/**/tmp\n**/node_modules\n[a-c]?.log\n\\!x\n\0run/agent.sock\ncache/keep\ncache/x/y\nbuild/a/b/tmp/f\nsrc/node_modules/x\nab.log\n!x' \
    >"$C/ignore/gitignore"
printf 'a\n/b\nc/\n\0a\nb\nx/b\nc\nc/d\nx/a/y' >"$C/ignore/plain"
printf '[\n[!\n[]]\n[^a]\n*[\n\0[\na\n]\nb' >"$C/ignore/brackets"
# ---- exec_marker: a command's stdout with the session's markers (nonce of
# the harness), split, malformed, with a foreign nonce, at EOF mid-marker.
N=0123456789abcdef0123456789abcdef
M=$(printf '\036HERMES:')
printf '%sP11:4242 4243\nhello\n%sE3:0 /%s' "$M$N:" "$M$N:" "tail" >"$C/exec_marker/normal"
printf 'out\036HERMES:ffffffffffffffffffffffffffffffff:E1:0\036HER%sE99999999:x%sE:\n%sE2:0' \
    "$M$N:" "$M$N:" "$M$N:" >"$C/exec_marker/malformed"
printf 'binary\0\377\036\036%sP0:' "$M$N:" >"$C/exec_marker/binary-empty"
echo "corpus: $(find "$C" -type f | wc -l) files, $(du -sk "$C" | cut -f1) KiB"
