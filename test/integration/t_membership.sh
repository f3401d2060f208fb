#!/bin/bash
# A cluster grown by joins with tokens (one bootstrapped node, two joining
# it) replicates to every member; tokens are single use, and forged,
# expired and other-cluster tokens change nothing; a node without the
# secret cannot join; the data directory is locked while in use and bound
# to its node id and cluster.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
start_node 1 --bootstrap --promote-after 500
wait_client 1
wait_leader 1 >/dev/null
kv 1 put first 1 >/dev/null || fail "write on the single node"
[ "$(stat -c %a "$WORK/n1/secret")" = 600 ] || fail "secret file is not mode 600"
token2=$(kv 1 token 600) || fail "issue a join token"
case $token2 in jaco1.*) ;; *) fail "not a token: $token2" ;; esac
start_node 2 --join-token "$token2" --promote-after 500
wait_client 2
wait_applied 2 "$(status_field 1 commit_index)"
token3=$(kv 2 token 600) || fail "issue a token on a follower"
start_node 3 --join-token "$token3" --promote-after 500  # names node 1 and 2; a follower points to the leader
wait_client 3
cmp -s "$WORK/n1/secret" "$WORK/n3/secret" || fail "the joined node holds another secret"

# A used token is refused for another node, and changes nothing.
alloc_other() { PEER[$1]="127.0.0.1:$(free_port)"; CLIENT[$1]="127.0.0.1:$(free_port)"; }
try_join() { # try_join ID TOKEN: a fresh node that must not get in
    local i=$1
    alloc_other "$i"
    if timeout 30 "$KVSTORE" serve --id "$i" --address "${PEER[$i]}" --client "${CLIENT[$i]}" \
        --data-dir "$WORK/n$i" --election-timeout "$ELECTION_MS" --join-token "$2" >"$WORK/out" 2>&1; then
        fail "node $i joined with a bad token"
    fi
    [ ! -f "$WORK/n$i/secret" ] || fail "node $i got the secret with a bad token"
}
try_join 5 "$token2"
grep -q 'join token already used' "$WORK/out" || fail "reuse not named: $(cat "$WORK/out")"
# Forged: the same payload, another MAC (flip one character of the tail).
last=${token3: -2:1}; if [ "$last" = A ]; then sub=B; else sub=A; fi
try_join 6 "${token3:0:${#token3}-2}$sub${token3: -1}"
grep -q 'not issued by this cluster' "$WORK/out" || fail "forgery not named: $(cat "$WORK/out")"
# Expired.
expired=$(kv 1 token 1); sleep 2
try_join 7 "$expired"
grep -q 'join token expired at' "$WORK/out" || fail "expiry not named: $(cat "$WORK/out")"
# Garbage.
try_join 8 "jaco1.not-a-token"
grep -q 'join: ' "$WORK/out" || fail "garbage token not refused: $(cat "$WORK/out")"
# A node that presents no token and no secret is refused before anything.
alloc_other 4
if timeout 30 "$KVSTORE" serve --id 4 --address "${PEER[4]}" --client "${CLIENT[4]}" \
    --data-dir "$WORK/n4" --join "${PEER[1]}" >"$WORK/out" 2>&1; then
    fail "a node without the secret joined"
fi
grep -q 'no cluster secret' "$WORK/out" || fail "no secret message: $(cat "$WORK/out")"
# A node with the wrong secret: its handshake fails, counted and logged.
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/wrong")
if timeout 30 "$KVSTORE" serve --id 4 --address "${PEER[4]}" --client "${CLIENT[4]}" \
    --data-dir "$WORK/n4b" --secret-file "$WORK/wrong" --join "${PEER[1]}" >"$WORK/out" 2>&1; then
    fail "a node with the wrong secret joined"
fi
grep -q 'could not prove that it holds' "$WORK/out" "$WORK/log1" ||
    fail "wrong secret not named: $(cat "$WORK/out")"
kv 1 status --json | grep -q '"auth_failures":[1-9]' || fail "refusals not counted in status"
leader=$(wait_leader 1 2 3)
# Joined as standbys; the leader's reconciler promotes both (3 members: 3
# voters), never stopping at 2.
for ((t = 0; t < 100; t++)); do
    voters=$(kv "$leader" status --json | grep -o '"role":"voter"' | wc -l)
    [ "$voters" = 3 ] && break
    sleep 0.2
done
assert_eq "$voters" 3 "voters after two joins"
grep -q 'reconciler: promote' "$WORK/log$leader" || fail "no reconciler decision logged: $(grep reconciler "$WORK/log$leader")"
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
alloc_other 9
"$KVSTORE" serve --id 9 --address "${PEER[9]}" --client "${CLIENT[9]}" \
    --data-dir "$WORK/n9" --bootstrap >>"$WORK/log9" 2>&1 &
PID[9]=$!
wait_client 9
if "$KVSTORE" serve --id 3 --address "${PEER[3]}" --client "${CLIENT[3]}" \
    --data-dir "$WORK/n3" --join-token "$(kv 9 token 600)" >"$WORK/out" 2>&1 &&
    [ "$(sed -n 's/^cluster_id \(.*\)/\1/p' "$WORK/n3/jacoraft.id")" != "$cid" ]; then
    fail "a member's directory joined another cluster"
fi
cmp -s "$WORK/n3/jacoraft.id" "$WORK/id.before" || fail "identity file changed by a foreign join"
log "ok"
