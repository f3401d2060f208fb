#!/bin/bash
# kill -9 of the leader under load: the survivors elect a new leader within
# one election timeout (the dead leader's host refuses their connections,
# so they need not wait for their election timers: lib/leaderwatch.c) and
# no acknowledged write is lost; the killed node restarts and catches up.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
followers=()
for i in 1 2 3; do [ "$i" != "$leader" ] && followers+=("$i"); done

# Writes through a follower keep going while the leader dies; errors are
# expected around the failover, acknowledged writes must all survive.
"$KVLOAD" --servers "${CLIENT[${followers[0]}]}" --inflight 16 --seconds 4 \
    --prefix a --ack-file "$WORK/acked" >"$WORK/load.out" 2>&1 &
load=$!
sleep 1.5
log "kill -9 leader $leader"
kill_node "$leader"
t0=$(date +%s%N)
new=$(NOT_LEADER=$leader wait_leader "${followers[@]}")
t1=$(date +%s%N)
[ "$new" != "$leader" ] || fail "dead node still leader"
ms=$(( (t1 - t0) / 1000000 ))
log "new leader $new after ${ms} ms"
[ "$ms" -lt "$ELECTION_MS" ] || fail "failover took ${ms} ms"
for i in "${followers[@]}"; do
    grep -q "leader node [0-9]* at .* refuses connections" "$WORK/log$i" ||
        fail "node $i did not notice that the leader's process was gone"
done
wait "$load" || true
log "load: $(tail -n 1 "$WORK/load.out")"
[ "$(wc -l <"$WORK/acked")" -gt 100 ] || fail "too few writes acknowledged"

kv "$new" put after-failover yes >/dev/null || fail "write after failover"
commit=$(status_field "$new" commit_index)
for i in "${followers[@]}"; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i lost acknowledged writes"
done

log "restart node $leader"
start_node "$leader" --initial-cluster "$(initial_cluster)"
wait_client "$leader"
wait_applied "$leader" "$commit"
"$KVLOAD" --servers "${CLIENT[$leader]}" --verify "$WORK/acked" >&2 ||
    fail "restarted node $leader misses writes"
got=$(kv "$leader" get after-failover) || fail "get on restarted node"
assert_eq "$got" yes "write made while it was down"
log "ok"
