#!/bin/bash
# Degraded networks, for real (netns.sh), on a 3-node kvstore cluster
# under writes: a flapping link between the leader and a follower (cut and
# healed every 400 ms for 6 s), 40 ms of added latency on every link
# (faultproxy: the writes slow down by at least that, the leader and term
# hold), and 15% random loss into a follower. Raft keeps its leader where
# it should, the writes go on, and afterwards every acknowledged write is
# on every node.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
[ -x "$FAULTPROXY" ] || fail "faultproxy is not built: $FAULTPROXY"
ns_require
ns_setup 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
others() { local i; for i in 1 2 3; do [ "$i" != "$1" ] && echo "$i"; done; }
term_of() { status_field "$1" term; }
load() { # load NAME SECONDS: writes through the leader in the background
    $CLIENT_WRAP "$KVLOAD" --servers "${CLIENT[$leader]}" --inflight 4 \
        --seconds "$2" --prefix "$1-" --ack-file "$WORK/acked-$1" \
        --json >"$WORK/load-$1.out" 2>"$WORK/load-$1.err" &
    PID[load]=$!
}
load_wait() { wait "${PID[load]}" || true; unset "PID[load]"; }
acked() { wc -l <"$WORK/acked-$1"; }
verify_all() {
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

# ---- a flapping link ----
set -- $(others "$leader")
f=$1
term=$(term_of "$leader")
load flap 7
log "flapping the link between leader $leader and node $f"
for ((k = 0; k < 8; k++)); do
    ns_cut "$leader" "$f"
    sleep 0.4
    ns_heal "$leader" "$f"
    sleep 0.4
done
load_wait
assert_eq "$(wait_leader 1 2 3)" "$leader" "the leader after the flapping"
assert_eq "$(term_of "$leader")" "$term" "the term after the flapping (pre-vote)"
[ "$(acked flap)" -gt 100 ] || fail "few writes over the flapping link: $(cat "$WORK/load-flap.err")"
verify_all

# ---- 40 ms more on every link ----
term=$(term_of "$leader")
for i in 1 2 3; do ns_delay "$i" 40; done
# The proxies take the connections opened from now on: make the nodes
# reopen theirs by breaking the current ones.
for i in 1 2 3; do
    for j in $(others "$i"); do
        nsx "$i" nft add rule ip jacofault output ip daddr "$NS_SUBNET.$j" tcp dport 7000 meta mark != 0x4a tcp flags '&' '(syn)' == 0 reject with tcp reset
    done
done
sleep 0.5
for i in 1 2 3; do nsx "$i" nft flush chain ip jacofault output; done
load slow 5
load_wait
p50=$(sed -n 's/.*"p50_us":\([0-9]*\).*/\1/p' "$WORK/load-slow.out")
log "p50 with 40 ms links: ${p50:-?} us"
[ -n "$p50" ] && [ "$p50" -ge 40000 ] || fail "the writes did not slow down: p50 ${p50:-?} us ($(cat "$WORK/load-slow.out"))"
[ "$(acked slow)" -gt 20 ] || fail "few writes with slow links"
assert_eq "$(wait_leader 1 2 3)" "$leader" "the leader with slow links"
assert_eq "$(term_of "$leader")" "$term" "the term with slow links"
ns_heal
verify_all

# ---- random loss into a follower ----
set -- $(others "$leader")
ns_loss "$1" 15
load lossy 4
load_wait
[ "$(acked lossy)" -gt 100 ] || fail "few writes with a lossy follower"
assert_eq "$(wait_leader "$leader" "$2")" "$leader" "the leader with a lossy follower"
ns_heal
verify_all
log "network faults: flapping link, 40 ms links (p50 $p50 us), 15% loss; leader and term kept, nothing acknowledged lost"
