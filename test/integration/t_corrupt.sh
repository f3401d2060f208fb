#!/bin/bash
# Disk corruption (jaco-recovery(7), DISK CORRUPTION): a bit flipped in a
# stopped follower's log segment or snapshot stops its start with the file,
# the offset and the remedy; nothing is changed on disk; the remedy (wipe
# the data directory, join again with a token) brings it back with every
# acknowledged write.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster --snapshot-threshold 1000 --snapshot-trailing 200
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 16 --count 3000 --prefix c- \
    --ack-file "$WORK/acked" >/dev/null || fail "writes"
victim=$((leader % 3 + 1))
wait_applied "$victim" "$(status_field "$leader" commit_index)"
stop_node "$victim"

flip() { # flip FILE OFFSET: invert one byte in place
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
try_start() { # try_start WHAT PATTERN...: the start must fail, naming them
    local what=$1 p
    shift
    if timeout 30 "$KVSTORE" serve --id "$victim" --address "${PEER[$victim]}" \
        --client "${CLIENT[$victim]}" --data-dir "$WORK/n$victim" >"$WORK/out" 2>&1; then
        fail "started with a $what"
    fi
    for p in "$@"; do
        grep -q -- "$p" "$WORK/out" || fail "$what: no \"$p\" in: $(cat "$WORK/out")"
    done
}

# A segment: flip a byte inside its first record.
seg=$(ls "$WORK/n$victim/raft/" | grep '^seg-' | head -n 1)
[ -n "$seg" ] || fail "no log segment in $WORK/n$victim/raft"
cp "$WORK/n$victim/raft/$seg" "$WORK/seg.orig"
flip "$WORK/n$victim/raft/$seg" 100
cp "$WORK/n$victim/raft/$seg" "$WORK/seg.flipped"
try_start "bit-flipped segment" "$seg" "offset" "wipe the data directory"
cmp -s "$WORK/n$victim/raft/$seg" "$WORK/seg.flipped" || fail "the failed start changed the segment"
cp "$WORK/seg.orig" "$WORK/n$victim/raft/$seg"
log "a flipped segment byte is named: $(grep -o 'seg-[^ ]*' "$WORK/out" | head -n 1)"

# A snapshot: flip a byte in the middle of the newest one.
snap=$(ls "$WORK/n$victim/raft/" | grep '^snapshot-' | sort -t- -k3 -n | tail -n 1)
[ -n "$snap" ] || fail "no snapshot in $WORK/n$victim/raft"
size=$(stat -c %s "$WORK/n$victim/raft/$snap")
cp "$WORK/n$victim/raft/$snap" "$WORK/snap.orig"
flip "$WORK/n$victim/raft/$snap" $((size / 2))
try_start "bit-flipped snapshot" "$snap"
log "a flipped snapshot byte is named"
cp "$WORK/snap.orig" "$WORK/n$victim/raft/$snap"
truncate -s $((size / 2)) "$WORK/n$victim/raft/$snap"
try_start "truncated snapshot" "$snap"
log "a truncated snapshot is named"
cp "$WORK/snap.orig" "$WORK/n$victim/raft/$snap"

# A segment cut short at its end looks like a crash in the middle of a
# write: cut back to the last whole record, logged, and the node catches up.
truncate -s 200 "$WORK/n$victim/raft/$seg"
start_node "$victim"
wait_client "$victim"
grep -q "torn" "$WORK/log$victim" || fail "the cut segment was not reported: $(tail -5 "$WORK/log$victim")"
kv "$leader" put after-cut yes >/dev/null || fail "write after the cut"
wait_applied "$victim" "$(status_field "$leader" commit_index)"
"$KVLOAD" --servers "${CLIENT[$victim]}" --verify "$WORK/acked" >&2 ||
    fail "the node with a cut segment misses acknowledged writes after catching up"
stop_node "$victim"
log "a cut segment is repaired and the node catches up"

# The remedy: wipe the directory and join again with a token.
rm -rf "$WORK/n$victim"
start_node "$victim" --join-token "$(kv "$leader" token 600)"
wait_client "$victim"
kv "$leader" put after-rejoin yes >/dev/null || fail "write after the rejoin"
wait_applied "$victim" "$(status_field "$leader" commit_index)"
"$KVLOAD" --servers "${CLIENT[$victim]}" --verify "$WORK/acked" >&2 ||
    fail "the rejoined node misses acknowledged writes"

# Partially synced: a snapshot install cut short by a stop leaves the
# sentinel; the next start moves the log aside and re-syncs from the leader.
stop_node "$victim"
: >"$WORK/n$victim/raft/SYNCING"
"$top_builddir/jaco" recover inspect "$WORK/n$victim" | grep -q 'PARTIALLY SYNCED' ||
    fail "inspect does not report the sentinel"
start_node "$victim"
wait_client "$victim"
grep -q "partially synced: a snapshot install did not complete" "$WORK/log$victim" ||
    fail "no partially-synced log line"
ls -d "$WORK/n$victim/raft/partial-"* >/dev/null || fail "the log was not moved aside"
kv "$leader" put after-partial yes >/dev/null || fail "write after the partial start"
wait_applied "$victim" "$(status_field "$leader" commit_index)"
assert_eq "$(status_field "$victim" partially_synced)" false "partially_synced after the re-sync"
[ ! -e "$WORK/n$victim/raft/SYNCING" ] || fail "the sentinel is still there after the re-sync"
"$KVLOAD" --servers "${CLIENT[$victim]}" --verify "$WORK/acked" >&2 ||
    fail "the re-synced node misses acknowledged writes"
log "ok"
