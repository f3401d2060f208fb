#!/bin/bash
# A follower's disk fills up (a real 16 MiB tmpfs as its data directory):
# the cluster keeps taking writes on the other two, the follower stays up
# and says no_space, and once the tmpfs grows it catches up by itself,
# with every acknowledged write there.
. "$(dirname "$0")/lib.sh"

alloc_nodes 3
mkdir -p "$WORK/n3"
if ! mount -t tmpfs -o size=16m tmpfs "$WORK/n3" 2>/dev/null; then
    log "SKIP: cannot mount a tmpfs here (not root?)"
    exit 77
fi
ON_EXIT="umount '$WORK/n3'"

start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
# The full disk must be a follower's: a leader that cannot write its own
# log rightly fails writes. SIGTERM hands leadership over first.
while [ "$leader" = 3 ]; do
    stop_node 3
    start_node 3 --initial-cluster "$(initial_cluster)"
    wait_client 3
    leader=$(NOT_LEADER=3 wait_leader 1 2 3)
done
log "leader is node $leader; node 3's disk is 16 MiB"

# 40 MB of values: the follower's disk fills part way; the cluster does not
# notice (nodes $leader and the other follower are a majority).
"$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 16 --count 40000 \
    --value-size 1000 --prefix full --ack-file "$WORK/acked" \
    >"$WORK/load.out" 2>"$WORK/load.err" ||
    fail "writes failed while only a follower's disk was full: $(head -3 "$WORK/load.err")"
kill -0 "${PID[3]}" 2>/dev/null || fail "the follower died when its disk filled up"
grep -qi "no space\|no_space" "$WORK/log3" ||
    fail "the follower logged nothing about its full disk"
commit=$(status_field "$leader" commit_index)
applied3=$(status_field 3 applied_index)
[ "$applied3" -lt "$commit" ] ||
    fail "the follower applied everything on a full disk ($applied3 >= $commit)"
log "node 3 stuck at $applied3 of $commit with a full disk"
assert_eq "$(status_field 3 disk)" no_space "node 3's disk in its status"

mount -o remount,size=256m "$WORK/n3"
t0=$SECONDS
wait_applied 3 "$commit"
log "node 3 caught up $((SECONDS - t0)) s after the tmpfs grew"
assert_eq "$(status_field 3 disk)" ok "node 3's disk in its status after it grew"
"$KVLOAD" --servers "${CLIENT[3]}" --verify "$WORK/acked" >&2 ||
    fail "the follower misses acknowledged writes after catching up"
# And it keeps them over a restart.
stop_node 3
start_node 3 --initial-cluster "$(initial_cluster)"
wait_client 3
wait_applied 3 "$commit"
"$KVLOAD" --servers "${CLIENT[3]}" --verify "$WORK/acked" >&2 ||
    fail "the follower lost writes over a restart"
log "ok"
