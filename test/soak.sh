#!/bin/bash
# soak.sh: `make soak`. A 3-node kvstore cluster under continuous writes
# over a fixed key space (so the state stays the same size) and a fault
# every SOAK_FAULT_EVERY seconds (node 3 killed with SIGKILL and restarted,
# the leader paused past an election timeout, a node stopped and
# restarted), for SOAK_SECONDS (default 600). Every 5 s it samples each
# long-lived node's RSS and open descriptors, and the data directories'
# size. It fails if, from the first third of the run (after a warm-up: a
# quarter of it, at most a minute) to the last, the RSS
# of node 1 or 2 grew more than 20% + 8 MiB, their descriptors more than
# 16, or the data directories more than 2x (log compaction must bound
# them); then checks every acknowledged write of the last round and prints
# a summary. Run from the build directory (or set top_builddir).
. "$(dirname "$0")/integration/lib.sh"
SECONDS_TOTAL=${SOAK_SECONDS:-600}
FAULT_EVERY=${SOAK_FAULT_EVERY:-20}
KEYS=${SOAK_KEYS:-20000}

alloc_nodes 3
start_cluster --snapshot-threshold 4096
for i in 1 2 3; do wait_client "$i"; done
wait_leader 1 2 3 >/dev/null
servers="${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}"

# The writers: rounds over the same keys, each round's acks kept apart.
(
    r=0
    while :; do
        r=$((r + 1))
        "$KVLOAD" --servers "$servers" --inflight 16 --count "$KEYS" \
            --prefix soak- --ack-file "$WORK/acked.$r" >"$WORK/load.$r" 2>&1 ||
            sleep 0.5 # a node is down: kvload gives up at once
        echo "$r" >"$WORK/rounds"
    done
) &
PID[writer]=$!

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
disk_kb() { du -sk "$WORK"/n1 "$WORK"/n2 "$WORK"/n3 2>/dev/null | awk '{s += $1} END {print s}'; }
: >"$WORK/samples"
faults=0
start=$SECONDS
next_fault=$((start + FAULT_EVERY))
log "soak: ${SECONDS_TOTAL} s, a fault every ${FAULT_EVERY} s, ${KEYS} keys rewritten"
while ((SECONDS - start < SECONDS_TOTAL)); do
    echo "$((SECONDS - start)) $(rss_kb "${PID[1]}") $(rss_kb "${PID[2]}") $(fds "${PID[1]}") $(fds "${PID[2]}") $(disk_kb)" >>"$WORK/samples"
    if ((SECONDS >= next_fault)); then
        next_fault=$((SECONDS + FAULT_EVERY))
        faults=$((faults + 1))
        case $((faults % 3)) in
            1)
                log "fault $faults: kill -9 node 3, restart"
                kill_node 3
                sleep 1
                start_node 3
                ;;
            2)
                l=$(wait_leader 1 2 3)
                log "fault $faults: SIGSTOP the leader (node $l) for 3 s"
                kill -STOP "${PID[$l]}"
                sleep 3
                kill -CONT "${PID[$l]}"
                ;;
            0)
                log "fault $faults: node 3 stopped (SIGTERM) for 2 s"
                stop_node 3
                sleep 2
                start_node 3
                ;;
        esac
    fi
    sleep 5
done
kill "${PID[writer]}" 2>/dev/null || true
wait "${PID[writer]}" 2>/dev/null || true
unset "PID[writer]"
pkill -f "kvload --servers $servers" 2>/dev/null || true
sleep 0.5

# First and last thirds of the samples after the warm-up (the first
# round fills the key space): a quarter of the run, at most a minute.
warmup=$((SECONDS_TOTAL / 4 < 60 ? SECONDS_TOTAL / 4 : 60))
awk -v w="$warmup" '$1 >= w' "$WORK/samples" >"$WORK/steady"
n=$(wc -l <"$WORK/steady")
third=$((n / 3))
[ "$third" -ge 2 ] || fail "too few samples ($n): run longer (SOAK_SECONDS)"
first=$(head -n "$third" "$WORK/steady")
last=$(tail -n "$third" "$WORK/steady")
med() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
col() { awk -v c="$1" '{print $c}'; }
problems=()
for c in 2 3; do
    a=$(col "$c" <<<"$first" | med)
    b=$(col "$c" <<<"$last" | med)
    node=$((c - 1))
    printf '  node %s RSS: %6d KiB -> %6d KiB\n' "$node" "$a" "$b"
    ((b <= a + a / 5 + 8192)) || problems+=("node $node RSS grew from $a to $b KiB")
done
for c in 4 5; do
    a=$(col "$c" <<<"$first" | med)
    b=$(col "$c" <<<"$last" | med)
    node=$((c - 3))
    printf '  node %s descriptors: %d -> %d\n' "$node" "$a" "$b"
    ((b <= a + 16)) || problems+=("node $node descriptors grew from $a to $b")
done
a=$(col 6 <<<"$first" | sort -n | tail -n 1)
b=$(col 6 <<<"$last" | sort -n | tail -n 1)
printf '  data directories: at most %d KiB -> at most %d KiB\n' "$a" "$b"
((b <= 2 * a)) || problems+=("the data directories grew from $a to $b KiB")

rounds=$(cat "$WORK/rounds" 2>/dev/null || echo 0)
last_acked=$WORK/acked.$rounds
leader=$(wait_leader 1 2 3)
commit=$(status_field "$leader" commit_index)
for i in 1 2 3; do
    wait_applied "$i" "$commit"
    if [ -s "$last_acked" ]; then
        "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$last_acked" >&2 ||
            problems+=("node $i lost acknowledged writes of round $rounds")
    fi
done
ok=$(cat "$WORK"/load.* 2>/dev/null | sed -n 's/^\([0-9]*\) ok.*/\1/p' | awk '{s += $1} END {print s + 0}')
printf '  %d writes acknowledged in %d rounds of %d keys, %d faults\n' "$ok" "$rounds" "$KEYS" "$faults"
if ((${#problems[@]} > 0)); then
    fail "soak: ${problems[*]}"
fi
log "soak: OK (samples in $WORK/samples while it runs; KEEP=1 keeps them)"
