#!/bin/bash
# The nftables isolation plugin, for real, in a network namespace the test
# creates (ip netns): jacod with the plugin logs "self-test ok", leaves no
# scratch table behind and loads table inet jaco; a table deleted, and a
# rule added to it, are restored at the next check with an audit event
# isolation_ruleset_reconciled summarising the difference; the same jacod
# without CAP_NET_ADMIN (dropped from its bounding set with setpriv) logs
# the failure and the missing capability, and still serves.
. "$(dirname "$0")/lib.sh"

NFT=$top_builddir/.libs/jacod-isolation-nft.so
[ -f "$NFT" ] || fail "the nftables plugin is not built: $NFT"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    log "SKIP: needs root, iproute2 and nftables (scripts/test.sh installs them)"
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
isolation-check-interval = 1s
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
nft_ns() { ip netns exec "$NS" nft "$@"; }
has_table() { nft_ns list table inet jaco >/dev/null 2>&1; }
wait_for 20 "table inet jaco loaded" has_table
# Drift: the table deleted, then a rule slipped in.
nft_ns delete table inet jaco
wait_for 20 "the deleted table restored" has_table
reconciled() { jaco 1 audit --type isolation_ruleset_reconciled 2>/dev/null | grep -q "$1"; }
wait_for 20 "an audit event for the deleted table" reconciled 'was missing'
nft_ns add rule inet jaco input tcp dport 9999 drop
wait_for 20 "the extra rule removed" bash -c "! ip netns exec '$NS' nft list table inet jaco | grep -q 'dport 9999'"
wait_for 20 "an audit event naming the extra rule" reconciled 'dport 9999'
grep -q 'ruleset drifted' "$WORK/log1" || fail "the drift is not in jacod's log"
stop_node 1

# Without CAP_NET_ADMIN: the failure and its cause are logged.
run_in_ns "$WORK/log2" --bounding-set=-net_admin
wait_for 30 "the self-test result" grep -q 'isolation plugin nftables' "$WORK/log2"
grep -q 'self-test failed: load a scratch table: .*Operation not permitted.*CAP_NET_ADMIN' "$WORK/log2" ||
    fail "the failure does not name the missing capability: $(grep isolation "$WORK/log2")"
grep -q 'this host must get no replicas' "$WORK/log2" || fail "the consequence is not said"
wait_for 30 "jacod serves without isolation" served
stop_node 1
log "nftables: self-test, table loaded, two drifts restored and audited, refused without CAP_NET_ADMIN with the reason"
