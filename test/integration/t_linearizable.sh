#!/bin/bash
# Linearizability under faults: kvhist records the puts and linearizable
# reads (LGET) of 5 clients on 8 keys of a 3-node kvstore cluster for
# LIN_SECONDS (default 20) while the test kills -9 and restarts the leader,
# then a follower, then stops the leader (SIGSTOP) for longer than an
# election timeout, in turn; lincheck must find the history linearizable.
# A failing history is kept: the work directory's path is printed.
# Then the checker must catch a broken read path: a short run with local
# reads (GET) on the followers, which may be stale, must be reported not
# linearizable. LIN_SEED repeats a run's choices (kvhist's and the faults').
. "$(dirname "$0")/lib.sh"
KVHIST=${KVHIST:-$top_builddir/kvhist}
LINCHECK=${LINCHECK:-$top_builddir/test/lin/lincheck}
SECS=${LIN_SECONDS:-20}
SEED=${LIN_SEED:-20261123}
RANDOM=$SEED
STOP_MS=$((ELECTION_MS * 5 / 2))
log "seed $SEED, $SECS s of faults (repeat with LIN_SEED=$SEED LIN_SECONDS=$SECS)"

alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)

all="${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}"
"$KVHIST" --servers "$all" --seconds "$SECS" --clients 5 --keys 8 \
    --prefix lin- --seed "$SEED" --timeout-ms "$((STOP_MS * 3 / 5))" \
    --out "$WORK/history" >"$WORK/kvhist.out" 2>&1 &
hist=$!
end=$((SECONDS + SECS))

restart() {
    start_node "$1" --initial-cluster "$(initial_cluster)"
    wait_client "$1"
}
pause() { sleep "$1.$((RANDOM % 10))"; }

# Faults in turn until a few seconds before the recorder stops, so that it
# ends on a healed cluster.
sleep 1
cycle=0
while ((SECONDS + 5 < end)); do
    leader=$(wait_leader 1 2 3)
    case $((cycle % 3)) in
        0)
            log "kill -9 leader $leader"
            kill_node "$leader"
            pause 1
            restart "$leader"
            ;;
        1)
            fs=()
            for i in 1 2 3; do [ "$i" != "$leader" ] && fs+=("$i"); done
            victim=${fs[RANDOM % 2]}
            log "kill -9 follower $victim"
            kill_node "$victim"
            pause 1
            restart "$victim"
            ;;
        2)
            log "SIGSTOP leader $leader for $STOP_MS ms (election timeout $ELECTION_MS ms)"
            kill -STOP "${PID[$leader]}"
            sleep "$((STOP_MS / 1000)).$(printf %03d $((STOP_MS % 1000)))"
            kill -CONT "${PID[$leader]}"
            ;;
    esac
    cycle=$((cycle + 1))
    pause 0
done
wait "$hist" || fail "kvhist failed: $(cat "$WORK/kvhist.out")"
log "$(tail -n 1 "$WORK/kvhist.out")"
ok=$(grep -c ' ok srv=' "$WORK/history" || true)
[ "$ok" -ge 200 ] || fail "only $ok operations succeeded"

rc=0
"$LINCHECK" "$WORK/history" >"$WORK/lincheck.out" 2>&1 || rc=$?
cat "$WORK/lincheck.out" >&2
case $rc in
    0) ;;
    1) fail "NOT LINEARIZABLE with LGET (seed $SEED): history kept in $WORK/history" ;;
    2) fail "the checker gave up (seed $SEED): history kept in $WORK/history" ;;
    *) fail "lincheck failed (exit $rc)" ;;
esac

# The broken read path: local reads on the followers see writes that the
# leader acknowledged a moment before they apply them.
leader=$(wait_leader 1 2 3)
followers=""
for i in 1 2 3; do
    [ "$i" != "$leader" ] && followers+="${followers:+,}${CLIENT[$i]}"
done
"$KVHIST" --servers "$followers" --seconds 3 --clients 4 --keys 2 \
    --prefix stale- --read get --seed "$SEED" --out "$WORK/history-local-reads" \
    >"$WORK/kvhist-local.out" 2>&1 || fail "kvhist failed: $(cat "$WORK/kvhist-local.out")"
log "local reads: $(tail -n 1 "$WORK/kvhist-local.out")"
rc=0
"$LINCHECK" "$WORK/history-local-reads" >"$WORK/lincheck-local.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "local reads on followers: lincheck exit $rc, want 1 (not linearizable): $(cat "$WORK/lincheck-local.out")"
log "local reads: $(grep -m1 'NOT LINEARIZABLE' "$WORK/lincheck-local.out"), as expected"
log "ok"
