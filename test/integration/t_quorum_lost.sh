#!/bin/bash
# Writes to a node cut off from the majority (its two peers SIGSTOPped)
# fail with quorum_lost within a few election timeouts and never hang; local
# reads keep working there; after SIGCONT writes succeed again.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
kv 1 put before 1 >/dev/null || fail "initial write"
wait_applied 1 "$(status_field "$leader" commit_index)"

# Isolate node 1 whatever its role: stop the other two.
kill -STOP "${PID[2]}" "${PID[3]}"
log "SIGSTOP nodes 2 and 3"
sleep $(awk "BEGIN{print 3 * $ELECTION_MS / 1000}")

codes=""
for k in 1 2 3; do
    t0=$(date +%s%N)
    if kv 1 put during$k x >/dev/null 2>"$WORK/err"; then
        fail "write succeeded without a quorum"
    fi
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -lt 15000 ] || fail "write took ${ms} ms to fail"
    codes+="$(sed -n 's/.*code: \([a-z_]*\).*/\1/p' "$WORK/err") "
done
log "errors: $codes"
for c in $codes; do assert_eq "$c" quorum_lost "error code on the minority node"; done
health=$(status_field 1 health)
assert_eq "$health" quorum_lost "status health"
got=$(kv 1 get before) || fail "local read on the minority node"
assert_eq "$got" 1 "local read on the minority node"

kill -CONT "${PID[2]}" "${PID[3]}"
log "SIGCONT nodes 2 and 3"
wait_leader 1 2 3 >/dev/null
ok=""
for ((t = 0; t < 50; t++)); do
    if kv 1 put after x >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
done
[ -n "$ok" ] || fail "writes did not resume after SIGCONT"
log "ok"
