#!/bin/bash
# demo.sh: builds everything, then runs a local 3-node cluster of the
# example key-value store on 127.0.0.1, writes keys, kills the leader with
# kill -9, shows the new leader and that every acknowledged key survived,
# and stops the cluster cleanly; then the same with three jacod daemons,
# seen through jaco, running a deployment whose replica on the killed
# leader moves to a survivor.
. "$(dirname "$0")/common.sh"
ensure_packages
build build --enable-werror

top_builddir=$ROOT/build
. "$ROOT/test/integration/lib.sh"
TEST_NAME=demo

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show_status() {
    local i
    printf '  %-4s %-22s %-10s %-6s %-8s %s\n' NODE ADDRESS STATE TERM LEADER APPLIED
    for i in "$@"; do
        printf '  %-4s %-22s %-10s %-6s %-8s %s\n' "$i" "${PEER[$i]}" \
            "$(status_field "$i" state)" "$(status_field "$i" term)" \
            "$(status_field "$i" leader_id)" "$(status_field "$i" applied_index)"
    done
}

alloc_nodes 3
say "Starting a 3-node cluster in $WORK"
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
show_status 1 2 3

say "Writing 5000 keys through all three nodes (64 in flight)"
"$KVLOAD" --servers "${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}" --inflight 64 \
    --count 5000 --prefix demo- --ack-file "$WORK/acked" | sed 's/^/  /'
"$KVSTORE" --server "${CLIENT[1]}" put greeting "hello from node 1" | sed 's/^/  put greeting: /'
echo "demo-greeting" >>"$WORK/acked"
"$KVSTORE" --server "${CLIENT[1]}" put demo-greeting hello >/dev/null
echo "  acknowledged: $(wc -l <"$WORK/acked") writes"

say "kill -9 the leader (node $leader)"
kill_node "$leader"
t0=$(date +%s%N)
survivors=()
for i in 1 2 3; do [ "$i" != "$leader" ] && survivors+=("$i"); done
new=$(NOT_LEADER=$leader wait_leader "${survivors[@]}")
echo "  node $new is the new leader after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
kv "$new" put after-failover yes >/dev/null
show_status "${survivors[@]}"

say "Every acknowledged key is on both survivors"
commit=$(status_field "$new" commit_index)
for i in "${survivors[@]}"; do
    wait_applied "$i" "$commit"
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/acked" | sed "s/^/  node $i: /"
done
echo "  get greeting (linearizable, node ${survivors[0]}): $(kv "${survivors[0]}" get --linearizable greeting)"

say "Stopping the cluster (SIGTERM: leadership is handed over first)"
for i in "${survivors[@]}"; do stop_node "$i"; echo "  node $i stopped"; done

# ---- part 2: jacod and jaco ----
JACOD=$top_builddir/jacod
JACO=$top_builddir/jaco
jaco() { local i=$1; shift; "$JACO" --socket "$WORK/j$i.sock" "$@"; }
for i in 1 2 3; do JPEER[$i]="127.0.0.1:$(free_port)"; done
say "Starting 3 jacod daemons from config files ($WORK/j*.conf): n1 bootstraps, n2 and n3 wait to be joined"
for i in 1 2 3; do
    printf 'name = n%s\ndata-dir = %s\npeer-address = %s\nsocket = %s\npromote-after = 1000\n' \
        "$i" "$WORK/j$i" "${JPEER[$i]}" "$WORK/j$i.sock" >"$WORK/j$i.conf"
    printf 'scheduler-plugin = %s\nreschedule-after = 3s\nstop-timeout = 2000\n' \
        "$top_builddir/.libs/jacod-scheduler-spread.so" >>"$WORK/j$i.conf"
    [ "$i" = 1 ] && echo "bootstrap = true" >>"$WORK/j$i.conf"
    "$JACOD" --config "$WORK/j$i.conf" >>"$WORK/jlog$i" 2>&1 &
    PID[$((10 + i))]=$!
done
until jaco 1 -o json cluster status 2>/dev/null | grep -q '"leader_name":"n1"'; do sleep 0.2; done
for i in 2 3; do
    until jaco "$i" cluster status >/dev/null 2>&1 || [ $? = 1 ]; do sleep 0.2; done
    echo "\$ TOKEN=\$(jaco node issue-join-token --ttl 10m)    # on n1"
    token=$(jaco 1 node issue-join-token --ttl 10m 2>/dev/null)
    echo "  ${token:0:40}..."
    echo "\$ jaco node join \$TOKEN                            # on n$i"
    jaco "$i" node join "$token" | sed 's/^/  /'
done
echo "  (the leader's reconciler promotes the two standbys once they are caught up)"
until [ "$(jaco 1 -o json raft list-peers 2>/dev/null | grep -o '"voter":true' | wc -l)" = 3 ] &&
    [ "$(jaco 1 node list 2>/dev/null | grep -c 'READY .* voter')" = 3 ]; do sleep 0.2; done
echo "\$ jaco cluster status"
jaco 1 cluster status | sed 's/^/  /'
echo "\$ jaco node label n2 zone=eu-west-1a"
jaco 1 node label n2 zone=eu-west-1a | sed 's/^/  /'
echo "\$ jaco raft list-peers"
jaco 1 raft list-peers | sed 's/^/  /'
# A replica of a jacod killed with SIGKILL outlives it (the next jacod on
# that host kills it): the demo's cleanup does it here.
ON_EXIT='for f in "$WORK"/j*/replicas/running; do [ -f "$f" ] && awk "{print \$1}" "$f" | while read -r p; do kill -9 -- "-$p"; done; done 2>/dev/null'

say "A deployment (jaco.yaml(5)): 3 replicas of a service, spread over the hosts"
cat >"$WORK/jaco.yaml" <<'EOF'
deployments:
  web:
    services:
      api:
        replicas: 3
        command: [sleep, "3600"]
        ports: [20080]
EOF
sed 's/^/  /' "$WORK/jaco.yaml"
until [ "$(jaco 1 -o json node list 2>/dev/null | grep -o '"runtime":"spread"' | wc -l)" = 3 ]; do sleep 0.2; done
echo "\$ jaco apply -f jaco.yaml"
jaco 1 apply -f "$WORK/jaco.yaml" | sed 's/^/  /'
echo "\$ jaco status -w      # follows the replicas until they run (its last table)"
jaco 1 status -w --timeout 30s | awk 'BEGIN { RS = "" } END { print }' | sed 's/^/  /'

jl=$(jaco 1 -o json cluster status | sed -n 's/.*"leader_name":"\([^"]*\)".*/\1/p')
say "kill -9 the leader ($jl)"
kill -9 "${PID[$((10 + ${jl#n}))]}"
wait "${PID[$((10 + ${jl#n}))]}" 2>/dev/null || true
unset "PID[$((10 + ${jl#n}))]"
s=$(( ${jl#n} % 3 + 1 ))
t0=$(date +%s%N)
until jaco "$s" node list 2>/dev/null | grep -q "^$jl .*UNREACHABLE"; do sleep 0.2; done
echo "  $(( ($(date +%s%N) - t0) / 1000000 )) ms later, on n$s:"
echo "\$ jaco cluster status"
jaco "$s" cluster status | sed 's/^/  /'
echo "\$ jaco status -w      # $jl's replica moves to a survivor after reschedule-after (3 s here)"
until ! jaco "$s" status | grep -q "^web/api/[0-9] *$jl "; do sleep 0.2; done
jaco "$s" status -w --timeout 30s | awk 'BEGIN { RS = "" } END { print }' | sed 's/^/  /'
echo "\$ jaco audit"
jaco "$s" audit | sed 's/^/  /'

say "An online backup of the cluster's state, and its check (jaco-backup(8))"
echo "\$ jaco backup --output $WORK/backup.tar.gz"
jaco "$s" backup --output "$WORK/backup.tar.gz" | sed 's/^/  /'
echo "\$ tar tzf $WORK/backup.tar.gz"
tar tzf "$WORK/backup.tar.gz" | sed 's/^/  /'
echo "\$ jaco backup verify $WORK/backup.tar.gz"
jaco "$s" backup verify "$WORK/backup.tar.gz" | head -n 1 | sed 's/^/  /'

say "Stopping the daemons (SIGTERM: each stops its replicas first)"
for i in 1 2 3; do
    [ "n$i" = "$jl" ] && continue
    kill -TERM "${PID[$((10 + i))]}"
    wait "${PID[$((10 + i))]}" && echo "  n$i stopped (exit 0)"
    unset "PID[$((10 + i))]"
done
say "Demo complete"
