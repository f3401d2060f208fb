#!/bin/bash
# jacod across a real network partition (netns.sh): 3 hosts running a
# 3-replica deployment; the leader's host is cut off. The other two elect a
# leader and take writes; on the isolated host jaco says quorum_lost (exit
# 1, with the hint) and still shows its local view, and the replica there
# keeps running; after reschedule-after the majority runs that replica
# elsewhere. Healed, the old host follows, stops the replica it no longer
# holds, and the deployment settles with every replica running once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
SPREAD=$top_builddir/.libs/jacod-scheduler-spread.so
ns_require
ns_setup 3
ON_EXIT='for f in "$WORK"/n*/replicas/running; do [ -f "$f" ] && awk "{print \$1}" "$f" | while read -r p; do kill -9 -- "-$p"; done; done 2>/dev/null; '"$ON_EXIT"
secret=$(secret_file)
ic="n1=${PEER[1]},n2=${PEER[2]},n3=${PEER[3]}"
for i in 1 2 3; do
    SOCK[$i]="$WORK/$i.sock"
    cat >"$WORK/n$i.conf" <<CONF
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
initial-cluster = $ic
secret-file = $secret
election-timeout = $ELECTION_MS
scheduler-plugin = $SPREAD
reschedule-after = 3s
stop-timeout = 2000
CONF
    start_jacod "$i"
done
ON_FAIL='for i in 1 2 3; do echo "---- n$i"; jaco $i status; done'
leader_name() { jaco "$1" -o json cluster status 2>/dev/null | sed -n 's/.*"leader_name":"\([^"]*\)".*/\1/p'; }
wait_for 60 "a leader" bash -c "[ -n \"\$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json cluster status 2>/dev/null | sed -n 's/.*\"leader_name\":\"\\([^\"]*\\)\".*/\\1/p')\" ]"
wait_for 30 "every host reports its runtime" bash -c \
    "[ \$(timeout 10 '$JACO' --socket ${SOCK[1]} -o json node list | grep -o '\"runtime\":\"spread\"' | wc -l) = 3 ]"
printf 'deployments:\n  web:\n    services:\n      api:\n        replicas: 3\n        command: [sleep, "1000"]\n' >"$WORK/web.yaml"
jaco 1 apply -f "$WORK/web.yaml" >/dev/null || fail "apply"
timeout 40 "$JACO" --socket "${SOCK[1]}" status -w --timeout 30s web >/dev/null || fail "web does not run"
L=$(leader_name 1)
l=${L#n}
set -- $(for i in 1 2 3; do [ "$i" != "$l" ] && echo "$i"; done)
row() { jaco "$1" status 2>/dev/null | awk -v h="$2" '$1 ~ /^web\// && $2 == h'; }
mine=$(row 1 "$L" | awk '{print $1}')
pid=$(row 1 "$L" | awk '{print $5}')
[ -n "$pid" ] || fail "no replica on the leader $L"

log "cutting $L off"
ns_partition "$l" "$1 $2"
wait_for 20 "a new leader on the majority" bash -c \
    "n=\$(timeout 10 '$JACO' --socket ${SOCK[$1]} -o json cluster status 2>/dev/null | sed -n 's/.*\"leader_name\":\"\\([^\"]*\\)\".*/\\1/p'); [ -n \"\$n\" ] && [ \"\$n\" != $L ]"
jaco "$1" node label "n$1" side=majority >/dev/null || fail "the majority does not take writes"
rc=0
jaco "$l" node label "$L" side=minority >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of a write on the isolated host"
grep -q 'Error{code: quorum_lost' "$WORK/out" || fail "the isolated host's error: $(cat "$WORK/out")"
grep -q 'hint: this node cannot reach a majority' "$WORK/out" || fail "no hint: $(cat "$WORK/out")"
jaco "$l" status >/dev/null || fail "no local status on the isolated host"
wait_for 20 "$mine runs elsewhere" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[$1]} status | awk '\$1 == \"$mine\" && \$2 != \"$L\" && / running\$/' | grep -q ."
kill -0 "$pid" || fail "the isolated host stopped its replica while cut off"

ns_heal
wait_for 30 "$L follows" bash -c \
    "n=\$(timeout 10 '$JACO' --socket ${SOCK[$l]} -o json cluster status 2>/dev/null | sed -n 's/.*\"leader_name\":\"\\([^\"]*\\)\".*/\\1/p'); [ -n \"\$n\" ] && [ \"\$n\" != $L ]"
wait_for 20 "$L stops the replica it no longer holds" bash -c "! kill -0 $pid 2>/dev/null"
timeout 40 "$JACO" --socket "${SOCK[$l]}" status -w --timeout 30s web >/dev/null || fail "web does not settle"
running=$(jaco "$l" status web | grep -c '^web/api/.* running$')
assert_eq "$running" 3 "running replicas after the heal"
grep -q "replica $mine: stopping pid $pid (no longer placed here)" "$WORK/log$l" || fail "the stop is not logged"
for i in 1 2 3; do stop_node "$i"; done
log "jacod partition: majority leads and writes, minority says quorum_lost and keeps its replica, which runs elsewhere and stops after the heal"
