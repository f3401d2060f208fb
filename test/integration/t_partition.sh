#!/bin/bash
# Network partitions, for real (netns.sh: a network namespace per node,
# nftables drops), on a 3-node kvstore cluster under writes:
# - the leader isolated: the majority elects a new leader within a few
#   election timeouts and takes writes; the old leader answers quorum_lost
#   (not a hang), still serves local reads, and after the heal follows;
# - a follower isolated: no election (the term stays, pre-vote), its writes
#   fail with a precise error, its local reads work, it catches up after;
# - a symmetric split with no majority (each node alone): every node says
#   quorum_lost or no_leader, none takes a write; after the heal one leads;
# - one-way loss (the leader hears nothing from a follower): the other two
#   keep their leader and term and take writes.
# After each, every acknowledged write is on every node.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
ns_require
ns_setup 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)

others() { local i; for i in 1 2 3; do [ "$i" != "$1" ] && echo "$i"; done; }
term_of() { status_field "$1" term; }
# load NAME SERVERS SECONDS: writes in the background (the acks go to
# $WORK/acked-NAME).
load() {
    local servers="" i
    for i in $2; do servers+="${servers:+,}${CLIENT[$i]}"; done
    $CLIENT_WRAP "$KVLOAD" --servers "$servers" --inflight 8 --seconds "$3" \
        --prefix "$1-" --ack-file "$WORK/acked-$1" >"$WORK/load-$1.out" 2>&1 &
    PID[load]=$!
}
load_wait() { wait "${PID[load]}" || true; unset "PID[load]"; }
# The error a write to node I gets now (the code of "ERR <code> ...").
write_error() { { kv "$1" put probe-$RANDOM x 2>&1 || true; } | sed -n 's/.*code: \([a-z_]*\).*/\1/p' | head -n 1; }
verify_all() { # every acknowledged write of every load, on every node
    local i commit f
    commit=$(status_field "$(wait_leader 1 2 3)" commit_index)
    for i in 1 2 3; do
        wait_applied "$i" "$commit"
        for f in "$WORK"/acked-*; do
            $CLIENT_WRAP "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$f" >&2 ||
                fail "node $i lost writes of $(basename "$f")"
        done
    done
}

# ---- the leader isolated ----
set -- $(others "$leader")
load iso-leader "$1 $2" 6
sleep 1
log "isolating the leader, node $leader"
t0=$SECONDS
ns_partition "$leader" "$1 $2"
new=$(NOT_LEADER=$leader wait_leader "$1" "$2")
log "node $new leads the majority after $((SECONDS - t0)) s"
((SECONDS - t0 <= 5)) || fail "the majority took $((SECONDS - t0)) s to elect a leader"
kv "$new" put majority-write yes >/dev/null || fail "the majority does not take writes"
wait_for 10 "the old leader answers quorum_lost" bash -c \
    "[ \"\$($CLIENT_WRAP timeout 20 '$KVSTORE' --server ${CLIENT[$leader]} put x y 2>&1 | sed -n 's/.*code: \\([a-z_]*\\).*/\\1/p')\" = quorum_lost ]"
kv "$leader" get majority-write >/dev/null 2>&1 && fail "the isolated node has the majority's write"
kv "$leader" status >/dev/null || fail "the isolated node does not answer"
load_wait
[ "$(wc -l <"$WORK/acked-iso-leader")" -gt 50 ] || fail "few writes through the majority: $(tail -n 2 "$WORK/load-iso-leader.out")"
ns_heal
wait_for 20 "the old leader follows node $new" bash -c \
    "[ \"\$($CLIENT_WRAP timeout 20 '$KVSTORE' --server ${CLIENT[$leader]} status --json | sed -n 's/.*\"leader_id\":\\([0-9]*\\).*/\\1/p')\" = $new ]"
verify_all
leader=$new

# ---- a follower isolated ----
set -- $(others "$leader")
f=$1
term=$(term_of "$leader")
load iso-follower "$leader $2" 4
log "isolating follower $f"
ns_partition "$f" "$leader $2"
sleep 3
assert_eq "$(wait_leader "$leader" "$2")" "$leader" "the leader while a follower is isolated"
assert_eq "$(term_of "$leader")" "$term" "the term while a follower is isolated (pre-vote)"
e=$(write_error "$f")
[[ $e == quorum_lost || $e == no_leader ]] || fail "a write to the isolated follower: '$e'"
[[ "$(kv "$f" get majority-write)" == *yes* ]] || fail "local read on the isolated follower"
kv "$f" get --linearizable majority-write >/dev/null 2>&1 && fail "a linearizable read on the isolated follower succeeded"
load_wait
ns_heal
assert_eq "$(wait_leader 1 2 3)" "$leader" "the leader after the follower's heal"
verify_all

# ---- no majority anywhere ----
log "splitting every node from every other"
ns_partition 1 "2 3"
ns_cut 2 3
for i in 1 2 3; do
    wait_for 15 "node $i refuses writes" bash -c \
        "e=\$($CLIENT_WRAP timeout 20 '$KVSTORE' --server ${CLIENT[$i]} put split-$i x 2>&1 | sed -n 's/.*code: \\([a-z_]*\\).*/\\1/p');
         [ \"\$e\" = quorum_lost ] || [ \"\$e\" = no_leader ]"
done
sleep 2
for i in 1 2 3; do
    kv "$i" get split-1 >/dev/null 2>&1 && fail "a write was taken with no majority"
done
ns_heal
leader=$(wait_leader 1 2 3)
kv "$leader" put after-split yes >/dev/null || fail "no write after the split healed"
verify_all

# ---- one way: the leader hears nothing from a follower ----
# Over TCP that stalls the pair both ways (the leader's segments are never
# acknowledged): the follower loses the leader, but pre-vote keeps it from
# disturbing the other two, who keep the term and take writes.
set -- $(others "$leader")
term=$(term_of "$leader")
load oneway "$leader" 4
ns_oneway "$leader" "$1"
load_wait
assert_eq "$(wait_leader "$leader" "$2")" "$leader" "the leader under one-way loss"
assert_eq "$(term_of "$leader")" "$term" "the term under one-way loss"
[ "$(wc -l <"$WORK/acked-oneway")" -gt 50 ] || fail "few writes under one-way loss"
ns_heal
verify_all
log "partitions: leader isolated, follower isolated, no majority, one way; nothing acknowledged lost"
