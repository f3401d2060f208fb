#!/bin/bash
# Quorum loss and forced recovery (jaco-recovery(7)): 5 nodes, writes, kill
# -9 of three; writes on the survivors fail with quorum_lost; jaco recover
# inspect names the survivor with the most recent log; malformed peers.json
# files stop a start and stay untouched; write-peers on both survivors, a
# start elects a leader with every acknowledged write, a new node joins
# with a token; a node left out of the recovery (older incarnation) is
# refused; a lone survivor becomes a one-voter cluster with
# force-new-cluster.
. "$(dirname "$0")/lib.sh"
JACO=${JACO:-$top_builddir/jaco}

alloc_nodes 5
start_cluster
for i in 1 2 3 4 5; do wait_client "$i"; done
leader=$(wait_leader 1 2 3 4 5)
"$KVLOAD" --servers "${CLIENT[1]},${CLIENT[2]},${CLIENT[3]},${CLIENT[4]},${CLIENT[5]}" \
    --inflight 16 --count 2000 --prefix before- --ack-file "$WORK/acked" >/dev/null ||
    fail "writes before the loss"

# Kill three: the leader and two others.
victims=("$leader")
for i in 3 4 5 1 2; do
    if [ "$i" != "$leader" ] && ((${#victims[@]} < 3)); then victims+=("$i"); fi
done
survivors=()
for i in 1 2 3 4 5; do [[ " ${victims[*]} " == *" $i "* ]] || survivors+=("$i"); done
log "killing ${victims[*]} (leader $leader); survivors ${survivors[*]}"
for i in "${victims[@]}"; do kill_node "$i"; done
s1=${survivors[0]} s2=${survivors[1]}
deadline=$((SECONDS + 30))
until kv "$s1" put during x 2>"$WORK/err" >/dev/null; ((SECONDS > deadline)) || grep -q quorum_lost "$WORK/err"; do
    sleep 0.5
done
grep -q quorum_lost "$WORK/err" || fail "a write on a survivor did not fail with quorum_lost: $(cat "$WORK/err")"
for i in "${survivors[@]}"; do stop_node "$i"; done

# Inspect: the most recent survivor, and the range a recovery commits.
"$JACO" recover inspect "$WORK/n$s1" "$WORK/n$s2" >"$WORK/inspect" || fail "inspect: $(cat "$WORK/inspect")"
grep -q '^Most recent log: ' "$WORK/inspect" || fail "inspect names no survivor: $(cat "$WORK/inspect")"
grep -q 'implicitly commits entries' "$WORK/inspect" || fail "inspect: no implicit-commit range"
"$JACO" recover inspect -o json "$WORK/n$s1" | grep -q '"locked":false' || fail "inspect -o json"

# Malformed files: the start is refused, naming the problem; nothing moves.
bad_start() { # bad_start JSON EXPECTED-TEXT
    printf '%s' "$1" >"$WORK/n$s1/raft/peers.json"
    cp "$WORK/n$s1/raft/peers.json" "$WORK/peers.before"
    cp "$WORK/n$s1/jacoraft.id" "$WORK/id.before"
    if timeout 20 "$KVSTORE" serve --id "$s1" --address "${PEER[$s1]}" --client "${CLIENT[$s1]}" \
        --data-dir "$WORK/n$s1" >"$WORK/out" 2>&1; then
        fail "started with peers.json $1"
    fi
    grep -q -- "$2" "$WORK/out" || fail "peers.json $1: $(cat "$WORK/out")"
    cmp -s "$WORK/n$s1/raft/peers.json" "$WORK/peers.before" || fail "peers.json $1 was changed"
    cmp -s "$WORK/n$s1/jacoraft.id" "$WORK/id.before" || fail "identity changed by peers.json $1"
}
bad_start '[{"id": 1, "address": ' "not valid JSON"
bad_start '{"id": 1}' "want a JSON array"
bad_start "[{\"id\": $s1, \"address\": \"127.0.0.1\"}]" '"address"'
bad_start "[{\"id\": $s1, \"address\": \"${PEER[$s1]}\", \"colour\": 1}]" 'unknown field "colour"'
bad_start "[{\"id\": $s1, \"address\": \"${PEER[$s1]}\"}, {\"id\": $s1, \"address\": \"${PEER[$s2]}\"}]" 'the same id'
bad_start "[{\"id\": $s2, \"address\": \"${PEER[$s2]}\"}]" 'this node (id '
bad_start "[{\"id\": $s1, \"address\": \"${PEER[$s1]}\", \"role\": \"standby\"}]" 'no voter'
rm -f "$WORK/n$s1/raft/peers.json"

# write-peers: a dry run writes nothing; then both survivors, identical.
"$JACO" recover write-peers --data-dir "$WORK/n$s1" --peer "$s1=${PEER[$s1]}" \
    --peer "$s2=${PEER[$s2]}" --dry-run >"$WORK/out" || fail "dry run: $(cat "$WORK/out")"
grep -q '^would write' "$WORK/out" || fail "dry run output: $(cat "$WORK/out")"
[ ! -e "$WORK/n$s1/raft/peers.json" ] || fail "a dry run wrote peers.json"
set +e
"$JACO" recover write-peers --data-dir "$WORK/n$s1" --peer "$s2=${PEER[$s2]}" 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "write-peers without the node itself"
grep -q 'is not among the servers' "$WORK/err" || fail "write-peers without self: $(cat "$WORK/err")"
for i in "$s1" "$s2"; do
    "$JACO" recover write-peers --data-dir "$WORK/n$i" --peer "$s1=${PEER[$s1]}" \
        --peer "$s2=${PEER[$s2]}" >/dev/null || fail "write-peers on n$i"
done
cmp -s "$WORK/n$s1/raft/peers.json" "$WORK/n$s2/raft/peers.json" || fail "the survivors' files differ"
for i in "$s1" "$s2"; do start_node "$i"; done
for i in "$s1" "$s2"; do wait_client "$i"; done
new=$(wait_leader "$s1" "$s2")
kv "$new" put after-recovery yes >/dev/null || fail "a write after the recovery"
commit=$(status_field "$new" commit_index)
for i in "$s1" "$s2"; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" >/dev/null ||
        fail "node $i lost acknowledged writes in the recovery"
    ls "$WORK/n$i/raft/" | grep -q '^peers.json.applied-1$' || fail "n$i: no peers.json.applied-1"
    grep -q '^incarnation 1' "$WORK/n$i/jacoraft.id" || fail "n$i: incarnation not bumped"
    # What it replaced is kept, so that the recovery can be undone.
    ls "$WORK/n$i/raft/before-recovery-1/" | grep -q '^seg-' || fail "n$i: the log was not kept aside"
    grep -q '^incarnation 0' "$WORK/n$i/raft/before-recovery-1/jacoraft.id" ||
        fail "n$i: the old identity was not kept aside"
done
grep -q 'forced recovery done' "$WORK/log$s1" || fail "no recovery log line"
deadline=$((SECONDS + 10))
until grep -q 'forced recovery: snapshot taken at index' "$WORK/log$s1"; do
    ((SECONDS < deadline)) || fail "no snapshot after the forced recovery"
    sleep 0.2
done
log "recovered on ${survivors[*]}: leader $new"

# A node left out of the recovery is refused (split-brain guard).
victim=${victims[0]}
start_node "$victim"
wait_client "$victim"
sleep 2
grep -q "runs incarnation 0 of cluster" "$WORK/log$s1" "$WORK/log$s2" ||
    fail "the left-out node was not refused"
[ "$(leader_of "$victim")" != "$new" ] || fail "the left-out node follows the recovered leader"
kill_node "$victim"

# A new node joins the recovered cluster with a token.
tok=$(kv "$new" token 600)
rm -rf "$WORK/n6"
PEER[6]="127.0.0.1:$(free_port)" CLIENT[6]="127.0.0.1:$(free_port)"
"$KVSTORE" serve --id 6 --address "${PEER[6]}" --client "${CLIENT[6]}" --data-dir "$WORK/n6" \
    --election-timeout "$ELECTION_MS" --promote-after 500 --join-token "$tok" >>"$WORK/log6" 2>&1 &
PID[6]=$!
wait_client 6
wait_applied 6 "$(status_field "$new" commit_index)"
"$KVLOAD" --servers "${CLIENT[6]}" --verify "$WORK/acked" >/dev/null || fail "the new node lacks writes"
grep -q '^incarnation 1' "$WORK/n6/jacoraft.id" || fail "the new node did not take incarnation 1"
kill_node 6

# A lone survivor: force-new-cluster keeps its data as a one-voter cluster.
for i in "$s1" "$s2"; do stop_node "$i"; done
"$JACO" recover force-new-cluster --data-dir "$WORK/n$s1" --dry-run | grep -q '^would write' ||
    fail "force-new-cluster --dry-run"
"$JACO" recover force-new-cluster --data-dir "$WORK/n$s1" >/dev/null || fail "force-new-cluster"
start_node "$s1"
wait_client "$s1"
wait_leader "$s1" >/dev/null
kv "$s1" put alone yes >/dev/null || fail "a write on the lone survivor"
"$KVLOAD" --servers "${CLIENT[$s1]}" --verify "$WORK/acked" >/dev/null || fail "the lone survivor lost writes"
grep -q '^incarnation 2' "$WORK/n$s1/jacoraft.id" || fail "incarnation not bumped again"
# A data directory moved away underneath the running node is reported.
mv "$WORK/n$s1" "$WORK/n$s1.moved"
deadline=$((SECONDS + 10))
until kv "$s1" status --json | grep -q '"data_dir_lost":true'; do
    ((SECONDS < deadline)) || fail "a removed data directory was not reported"
    sleep 0.5
done
grep -q "was removed or replaced while this node runs" "$WORK/log$s1" || fail "no log line for the removed directory"
mv "$WORK/n$s1.moved" "$WORK/n$s1"
deadline=$((SECONDS + 10))
until kv "$s1" status --json | grep -q '"data_dir_lost":false'; do
    ((SECONDS < deadline)) || fail "the data directory's return was not noticed"
    sleep 0.5
done
# A locked directory is refused.
set +e
"$JACO" recover force-new-cluster --data-dir "$WORK/n$s1" 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "force-new-cluster on a running node"
grep -q 'locked' "$WORK/err" || fail "locked: $(cat "$WORK/err")"
stop_node "$s1"
log "ok"
