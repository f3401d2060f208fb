#!/bin/bash
# FLAPPING AND LATENCY (jaco-recovery(7)): a leader that stalls for less
# than the election timeout (SIGSTOP 300 ms, five times) keeps leading in
# the same term; one that stalls for three election timeouts is replaced,
# steps down when it runs again without disturbing the new leader, and no
# acknowledged write is lost through it all.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
term=$(status_field "$leader" term)
others=()
for i in 1 2 3; do [ "$i" != "$leader" ] && others+=("$i"); done
"$KVLOAD" --servers "${CLIENT[${others[0]}]},${CLIENT[${others[1]}]}" --inflight 8 \
    --seconds 12 --prefix flap- --ack-file "$WORK/acked" >/dev/null 2>&1 &
load=$!

# Short stalls: below the election timeout ($ELECTION_MS ms).
for k in 1 2 3 4 5; do
    kill -STOP "${PID[$leader]}"
    sleep 0.3
    kill -CONT "${PID[$leader]}"
    sleep 0.7
done
assert_eq "$(leader_of "${others[0]}")" "$leader" "the leader after five 300 ms stalls"
assert_eq "$(status_field "$leader" term)" "$term" "the term after five 300 ms stalls"
log "five 300 ms stalls: node $leader still leads in term $term"

# A long stall: three election timeouts.
kill -STOP "${PID[$leader]}"
sleep $((ELECTION_MS * 3 / 1000))
new=$(NOT_LEADER=$leader wait_leader "${others[@]}")
kill -CONT "${PID[$leader]}"
sleep 2
assert_eq "$(leader_of "$leader")" "$new" "the stalled node follows the new leader"
assert_eq "$(leader_of "${others[0]}")" "$new" "the leader 2 s after the stalled node woke"
log "a $((ELECTION_MS * 3)) ms stall: node $new took over; node $leader follows it"

wait "$load" || true
kv "$new" put after-flapping yes >/dev/null || fail "a write after the stalls"
commit=$(status_field "$new" commit_index)
for i in 1 2 3; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i misses acknowledged writes"
done
[ "$(wc -l <"$WORK/acked")" -gt 100 ] || fail "too few writes acknowledged during the stalls"
log "ok"
