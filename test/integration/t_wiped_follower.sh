#!/bin/bash
# A follower whose data directory is wiped rejoins and catches up through a
# snapshot install from the leader; also from an idle leader whose last
# entry is its snapshot's and whose state takes longer to read than a
# heartbeat interval (raft 0.15 took the follower's heartbeat rejections
# for a refused snapshot and aborted every send: it never caught up).
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

# ---- an idle leader, a large state, its snapshot at its last entry ----
leader=$(wait_leader 1 2 3)
victim=$(( leader % 3 + 1 ))
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 64 --count 30000 \
    --value-size 4000 --random-values --prefix big --ack-file "$WORK/acked-big" \
    >/dev/null || fail "large load"
kill_node "$victim"
rm -rf "$WORK/n$victim"
# Snapshot now: the leader's last entry (the snapshot's barrier) is its
# snapshot's, and nothing is written after.
kv "$leader" snapshot >/dev/null || fail "snapshot on the leader"
log "wiped node $victim again; leader $leader idle at its snapshot"
start_node "$victim" --initial-cluster "$(initial_cluster)" \
    --snapshot-threshold 300 --snapshot-trailing 50
wait_client "$victim"
commit=$(status_field "$leader" commit_index)
t0=$SECONDS
wait_applied "$victim" "$commit"
log "caught up from the idle leader in $((SECONDS - t0)) s"
# Aborted sends took 17 s, 34 s and for ever here; one lost send costs
# the install timeout (5 s) once.
((SECONDS - t0 < 10)) || fail "the catch-up took $((SECONDS - t0)) s: snapshot sends were aborted"
"$KVLOAD" --servers "${CLIENT[$victim]}" --verify "$WORK/acked-big" >&2 ||
    fail "the wiped node misses writes of the large load"
log "ok"
