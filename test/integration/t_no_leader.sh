#!/bin/bash
# Writes during an election fail fast with no_leader (a majority is still
# reachable), never with quorum_lost, and succeed once a leader is elected.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
follower=$(( leader % 3 + 1 ))
kill_node "$leader"
log "killed leader $leader; writing to node $follower"

codes="" ok=""
for ((t = 0; t < 200; t++)); do
    t0=$(date +%s%N)
    if kv "$follower" put k$t v >/dev/null 2>"$WORK/err"; then ok=1; break; fi
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -lt 12000 ] || fail "a write took ${ms} ms to fail"
    codes+="$(sed -n 's/.*code: \([a-z_]*\).*/\1/p' "$WORK/err") "
    sleep 0.05
done
[ -n "$ok" ] || fail "no write succeeded after the election"
log "errors before the new leader: $codes"
echo "$codes" | grep -q no_leader || fail "no write failed with no_leader"
if echo "$codes" | grep -q quorum_lost; then
    fail "quorum_lost reported while a majority was up"
fi
log "ok"
