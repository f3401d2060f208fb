#!/bin/bash
# CRASH_ROUNDS (default 100) rounds of kill -9 of a random node during
# heavy writes on a 3-node cluster: after each restart every acknowledged
# write is present and every node has applied the same commit index.
# A shorter election timeout than the other tests' (1 s) and 0.6 s loads
# (the kill comes 0.1-0.5 s in): every round waits for an election, and 100
# rounds must fit the suite's time.
ELECTION_MS=${ELECTION_MS:-500}
. "$(dirname "$0")/lib.sh"
ROUNDS=${CRASH_ROUNDS:-100}
SEED=${CRASH_SEED:-$RANDOM}
RANDOM=$SEED
log "seed $SEED, $ROUNDS rounds"

alloc_nodes 3
start_cluster --snapshot-threshold 2000 --snapshot-trailing 500
for i in 1 2 3; do wait_client "$i"; done
wait_leader 1 2 3 >/dev/null

for ((r = 1; r <= ROUNDS; r++)); do
    loads=()
    for i in 1 2 3; do
        "$KVLOAD" --servers "${CLIENT[$i]}" --inflight 16 --seconds 0.6 \
            --prefix "r$r-n$i-" --ack-file "$WORK/acked.$r.$i" \
            >/dev/null 2>&1 &
        loads+=($!)
    done
    sleep "0.$((1 + RANDOM % 5))"
    victim=$((1 + RANDOM % 3))
    kill_node "$victim"
    for p in "${loads[@]}"; do wait "$p" || true; done
    cat "$WORK/acked.$r".? >"$WORK/acked.$r" 2>/dev/null || true
    start_node "$victim" --initial-cluster "$(initial_cluster)" \
        --snapshot-threshold 2000 --snapshot-trailing 500
    wait_client "$victim"
    leader=$(wait_leader 1 2 3)
    # A write through the leader commits everything before it.
    kv "$leader" put "round-$r" done >/dev/null || fail "round $r: write after restart"
    commit=$(status_field "$leader" commit_index)
    for i in 1 2 3; do
        wait_applied "$i" "$commit"
        if [ -s "$WORK/acked.$r" ]; then
            "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked.$r" >/dev/null ||
                fail "round $r (seed $SEED): node $i lost acknowledged writes"
        fi
    done
    cat "$WORK/acked.$r" >>"$WORK/acked" 2>/dev/null || true
    if ((r % 10 == 0)); then
        log "round $r: $(wc -l <"$WORK/acked") writes acknowledged so far, commit $commit"
    fi
done
for i in 1 2 3; do
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i lost acknowledged writes (seed $SEED)"
done
log "ok"
