#!/bin/bash
# 3-node cluster: 10,000 writes through the leader and both followers are
# all present on every node; a linearizable read on a follower sees a write
# made just before on another node.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
log "leader is node $leader"

"$KVLOAD" --servers "${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}" --inflight 64 \
    --count 10000 --prefix w --ack-file "$WORK/acked" >"$WORK/load.out" ||
    fail "load reported errors: $(cat "$WORK/load.out")"
acked=$(wc -l <"$WORK/acked")
assert_eq "$acked" 10000 "acknowledged writes"

commit=$(status_field "$leader" commit_index)
for i in 1 2 3; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >&2 ||
        fail "node $i is missing acknowledged keys"
done

follower=$(( leader % 3 + 1 ))
other=$(( follower % 3 + 1 ))
kv "$other" put fresh 42 >/dev/null || fail "put on node $other"
got=$(kv "$follower" get --linearizable fresh) || fail "linearizable get"
assert_eq "$got" 42 "linearizable read on follower $follower"

kv "$follower" del fresh >/dev/null || fail "del through a follower"
if kv "$leader" get --linearizable fresh 2>"$WORK/err"; then
    fail "deleted key still readable"
fi
grep -q 'not_found' "$WORK/err" || fail "missing key did not report not_found"
log "ok"
