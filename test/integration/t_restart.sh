#!/bin/bash
# Full cluster restart, both after SIGTERM and after kill -9: the state comes
# back from the last snapshot plus the log.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster --snapshot-threshold 500 --snapshot-trailing 100
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 32 --count 3000 \
    --prefix r --ack-file "$WORK/acked" >/dev/null || fail "load"
snap=$(status_field "$leader" snapshot_index)
[ "$snap" -gt 0 ] || fail "no snapshot taken (snapshot_index $snap)"
log "snapshot at $snap, commit $(status_field "$leader" commit_index)"

# The leader first: SIGTERM hands leadership over (TimeoutNow) and exits 0.
stop_node "$leader"
rest=()
for i in 1 2 3; do [ "$i" != "$leader" ] && rest+=("$i"); done
NOT_LEADER=$leader wait_leader "${rest[@]}" >/dev/null
grep -q "leadership transferred to node" "$WORK/log$leader" ||
    fail "the stopping leader did not hand leadership over"
for i in "${rest[@]}"; do stop_node "$i"; done
start_cluster --snapshot-threshold 500 --snapshot-trailing 100
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
for i in 1 2 3; do
    wait_applied "$i" 3000
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i lost writes after a graceful restart"
done

"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 32 --count 1000 \
    --prefix s --ack-file "$WORK/acked" >/dev/null || fail "load 2"
for i in 1 2 3; do kill_node "$i"; done
start_cluster --snapshot-threshold 500 --snapshot-trailing 100
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
for i in 1 2 3; do
    wait_applied "$i" 4000
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i lost writes after kill -9 of every node"
done
log "ok"
