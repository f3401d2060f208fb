#!/bin/bash
# demo.sh: builds everything, then runs a local 3-node cluster of the
# example key-value store on 127.0.0.1, writes keys, kills the leader with
# kill -9, shows the new leader and that every acknowledged key survived,
# and stops the cluster cleanly.
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
say "Demo complete"
