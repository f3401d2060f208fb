#!/bin/bash
# The leader's disk fills up (a real 16 MiB tmpfs as its data directory):
# it hands leadership to another voter, writes go on through the new
# leader, nothing acknowledged is lost, and once the tmpfs grows the old
# leader catches up by itself.
#
# The full leader's log store holds its writes (io.c, hold_update): the
# followers' copies commit them, and it hands leadership over. Told of a
# failed append instead, raft 0.15 cuts entries the followers keep, and the
# leader could not replicate any more ("read the snapshot to send: no
# snapshot").
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
mkdir -p "$WORK/n1"
if ! mount -t tmpfs -o size=16m tmpfs "$WORK/n1" 2>/dev/null; then
    log "SKIP: cannot mount a tmpfs here (not root?)"
    exit 77
fi
ON_EXIT="umount '$WORK/n1'"

start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
# Node 1, whose disk is small, must lead: stop the others in turn until it
# does (SIGTERM hands leadership over).
while [ "$leader" != 1 ]; do
    stop_node "$leader"
    start_node "$leader" --initial-cluster "$(initial_cluster)"
    wait_client "$leader"
    leader=$(NOT_LEADER=$leader wait_leader 1 2 3)
done
log "node 1 leads with a 16 MiB disk"

# 40 MB of values through every node: node 1's disk fills part way; the
# writes that fail there say so, and the cluster goes on without it.
"$KVLOAD" --servers "${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}" --inflight 16 --count 40000 \
    --value-size 1000 --prefix full --ack-file "$WORK/acked" \
    >"$WORK/load.out" 2>"$WORK/load.err" || true
grep -q "handing leadership to another voter" "$WORK/log1" ||
    fail "the full leader did not step down: $(grep -i 'space' "$WORK/log1" | head -3)"
new=$(NOT_LEADER=1 wait_leader 1 2 3)
kill -0 "${PID[1]}" 2>/dev/null || fail "the full leader died"
kv "$new" put after-full yes >/dev/null || fail "a write through the new leader $new"
acked=$(wc -l <"$WORK/acked")
[ "$acked" -gt 20000 ] || fail "only $acked writes acknowledged: the cluster stalled with the full leader"
log "node 1 stepped down; node $new leads; $acked writes acknowledged"
commit=$(status_field "$new" commit_index)
for i in 2 3; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i misses acknowledged writes"
done

mount -o remount,size=256m "$WORK/n1"
t0=$SECONDS
wait_applied 1 "$commit"
log "node 1 caught up $((SECONDS - t0)) s after the tmpfs grew"
"$KVLOAD" --servers "${CLIENT[1]}" --verify "$WORK/acked" >&2 ||
    fail "the old leader misses acknowledged writes after catching up"
log "ok"
