#!/bin/bash
# jacod and jaco end to end: a 3-node cluster formed from config files;
# cluster status, node list and raft list-peers agree with each other and
# with the library's view; labels are replicated and audited; kill -9 of
# the leader: a new leader is named and the dead node turns unreachable;
# with its peers SIGSTOPped a node still reads but a write returns
# quorum_lost, and succeeds after SIGCONT; bad config files and bad
# requests get clear errors and change nothing; SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"

N=3
for i in 1 2 3; do
    PEER[$i]="127.0.0.1:$(free_port)"
    SOCK[$i]="$WORK/n$i.sock"
done
CLIENT1="127.0.0.1:$(free_port)"
IC="n1=${PEER[1]},n2=${PEER[2]},n3=${PEER[3]}"

for i in 1 2 3; do
    cat >"$WORK/n$i.conf" <<EOF
# node $i of the test cluster
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
initial-cluster = $IC
secret-file = $(secret_file)
election-timeout = $ELECTION_MS
EOF
done
echo "client-address = $CLIENT1" >>"$WORK/n1.conf"

# jfield NODE KEY: a top-level field of `cluster status -o json`.
# count_status NODE STATUS: rows of `node list` with that status.
count_status() { jaco "$1" node list 2>/dev/null | awk -v s="$2" '$3 == s' | wc -l; }

# ---- bad configuration: a clear error, exit 2, nothing written ----
printf 'name = bad\ndata-dir = %s\nelecton-timeout = 900\n' "$WORK/bad" >"$WORK/bad.conf"
set +e
"$JACOD" --config "$WORK/bad.conf" 2>"$WORK/bad.err"
rc=$?
set -e
assert_eq "$rc" 2 "exit code of jacod with an unknown config key"
grep -q 'bad.conf:3' "$WORK/bad.err" && grep -q 'electon-timeout' "$WORK/bad.err" ||
    fail "the error does not name the line and key: $(cat "$WORK/bad.err")"
[ ! -e "$WORK/bad" ] || fail "a bad configuration created the data directory"
set +e
"$JACOD" --config "$WORK/n1.conf" --no-such-flag 2>"$WORK/bad.err"
rc=$?
set -e
assert_eq "$rc" 2 "exit code of jacod with an unknown flag"
grep -q 'no-such-flag' "$WORK/bad.err" || fail "unknown flag not named: $(cat "$WORK/bad.err")"
"$JACOD" --help | grep -q -- '--initial-cluster' || fail "jacod --help lacks --initial-cluster"
"$JACO" --help | grep -q 'raft list-peers' || fail "jaco --help lacks raft list-peers"
set +e
"$JACO" --socket "${SOCK[1]}" no such verb 2>/dev/null
rc=$?
"$JACO" --socket "${SOCK[1]}" cluster status 2>/dev/null
rc2=$?
set -e
assert_eq "$rc" 2 "exit code of jaco with an unknown verb"
assert_eq "$rc2" 3 "exit code of jaco with no jacod"

# ---- a cluster from config files ----
for i in 1 2 3; do start_jacod "$i"; done
all_ready() {
    local i
    for i in 1 2 3; do
        [ "$(count_status "$i" READY)" = 3 ] || return 1
        [ "$(jfield "$i" leader_id)" != 0 ] || return 1
    done
}
wait_for 60 "three READY nodes seen from every node" all_ready
leader=$(jfield 1 leader_name)
for i in 2 3; do assert_eq "$(jfield "$i" leader_name)" "$leader" "leader seen from n$i"; done
log "leader is $leader"

jaco 1 cluster status >"$WORK/status.txt"
grep -q '^Nodes (3):' "$WORK/status.txt" || fail "cluster status: $(cat "$WORK/status.txt")"
grep -q "^Leader: *$leader " "$WORK/status.txt" || fail "cluster status names no leader"
assert_eq "$(grep -c 'NODE_STATUS_READY' "$WORK/status.txt")" 3 "READY rows in cluster status"
jaco 2 raft list-peers >"$WORK/peers.txt"
assert_eq "$(awk 'NR > 1 && $5 == "true"' "$WORK/peers.txt" | wc -l)" 3 "voters in raft list-peers"
assert_eq "$(awk 'NR > 1 && $4 == "leader" { print $1 }' "$WORK/peers.txt")" "$leader" \
    "the leader in raft list-peers"
# Options after the verb work too.
jaco 2 raft list-peers -o json | grep -q '"voter":true' || fail "an option after the verb"
# The library's view (status JSON, from the same node) agrees.
jaco 2 -o json raft list-peers | grep -q "\"name\":\"$leader\"" ||
    fail "raft list-peers -o json lacks the leader"
assert_eq "$(jfield 2 term)" "$(jaco 2 -o json cluster status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')" \
    "term"

# ---- jaco snapshot: compacts the log now ----
jaco 2 snapshot >"$WORK/snap.out" || fail "jaco snapshot: $(cat "$WORK/snap.out")"
grep -q '^snapshot taken at index [1-9]' "$WORK/snap.out" || fail "jaco snapshot printed: $(cat "$WORK/snap.out")"
ls "$WORK/n2/raft/" | grep -q '^snapshot-' || fail "no snapshot file after jaco snapshot"

# ---- labels: replicated, audited, errors ----
jaco 2 node label n3 zone=b rack=r7 >/dev/null || fail "node label"
wait_for 10 "the label on every node" bash -c \
    "for i in 1 2 3; do timeout 10 '$JACO' --socket $WORK/n\$i.sock -o json node list | grep -q '\"zone\":\"b\"' || exit 1; done"
jaco 1 audit --type node.label | grep -q 'n3 .*zone=b rack=r7' ||
    fail "the label is not in the audit log: $(jaco 1 audit)"
jaco 3 node unlabel n3 rack >/dev/null || fail "node unlabel"
set +e
jaco 1 node label nosuchnode a=b 2>"$WORK/err"
rc=$?
jaco 1 node label n1 'bad key=x' 2>"$WORK/err2"
rc2=$?
set -e
assert_eq "$rc" 1 "exit code of a label on an unknown node"
grep -q 'Error{code: not_found' "$WORK/err" || fail "unknown node: $(cat "$WORK/err")"
assert_eq "$rc2" 1 "exit code of a bad label"
grep -q 'invalid_argument' "$WORK/err2" || fail "bad label: $(cat "$WORK/err2")"
wait_for 10 "the unlabel in n1's audit log" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[1]} audit --since 10m | grep -q 'node.unlabel.*rack'"

# ---- the client API over TCP: reads yes, writes no, bad frames ----
"$JACO" --server "$CLIENT1" node list | grep -q '^n1 ' || fail "read over TCP"
set +e
"$JACO" --server "$CLIENT1" node label n1 a=b 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code of a write over TCP"
grep -q 'unauthenticated' "$WORK/err" || fail "TCP write: $(cat "$WORK/err")"
set +e
"$JACO" --server "$CLIENT1" node issue-join-token >/dev/null 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code of a token request over TCP without the secret"
grep -q 'unauthenticated' "$WORK/err" || fail "TCP token: $(cat "$WORK/err")"
# With the cluster secret (the hex file, or a data directory's raw copy)
# both ends prove it and writes are accepted.
"$JACO" --server "$CLIENT1" --secret-file "$(secret_file)" node label n1 tcp=yes >/dev/null ||
    fail "an authenticated write over TCP"
"$JACO" --server "$CLIENT1" --secret-file "$WORK/n2/secret" node unlabel n1 tcp >/dev/null ||
    fail "an authenticated write over TCP with the raw secret file"
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/wrong")
set +e
"$JACO" --server "$CLIENT1" --secret-file "$WORK/wrong" node label n1 a=b 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code with a wrong secret over TCP"
grep -q 'could not prove that it holds the secret in --secret-file' "$WORK/err" ||
    fail "wrong secret over TCP: $(cat "$WORK/err")"
host=${CLIENT1%:*}
port=${CLIENT1#*:}
# A frame that is not msgpack: malformed_request, the connection stays up
# and answers the next request ({"op":"status"}).
exec 5<>"/dev/tcp/$host/$port"
printf '\x00\x00\x00\x01\xc1' >&5
printf '\x00\x00\x00\x0b\x81\xa2op\xa6status' >&5
timeout 3 cat <&5 >"$WORK/raw" || true
exec 5>&-
grep -q 'malformed_request' "$WORK/raw" || fail "no malformed_request reply"
grep -q 'cluster_id' "$WORK/raw" || fail "the connection did not answer after a bad frame"
# A 4 GB frame header: too_large, then closed.
exec 5<>"/dev/tcp/$host/$port"
printf '\xff\xff\xff\xff' >&5
timeout 5 cat <&5 >"$WORK/raw" || true
exec 5>&-
grep -q 'too_large' "$WORK/raw" || fail "no too_large reply"
kill -0 "${PID[1]}" || fail "jacod died on bad frames"

# ---- a watch streams the changes ({"op":"watch"}, then a label) ----
exec 6<>"/dev/tcp/$host/$port"
printf '\x00\x00\x00\x0a\x81\xa2op\xa5watch' >&6
timeout 6 cat <&6 >"$WORK/watch" &
watcher=$!
sleep 0.5
jaco 2 node label n1 watched=yes >/dev/null || fail "label for the watch"
wait "$watcher" || true
exec 6>&-
grep -q 'node.label' "$WORK/watch" || fail "the watch did not stream the label"

# ---- SIGHUP re-reads the configuration ----
echo "log-level = debug" >>"$WORK/n2.conf"
kill -HUP "${PID[2]}"
wait_for 10 "the reload logged" grep -q 'SIGHUP: reloaded .*log-level debug' "$WORK/log2"
kill -0 "${PID[2]}" || fail "jacod died on SIGHUP"

# ---- kill -9 the leader ----
lid=${leader#n}
kill_node "$lid"
s1=$((lid % 3 + 1))
s2=$((s1 % 3 + 1))
new_leader() {
    local l
    l=$(jfield "$s1" leader_name)
    [ -n "$l" ] && [ "$l" != "$leader" ] && [ "$(jfield "$s1" leader_id)" != 0 ]
}
t0=$SECONDS
wait_for 20 "a new leader after kill -9 of $leader" new_leader
dead_unreachable() { jaco "$s1" node list | grep -q "^$leader .*UNREACHABLE"; }
wait_for 20 "$leader UNREACHABLE" dead_unreachable
log "new leader $(jfield "$s1" leader_name) and $leader unreachable after $((SECONDS - t0)) s"
jaco "$s1" audit --type node.status | grep -q "$leader .*NODE_STATUS_READY -> NODE_STATUS_UNREACHABLE" ||
    fail "the status change is not audited"

# ---- a node cut off from its peers: reads work, writes quorum_lost ----
start_jacod "$lid"
wait_for 30 "$leader back READY, also in its own copy" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[$lid]} node list | grep -q '^$leader .*READY'"
kill -STOP "${PID[$s1]}" "${PID[$s2]}"
t0=$SECONDS
quorum_lost() {
    ! jaco "$lid" node label "$leader" probe=1 >/dev/null 2>"$WORK/err" &&
        grep -q 'Error{code: quorum_lost' "$WORK/err"
}
wait_for 30 "quorum_lost on $leader" quorum_lost
log "quorum_lost after $((SECONDS - t0)) s"
grep -q 'jaco-recovery(7)' "$WORK/err" || fail "no pointer to the man page: $(cat "$WORK/err")"
jaco "$lid" node list >/dev/null || fail "a local read failed on the minority side"
jaco "$lid" cluster status | grep -q '^Nodes (3):' || fail "cluster status failed on the minority side"
kill -CONT "${PID[$s1]}" "${PID[$s2]}"
label_ok() { jaco "$lid" node label "$leader" probe=2 >/dev/null 2>&1; }
wait_for 30 "a write after SIGCONT" label_ok

# ---- SIGTERM: graceful, exit 0 ----
for i in 1 2 3; do stop_node "$i"; done
log "ok"
