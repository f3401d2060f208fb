#!/bin/bash
# The nftables isolation plugin, for real, in a network namespace the test
# creates (ip netns): jacod with the plugin logs "self-test ok", leaves no
# scratch table behind and loads table inet jaco; a table deleted, and a
# rule added to it, are restored at the next check with an audit event
# isolation_ruleset_reconciled summarising the difference; the same jacod
# without CAP_NET_ADMIN (dropped from its bounding set with setpriv) logs
# the failure and the missing capability, and still serves. Per-replica
# rules, for real traffic from a second namespace over a veth pair: a
# replica's declared port in isolation-ports is reached, an undeclared
# port of the range is not, the rules follow the replicas (no drift event
# for that), and go with the deployment.
. "$(dirname "$0")/lib.sh"

NFT=$top_builddir/.libs/jacod-isolation-nft.so
[ -f "$NFT" ] || fail "the nftables plugin is not built: $NFT"
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    log "SKIP: needs root, iproute2 and nftables (scripts/test.sh installs them)"
    exit 77
fi
command -v nc >/dev/null || fail "nc (netcat-openbsd) is missing: scripts/test.sh installs it"
NS=jaco-nft-$$
NS2=jaco-cli-$$
ip netns add "$NS" || { log "SKIP: cannot create a network namespace here"; exit 77; }
ON_EXIT="ip netns delete '$NS'; ip netns delete '$NS2'"
ip netns add "$NS2" || fail "cannot create a second namespace"
ip netns exec "$NS" ip link set lo up
# NS (10.199.0.1, jacod) <-veth-> NS2 (10.199.0.2, a client)
ip link add "jv$$a" type veth peer name "jv$$b" || fail "cannot create a veth pair"
ip link set "jv$$a" netns "$NS"
ip link set "jv$$b" netns "$NS2"
ip netns exec "$NS" ip addr add 10.199.0.1/24 dev "jv$$a"
ip netns exec "$NS2" ip addr add 10.199.0.2/24 dev "jv$$b"
ip netns exec "$NS" ip link set "jv$$a" up
ip netns exec "$NS2" ip link set "jv$$b" up

SOCK[1]="$WORK/n1.sock"
cat >"$WORK/n1.conf" <<EOF
name = n1
data-dir = $WORK/n1
peer-address = 127.0.0.1:7400
socket = "${SOCK[1]}"
bootstrap = true
isolation-plugin = $NFT
isolation-check-interval = 1s
scheduler-plugin = $top_builddir/.libs/jacod-scheduler-spread.so
stop-timeout = 1000
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

# Per-replica rules: port 20080 declared and listened on by a replica,
# 20081 listened on but undeclared (both in the default 20000-29999).
reach() { ip netns exec "$NS2" nc -z -w 2 10.199.0.1 "$1"; }
drifts() { jaco 1 audit --type isolation_ruleset_reconciled 2>/dev/null | grep -c reconciled || true; }
before=$(drifts)
ip netns exec "$NS" nc -lk 20081 >/dev/null 2>&1 &
PID[listener]=$! # killed by cleanup, like the nodes
printf 'deployments:\n  web:\n    services:\n      api:\n        command: [nc, -lk, "20080"]\n        ports: [20080]\n' >"$WORK/web.yaml"
wait_for 20 "the host reports its runtime" bash -c \
    "timeout 10 '$JACO' --socket ${SOCK[1]} -o json node list | grep -q '\"runtime\":\"spread\"'"
jaco 1 apply -f "$WORK/web.yaml" >/dev/null || fail "apply"
timeout 30 "$JACO" --socket "${SOCK[1]}" status -w --timeout 20s web >/dev/null || fail "the replica does not run"
wait_for 20 "the replica's rule" bash -c \
    "ip netns exec '$NS' nft list table inet jaco | grep -q 'tcp dport 20080 accept comment \"replica web/api/0\"'"
nft_ns list table inet jaco | grep -q 'tcp dport 20000-29999 drop' || fail "no drop rule for the range"
wait_for 10 "the declared port reached from the other namespace" reach 20080
if reach 20081; then fail "an undeclared port of the range was reached"; fi
kill "${PID[listener]}"
wait "${PID[listener]}" 2>/dev/null || true
unset "PID[listener]"
grep -q 'isolation plugin nftables: table inet jaco loaded: 1 replica port rule' "$WORK/log1" ||
    fail "the new rules are not logged"
# Deleted: its rule goes, and the port is closed again.
jaco 1 delete web >/dev/null || fail "delete"
wait_for 20 "the rule removed" bash -c \
    "! ip netns exec '$NS' nft list table inet jaco | grep -q 'replica web/api/0'"
assert_eq "$(drifts)" "$before" "drift events for replica changes"
stop_node 1

# Without CAP_NET_ADMIN: the failure and its cause are logged.
run_in_ns "$WORK/log2" --bounding-set=-net_admin
wait_for 30 "the self-test result" grep -q 'isolation plugin nftables' "$WORK/log2"
grep -q 'self-test failed: load a scratch table: .*Operation not permitted.*CAP_NET_ADMIN' "$WORK/log2" ||
    fail "the failure does not name the missing capability: $(grep isolation "$WORK/log2")"
grep -q 'this host must get no replicas' "$WORK/log2" || fail "the consequence is not said"
wait_for 30 "jacod serves without isolation" served
stop_node 1
log "nftables: self-test, table loaded, two drifts restored and audited, a replica's port reached and an undeclared one not, rules follow the replicas, refused without CAP_NET_ADMIN with the reason"
