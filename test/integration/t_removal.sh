#!/bin/bash
# Membership changes an operator asks for, end to end on three jacod:
# cluster transfer-leader to a named node (asked on a third node, which
# then shows the new leader) and to the best voter; with two nodes
# SIGSTOPped a removal is refused with quorum_lost; a killed follower
# cannot be removed gracefully (the hint says --force), nor can a live
# voter while it is down (no majority left), but node remove --force
# removes it: node list forgets it, the audit log has node.removed, writes
# work; a graceful removal of the leader moves leadership first, and the
# removed process stops cleanly while the last node leads on; the last
# voter cannot be removed; usage errors exit 2.
. "$(dirname "$0")/lib.sh"

N=3
for i in 1 2 3; do
    PEER[$i]="127.0.0.1:$(free_port)"
    SOCK[$i]="$WORK/n$i.sock"
done
IC="n1=${PEER[1]},n2=${PEER[2]},n3=${PEER[3]}"
for i in 1 2 3; do
    cat >"$WORK/n$i.conf" <<EOF
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
initial-cluster = $IC
secret-file = $(secret_file)
election-timeout = $ELECTION_MS
EOF
done

# jfield NODE KEY: a top-level field of `cluster status -o json`.
# expect_rc RC WHAT COMMAND...: run it (stderr to $WORK/err) and check
# its exit status.
expect_rc() {
    local want=$1 what=$2 rc
    shift 2
    set +e
    "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    set -e
    [ "$rc" = "$want" ] ||
        fail "$what: exit $rc, want $want: $(cat "$WORK/out" "$WORK/err")"
}
leader_agreed() { # leader_agreed NODES...: all name one leader
    local i l first=""
    for i in "$@"; do
        l=$(jfield "$i" leader_name)
        [ -n "$l" ] && [ "$(jfield "$i" leader_id)" != 0 ] || return 1
        [ -z "$first" ] || [ "$l" = "$first" ] || return 1
        first=$l
    done
}
leader_is() { # leader_is NAME NODES...
    local want=$1 i
    shift
    for i in "$@"; do [ "$(jfield "$i" leader_name)" = "$want" ] || return 1; done
}
unreachable_from() { # unreachable_from NODE NAME
    jaco "$1" raft list-peers | awk -v n="$2" '$1 == n && $4 == "unreachable"' | grep -q .
}

# ---- usage errors: exit 2, nothing sent ----
expect_rc 2 "node remove with an unknown flag" "$JACO" --socket "${SOCK[1]}" node remove --bogus n1
grep -q 'bogus' "$WORK/err" || fail "unknown flag not named: $(cat "$WORK/err")"
expect_rc 2 "node remove without a name" "$JACO" --socket "${SOCK[1]}" node remove
expect_rc 2 "raft remove-peer without --peer-id" "$JACO" --socket "${SOCK[1]}" raft remove-peer
expect_rc 2 "raft remove-peer with a bad id" "$JACO" --socket "${SOCK[1]}" raft remove-peer --peer-id x1
expect_rc 2 "cluster transfer-leader with two names" "$JACO" --socket "${SOCK[1]}" cluster transfer-leader a b
expect_rc 2 "cluster transfer-leader with an unknown flag" "$JACO" --socket "${SOCK[1]}" cluster transfer-leader --now
expect_rc 0 "node remove --help" "$JACO" node remove --help
grep -q 'usage: jaco node remove \[--force\] NAME' "$WORK/out" || fail "node remove --help: $(cat "$WORK/out")"
"$JACO" --help | grep -q 'cluster transfer-leader' || fail "jaco --help lacks transfer-leader"

# ---- a cluster ----
for i in 1 2 3; do start_jacod "$i"; done
all_ready() {
    local i
    for i in 1 2 3; do
        [ "$(jaco "$i" node list 2>/dev/null | awk '$3 == "READY"' | wc -l)" = 3 ] || return 1
    done
    leader_agreed 1 2 3
}
wait_for 60 "three READY nodes and one leader" all_ready
leader=$(jfield 1 leader_name)
log "leader is $leader"

# ---- transfer-leader to a named node, asked on a third node ----
lid=${leader#n}
target=n$((lid % 3 + 1))
asker=$(((lid + 1) % 3 + 1))
expect_rc 0 "transfer-leader $target" jaco "$asker" cluster transfer-leader "$target"
grep -q "^leader: $target\$" "$WORK/out" || fail "transfer-leader printed: $(cat "$WORK/out")"
jaco "$asker" cluster status | grep -q "^Leader: *$target " ||
    fail "cluster status on n$asker right after the transfer: $(jaco "$asker" cluster status)"
wait_for 10 "every node names $target" leader_is "$target" 1 2 3
log "leadership moved from $leader to $target"
# To the best caught-up voter, with JSON out.
expect_rc 0 "transfer-leader with no name" jaco 1 -o json cluster transfer-leader
grep -q '"leader":"n[123]"' "$WORK/out" || fail "transfer-leader -o json: $(cat "$WORK/out")"
grep -q "\"leader\":\"$target\"" "$WORK/out" && fail "transfer-leader with no name kept $target"
wait_for 10 "one leader again" leader_agreed 1 2 3
expect_rc 1 "transfer-leader to an unknown node" jaco 1 cluster transfer-leader nosuch
grep -q 'Error{code: not_found' "$WORK/err" || fail "unknown target: $(cat "$WORK/err")"

# ---- no quorum: a removal is refused ----
leader=$(jfield 1 leader_name)
lid=${leader#n}
f1=$((lid % 3 + 1))
f2=$((f1 % 3 + 1))
kill -STOP "${PID[$lid]}" "${PID[$f1]}"
# As an operator would: once the node says so. (Asked before, while it
# still knows the stopped leader, the request would reach the leader's
# socket and the answer would be leadership_lost: it may still happen.)
wait_for 30 "quorum_lost on n$f2" bash -c "[ \"\$(timeout 10 '$JACO' --socket ${SOCK[$f2]} -o json cluster status | sed -n 's/.*\"health\":\"\([a-z_]*\)\".*/\1/p')\" = quorum_lost ]"
expect_rc 1 "node remove --force without quorum" jaco "$f2" node remove --force "n$f1"
grep -q 'Error{code: quorum_lost' "$WORK/err" || fail "removal without quorum: $(cat "$WORK/err")"
grep -q 'jaco-recovery(7)' "$WORK/err" || fail "no pointer to jaco-recovery(7): $(cat "$WORK/err")"
kill -CONT "${PID[$lid]}" "${PID[$f1]}"
wait_for 30 "a leader after SIGCONT" leader_agreed 1 2 3
jaco 1 raft list-peers | grep -q "^n$f1 " || fail "n$f1 was removed without quorum"

# ---- kill -9 a follower; graceful removal refused, forced removal works ----
leader=$(jfield 1 leader_name)
lid=${leader#n}
dead=$((lid % 3 + 1))
live=$((dead % 3 + 1))
kill_node "$dead"
wait_for 20 "n$dead unreachable" unreachable_from "$lid" "n$dead"
expect_rc 1 "graceful removal of a dead node" jaco "$live" node remove "n$dead"
grep -q 'Error{code: wrong_state' "$WORK/err" || fail "graceful removal of n$dead: $(cat "$WORK/err")"
grep -q -- "--force n$dead" "$WORK/err" || fail "no --force hint: $(cat "$WORK/err")"
expect_rc 1 "removal of a live voter while another is down" jaco "$lid" node remove --force "n$live"
grep -q 'Error{code: quorum_lost' "$WORK/err" || fail "removal of n$live: $(cat "$WORK/err")"
grep -q 'jaco-recovery(7)' "$WORK/err" || fail "no pointer to jaco-recovery(7): $(cat "$WORK/err")"
expect_rc 0 "node remove --force n$dead" jaco "$live" node remove --force "n$dead"
grep -q "^n$dead: removed (forced)\$" "$WORK/out" || fail "forced removal printed: $(cat "$WORK/out")"
forgotten() {
    local i
    for i in "$lid" "$live"; do
        ! jaco "$i" node list | grep -q "^n$dead " || return 1
        ! jaco "$i" raft list-peers | grep -q "^n$dead " || return 1
    done
}
wait_for 10 "n$dead forgotten on both nodes" forgotten
jaco "$lid" audit --type node.removed | grep -q "node.removed *n$dead .*local socket.*forced" ||
    fail "no node.removed event: $(jaco "$lid" audit)"
jaco "$live" node label "n$live" zone=a >/dev/null || fail "a write after the forced removal"
expect_rc 1 "node remove of a removed node" jaco "$live" node remove "n$dead"
grep -q 'Error{code: not_found' "$WORK/err" || fail "removing again: $(cat "$WORK/err")"
log "n$dead removed by force"

# ---- graceful removal of the leader: leadership moves first ----
expect_rc 0 "graceful removal of the leader n$lid" jaco "$lid" node remove "n$lid"
leader_is "n$live" "$live" || fail "n$live does not lead after n$lid's removal"
wait_for 10 "n$lid out of n$live's configuration" bash -c \
    "! timeout 10 '$JACO' --socket ${SOCK[$live]} raft list-peers | grep -q '^n$lid '"
stop_node "$lid"
sleep 1
leader_is "n$live" "$live" || fail "n$live stopped leading after n$lid stopped"
jaco "$live" node label "n$live" zone=b >/dev/null || fail "a write on the last node"
jaco "$live" audit --type node.removed | grep -q "node.removed *n$lid .*graceful" ||
    fail "no graceful node.removed event: $(jaco "$live" audit)"
log "leader n$lid removed gracefully; n$live leads"

# ---- the last voter stays ----
expect_rc 1 "removal of the last voter" jaco "$live" node remove --force "n$live"
grep -q 'Error{code: wrong_state.*last voter' "$WORK/err" || fail "last voter: $(cat "$WORK/err")"
expect_rc 1 "raft remove-peer of an unknown id" jaco "$live" raft remove-peer --peer-id 12345
grep -q 'Error{code: not_found' "$WORK/err" || fail "remove-peer unknown: $(cat "$WORK/err")"
expect_rc 1 "json error" jaco "$live" -o json node remove nosuch
grep -q '^{"code":"not_found"' "$WORK/out" || fail "json error: $(cat "$WORK/out")"
stop_node "$live"
log "ok"
