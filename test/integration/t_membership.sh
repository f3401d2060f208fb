#!/bin/bash
# A cluster grown by joins (one bootstrapped node, two joining it) replicates
# to every member; the data directory is locked while in use and bound to
# its node id and cluster.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_node 1 --bootstrap
wait_client 1
wait_leader 1 >/dev/null
kv 1 put first 1 >/dev/null || fail "write on the single node"
start_node 2 --join "${PEER[1]}"
wait_client 2
start_node 3 --join "${PEER[2]}"   # via a follower: it points to the leader
wait_client 3
leader=$(wait_leader 1 2 3)
voters=$(kv "$leader" status --json | grep -o '"role":"voter"' | wc -l)
assert_eq "$voters" 3 "voters after two joins"
cid=$(status_field 1 cluster_id)
for i in 2 3; do assert_eq "$(status_field $i cluster_id)" "$cid" "cluster id of node $i"; done
kv 3 put second 2 >/dev/null || fail "write through a joined node"
wait_applied 2 "$(status_field "$leader" commit_index)"
assert_eq "$(kv 2 get first)" 1 "replicated before the join"
assert_eq "$(kv 2 get second)" 2 "replicated after the join"

# A second process on a running node's directory is refused.
if "$KVSTORE" serve --id 1 --address 127.0.0.1:1 --client 127.0.0.1:2 \
    --data-dir "$WORK/n1" >"$WORK/out" 2>&1; then
    fail "second process on a locked directory started"
fi
grep -q 'locked by another process' "$WORK/out" || fail "no lock message: $(cat "$WORK/out")"

# The directory is bound to its node id...
stop_node 3
if "$KVSTORE" serve --id 7 --address "${PEER[3]}" --client "${CLIENT[3]}" \
    --data-dir "$WORK/n3" >"$WORK/out" 2>&1; then
    fail "directory of node 3 opened as node 7"
fi
grep -q 'belongs to node id 3' "$WORK/out" || fail "no id message: $(cat "$WORK/out")"
# ...and to its cluster: bootstrapping another cluster on it is refused,
# and nothing changed.
cp "$WORK/n3/jacoraft.id" "$WORK/id.before"
if "$KVSTORE" serve --id 3 --address "${PEER[3]}" --client "${CLIENT[3]}" \
    --data-dir "$WORK/n3" --bootstrap >"$WORK/out" 2>&1; then
    fail "bootstrap over a member's directory succeeded"
fi
grep -q 'already holds cluster' "$WORK/out" || fail "no cluster message: $(cat "$WORK/out")"
cmp -s "$WORK/n3/jacoraft.id" "$WORK/id.before" || fail "identity file changed"

# Split-brain guard: a node of the same cluster but another incarnation (a
# forced recovery left it out) is refused by its peers, with the remedy.
sed -i 's/^incarnation .*/incarnation 1/' "$WORK/n3/jacoraft.id"
start_node 3
sleep 1
grep -q "runs incarnation 1 of cluster $cid" "$WORK/log1" "$WORK/log2" ||
    fail "a node of another incarnation was not refused"
if kv 3 put split 1 >/dev/null 2>&1; then
    fail "a node of another incarnation could write"
fi
stop_node 3
sed -i 's/^incarnation .*/incarnation 0/' "$WORK/n3/jacoraft.id"
cp "$WORK/n3/jacoraft.id" "$WORK/id.before"

# Joining another cluster with this directory is refused too.
alloc_other() { PEER[9]="127.0.0.1:$(free_port)"; CLIENT[9]="127.0.0.1:$(free_port)"; }
alloc_other
"$KVSTORE" serve --id 9 --address "${PEER[9]}" --client "${CLIENT[9]}" \
    --data-dir "$WORK/n9" --bootstrap >>"$WORK/log9" 2>&1 &
PID[9]=$!
wait_client 9
if "$KVSTORE" serve --id 3 --address "${PEER[3]}" --client "${CLIENT[3]}" \
    --data-dir "$WORK/n3" --join "${PEER[9]}" >"$WORK/out" 2>&1 &&
    [ "$(sed -n 's/^cluster_id \(.*\)/\1/p' "$WORK/n3/jacoraft.id")" != "$cid" ]; then
    fail "a member's directory joined another cluster"
fi
cmp -s "$WORK/n3/jacoraft.id" "$WORK/id.before" || fail "identity file changed by a foreign join"
log "ok"
