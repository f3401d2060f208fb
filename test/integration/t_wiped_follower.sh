#!/bin/bash
# A follower whose data directory is wiped rejoins and catches up through a
# snapshot install from the leader.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster --snapshot-threshold 300 --snapshot-trailing 50
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
victim=$(( leader % 3 + 1 ))
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 32 --count 2000 \
    --prefix p --ack-file "$WORK/acked" >/dev/null || fail "load"
kill_node "$victim"
rm -rf "$WORK/n$victim"
log "wiped node $victim"
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 32 --count 1000 \
    --prefix q --ack-file "$WORK/acked" >/dev/null || fail "load 2"
start_node "$victim" --initial-cluster "$(initial_cluster)" \
    --snapshot-threshold 300 --snapshot-trailing 50
wait_client "$victim"
commit=$(status_field "$leader" commit_index)
wait_applied "$victim" "$commit"
snap=$(status_field "$victim" snapshot_index)
[ "$snap" -gt 0 ] || fail "node $victim caught up without a snapshot"
"$KVLOAD" --servers "${CLIENT[$victim]}" --verify "$WORK/acked" >&2 ||
    fail "wiped node misses writes"
grep -q "restored a" "$WORK/log$victim" || fail "no snapshot restore logged"
# The install's partially-synced sentinel is gone once it was restored.
assert_eq "$(status_field "$victim" partially_synced)" false "partially_synced after the install"
[ ! -e "$WORK/n$victim/raft/SYNCING" ] || fail "the install left its sentinel"
log "ok"
