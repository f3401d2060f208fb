#!/bin/bash
# Membership end to end with jacod: one bootstrapped node and four joined
# with tokens (jaco node issue-join-token / node join) become 3 voters and
# 2 standbys (max-voters 3), each standby's role explained; a reused or
# expired token changes nothing; a joined node's handshake is authenticated
# (a peer with a wrong secret is refused and counted); kill -9 of a voter
# and node remove --force: a standby is promoted and writes go on; graceful
# removal of the leader: leadership moves first; the removed node, started
# again, does not disturb the cluster.
. "$(dirname "$0")/lib.sh"

N=5
for ((i = 1; i <= N; i++)); do
    PEER[$i]="127.0.0.1:$(free_port)"
    SOCK[$i]="$WORK/n$i.sock"
    cat >"$WORK/n$i.conf" <<EOF
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
election-timeout = $ELECTION_MS
max-voters = 3
promote-after = 500
zone = z$(((i - 1) % 3))
EOF
done
echo "bootstrap = true" >>"$WORK/n1.conf"

# voters NODE / standbys NODE: counts in `raft list-peers` seen from NODE.
voters() { jaco "$1" -o json raft list-peers 2>/dev/null | grep -o '"voter":true' | wc -l; }
standbys() { jaco "$1" -o json raft list-peers 2>/dev/null | grep -o '"role":"standby"' | wc -l; }
leader_name() { jaco "$1" -o json cluster status 2>/dev/null | sed -n 's/.*"leader_name":"\([^"]*\)".*/\1/p'; }

start_jacod 1
wait_for 30 "n1 leads its one-node cluster" bash -c "[ \"\$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json cluster status 2>/dev/null | grep -c '\"leader_name\":\"n1\"')\" = 1 ]"

# An uninitialised jacod says how to join it.
start_jacod 2
wait_for 30 "n2 answers" jaco 2 cluster status
out=$(jaco 2 cluster status 2>&1 || true)
grep -q 'not initialised.*jaco node join TOKEN' <<<"$out" ||
    fail "an uninitialised node does not say how to join: $out"

token=$(jaco 1 node issue-join-token --ttl 10m 2>"$WORK/issue.err") || fail "issue-join-token: $(cat "$WORK/issue.err")"
case $token in jaco1.*) ;; *) fail "not a token: $token" ;; esac
grep -q 'single use, valid until' "$WORK/issue.err" || fail "no validity note: $(cat "$WORK/issue.err")"
jaco 2 node join "$token" >"$WORK/join.out" || fail "node join: $(cat "$WORK/join.out")"
grep -q 'joined cluster' "$WORK/join.out" || fail "join output: $(cat "$WORK/join.out")"
[ "$(stat -c %a "$WORK/n2/secret")" = 600 ] || fail "joined node's secret is not mode 600"

# The same token again, for another node: refused, nothing changes.
start_jacod 3
wait_for 30 "n3 answers" jaco 3 cluster status
set +e
jaco 3 node join "$token" 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code of a reused token"
grep -q 'already used' "$WORK/err" || fail "reuse: $(cat "$WORK/err")"
[ ! -e "$WORK/n3/secret" ] || fail "a reused token delivered the secret"
# Expired.
short=$(jaco 1 node issue-join-token --ttl 1s 2>/dev/null)
sleep 2
set +e
jaco 3 node join "$short" 2>"$WORK/err"
rc=$?
set -e
assert_eq "$rc" 1 "exit code of an expired token"
grep -q 'expired at' "$WORK/err" || fail "expiry: $(cat "$WORK/err")"
# Over TCP nobody gets a token (no client-address here: the flag is checked
# in t_jacod); usage errors exit 2.
set +e
jaco 1 node issue-join-token --ttl forever 2>/dev/null
rc=$?
jaco 1 node join 2>/dev/null
rc2=$?
set -e
assert_eq "$rc" 2 "exit code of a bad --ttl"
assert_eq "$rc2" 2 "exit code of node join without a token"

# n3, n4, n5 join with fresh tokens issued on different members (a token
# names every member, so it works through any of them).
jaco 3 node join "$(jaco 1 node issue-join-token)" >/dev/null || fail "n3 join"
for i in 4 5; do
    start_jacod "$i"
    wait_for 30 "n$i answers" jaco "$i" cluster status
    jaco "$i" node join "$(jaco $((i - 2)) node issue-join-token)" >/dev/null || fail "n$i join"
done

# 5 members, max-voters 3: three voters (one per zone) and two standbys.
wait_for 60 "3 voters and 2 standbys" bash -c \
    "[ \"\$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json raft list-peers | grep -o '\"voter\":true' | wc -l)\" = 3 ] &&
     [ \"\$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json raft list-peers | grep -o '\"role\":\"standby\"' | wc -l)\" = 2 ]"
sleep 1
assert_eq "$(voters 1)" 3 "voters stay at 3"
leader=$(leader_name 1)
lid=${leader#n}
jaco "$lid" node list >"$WORK/list.txt"
grep -q 'standby: voter set is full' "$WORK/list.txt" || fail "standbys not explained: $(cat "$WORK/list.txt")"
# One voter per zone.
zones=$(jaco "$lid" -o json raft list-peers | grep -o '"zone":"z[0-9]","why":"voter' | sort -u | wc -l)
assert_eq "$zones" 3 "zones holding a voter"
grep -q 'reconciler: promote' "$WORK/log$lid" || fail "no reconciler decision in the leader's log"
# Joining rewrote each node's identity file: that is not a lost directory.
for ((i = 1; i <= N; i++)); do
    out=$(jaco "$i" cluster status)
    if grep -q 'DATA DIRECTORY LOST' <<<"$out"; then
        fail "n$i reports its data directory lost after joining"
    fi
done

# A member whose secret was replaced cannot talk to the others: its
# handshakes fail both ways, are counted and logged; with the right secret
# back it catches up.
sb=$(jaco "$lid" -o json raft list-peers | grep -o '"name":"n[0-9]","address":"[^"]*","role":"standby"' | head -n 1 | sed 's/"name":"n\([0-9]\)".*/\1/')
[ -n "$sb" ] || fail "no standby found"
kill -TERM "${PID[$sb]}"; wait "${PID[$sb]}" || true
cp "$WORK/n$sb/secret" "$WORK/secret.saved"
(umask 077 && head -c 32 /dev/urandom >"$WORK/n$sb/secret")
start_jacod "$sb"
wait_for 30 "the leader refuses the member with the wrong secret" \
    grep -q "node .* could not prove that it holds this cluster's secret" "$WORK/log$lid"
jaco "$lid" -o json cluster status | grep -q '"auth_failures":[1-9]' ||
    fail "refused handshakes not counted: $(jaco "$lid" -o json cluster status)"
assert_eq "$(leader_name 1)" "$leader" "the leader while a member holds a wrong secret"
kill -TERM "${PID[$sb]}"; wait "${PID[$sb]}" || true
cp "$WORK/secret.saved" "$WORK/n$sb/secret"
start_jacod "$sb"
jaco "$lid" node label "n$sb" back=yes >/dev/null || fail "write after the secret came back"
wait_for 30 "the member catches up with the right secret" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[$sb]} -o json node list | grep -q '\"back\":\"yes\"'"
# ---- kill -9 a voter, remove it by force: a standby takes its place ----
voter_names() { jaco "$1" -o json raft list-peers | grep -o '"name":"n[0-9]","address":"[^"]*","role":"voter"' | sed 's/"name":"\(n[0-9]\)".*/\1/'; }
victim=""
for v in $(voter_names "$lid"); do [ "$v" != "$leader" ] && { victim=$v; break; }; done
[ -n "$victim" ] || fail "no follower voter"
vid=${victim#n}
kill -9 "${PID[$vid]}"; wait "${PID[$vid]}" 2>/dev/null || true
jaco "$lid" node remove --force "$victim" >/dev/null || fail "node remove --force $victim: $(jaco "$lid" node list)"
wait_for 60 "a standby promoted: 3 voters of 4 members" bash -c \
    "[ \"\$(timeout 10 '$JACO' --socket ${SOCK[$lid]} -o json raft list-peers | grep -o '\"voter\":true' | wc -l)\" = 3 ]"
voter_names "$lid" | grep -qx "$victim" && fail "$victim is still a voter"
jaco "$lid" node label "$leader" after-force=yes >/dev/null || fail "a write after the forced removal"
log "$victim removed by force; a standby took its place"

# ---- graceful removal of the leader ----
jaco "$lid" node remove "$leader" >/dev/null || fail "graceful removal of the leader $leader"
survivor=""
for ((i = 1; i <= N; i++)); do
    [ "$i" = "$vid" ] || [ "$i" = "$lid" ] || { survivor=$i; break; }
done
new=$(leader_name "$survivor")
[ -n "$new" ] && [ "$new" != "$leader" ] || fail "leadership did not move off $leader (now: '$new')"
nid=${new#n}
wait_for 30 "$leader out of the configuration" bash -c \
    "! timeout 10 '$JACO' --socket ${SOCK[$nid]} raft list-peers | grep -q '^$leader '"
kill -TERM "${PID[$lid]}"; wait "${PID[$lid]}" || fail "removed $leader did not exit 0"
wait_for 60 "3 voters of the 3 members left" bash -c \
    "[ \"\$(timeout 10 '$JACO' --socket ${SOCK[$nid]} -o json raft list-peers | grep -o '\"voter\":true' | wc -l)\" = 3 ]"
jaco "$nid" audit --type node.removed | grep -q "$leader .*graceful" || fail "no graceful node.removed event"
log "leader $leader removed gracefully; $new leads"

# ---- the removed leader started again does not disturb the cluster ----
term=$(jaco "$nid" -o json cluster status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')
start_jacod "$lid"
sleep $((ELECTION_MS * 5 / 1000 + 1))
assert_eq "$(leader_name "$nid")" "$new" "leader while the removed node runs"
assert_eq "$(jaco "$nid" -o json cluster status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')" "$term" \
    "term while the removed node runs"
jaco "$nid" node label "$new" removed-back=yes >/dev/null || fail "a write while the removed node runs"
grep -q "asks for votes but is not a member" "$WORK"/log* ||
    fail "the removed node's vote requests were not refused with a log line"
kill -TERM "${PID[$lid]}"; wait "${PID[$lid]}" || true
log "ok"
