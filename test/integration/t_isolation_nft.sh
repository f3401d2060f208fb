#!/bin/bash
# The nftables isolation plugin's start-up self-test, for real, in a
# network namespace the test creates (ip netns): jacod with the plugin
# logs "self-test ok" and leaves no scratch table behind; the same jacod
# without CAP_NET_ADMIN (dropped from its bounding set with setpriv) logs
# the failure and the missing capability, and still serves.
. "$(dirname "$0")/lib.sh"

NFT=$top_builddir/.libs/jacod-isolation-nft.so
[ -f "$NFT" ] || fail "the nftables plugin is not built: $NFT"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    log "SKIP: needs root and iproute2 for a network namespace"
    exit 77
fi
NS=jaco-nft-$$
ip netns add "$NS" || { log "SKIP: cannot create a network namespace here"; exit 77; }
ON_EXIT="ip netns delete '$NS'"
ip netns exec "$NS" ip link set lo up

SOCK[1]="$WORK/n1.sock"
cat >"$WORK/n1.conf" <<EOF
name = n1
data-dir = $WORK/n1
peer-address = 127.0.0.1:7400
socket = "${SOCK[1]}"
bootstrap = true
isolation-plugin = $NFT
EOF

served() { jaco 1 cluster status >/dev/null 2>&1; }
run_in_ns() { # run_in_ns LOG [setpriv flags...]: jacod in the namespace
    local out=$1
    shift
    ip netns exec "$NS" ${1:+setpriv "$@"} "$JACOD" --config "$WORK/n1.conf" >>"$out" 2>&1 &
    PID[1]=$!
}

run_in_ns "$WORK/log1"
wait_for 30 "the self-test result" grep -q 'isolation plugin nftables' "$WORK/log1"
grep -q 'isolation plugin nftables (.*): self-test ok: nftables: loaded, read back and removed a scratch table' "$WORK/log1" ||
    fail "the self-test did not pass: $(grep isolation "$WORK/log1")"
if ip netns exec "$NS" nft list tables 2>/dev/null | grep -q jaco_selftest; then
    fail "the self-test left its scratch table"
fi
wait_for 30 "jacod serves" served
stop_node 1

# Without CAP_NET_ADMIN: the failure and its cause are logged.
run_in_ns "$WORK/log2" --bounding-set=-net_admin
wait_for 30 "the self-test result" grep -q 'isolation plugin nftables' "$WORK/log2"
grep -q 'self-test failed: load a scratch table: .*Operation not permitted.*CAP_NET_ADMIN' "$WORK/log2" ||
    fail "the failure does not name the missing capability: $(grep isolation "$WORK/log2")"
grep -q 'this host must get no replicas' "$WORK/log2" || fail "the consequence is not said"
wait_for 30 "jacod serves without isolation" served
stop_node 1
log "nftables self-test: ok in a namespace, refused without CAP_NET_ADMIN with the reason"
