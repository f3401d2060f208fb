#!/bin/bash
# run.sh: the benchmark behind `make bench`. Measures, on 127.0.0.1 with
# data on disk under a fresh /tmp directory:
#   (a) the floor: 4 KiB pwrite+fdatasync and a loopback TCP round trip;
#   (b) bare canonical/raft, 3 processes (bench_raw), inflight 1/16/256,
#       snapshots every 1024 entries (raft's default) and off, plus
#       16 calls x 64 entries; then the same load through the library's
#       public API (bench_lib: jr_apply, 100-byte commands, a counter FSM),
#       snapshots at the library's default and off;
#   (b'') the stall: the disk alone over BENCH_STALL_COUNT 4 KiB
#       pwrite+fdatasync (its worst case bounds any write's), then the
#       maximum write latency over BENCH_STALL_COUNT
#       (default 100,000) writes at 1 in flight, for libjacoraft with
#       snapshots at the library's default (several snapshots and segment
#       rolls happen) and bare raft at raft's default threshold (1024);
#       about 80 s on 2 cores (BENCH_STALL=0 skips it);
#   (c) the kvstore example (3 `kvstore serve`) driven by kvload at
#       inflight 1/16/256 on the leader, 256 spread over all three, and 1
#       with snapshots off;
#   (d) a 3-member etcd, if installed (BENCH_ETCD=1 installs Debian's
#       etcd-server; BENCH_ETCD=0 skips it), driven by bench/etcd_load;
#   (e) the RSS of kvstore nodes holding 1,000,000 100-byte keys (skipped
#       when BENCH_RSS=0), against their state's size (keys x (key +
#       value) bytes, computed);
#   (f) write availability on a 3-node kvstore cluster, 1 writer (kvload,
#       1 in flight) through a follower: the leader killed -9
#       BENCH_FAILOVER_REPEATS times (default 5; BENCH_FAILOVER=0 skips
#       it): from the kill to the first successful write sent after it;
#       then the leader stopped with SIGTERM (it hands leadership over
#       first) as many times (BENCH_GRACEFUL=0 skips it): the longest gap
#       between successful writes and the leadership_lost answers; the
#       election timeout is BENCH_ELECTION_MS (default 1000, the
#       library's); the node is restarted and caught up after each round;
#   (g) a wiped follower catching up BENCH_CATCHUP_MB MiB (default 1024)
#       of incompressible 32 KiB values through a snapshot install: the
#       time from its restart on an empty data directory (with the flags
#       it had, as t_wiped_follower.sh does) until it has applied the
#       leader's index, its peak RSS, and the two bandwidths that bound
#       it (bench_floor --bandwidth: 256 MiB written + fdatasync, one
#       loopback TCP stream); small writes after the load make the
#       leader's last snapshot hold all of it; BENCH_CATCHUP=0 skips it,
#       and it is skipped when the disk has less than 10 times the state
#       free (BENCH_CATCHUP_FLAGS: more `kvstore serve` flags for its
#       cluster, such as --verbose);
# then prints one table, and each goal of issue 9 ("Performance push")
# with its figure and PASS or MISS. Run from the build directory, or set
# BUILD_DIR.
# Entry counts can be scaled with BENCH_SCALE (a percentage, default 100).
# Every bench_raw, bench_lib and kvstore process is watched: one that exits
# with an error or a signal, needs SIGKILL to stop, or logs anything but
# debug/info lines is listed under "problems" at the end, and the logs of
# its run are kept in BENCH_LOGS (default: bench-logs in the build
# directory). Core dumps are enabled (ulimit -c) for the processes started.
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-$PWD}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
KVSTORE=$BUILD_DIR/kvstore
KVLOAD=$BUILD_DIR/kvload
RAW=$BUILD_DIR/bench/bench_raw
LIB=$BUILD_DIR/bench/bench_lib
FLOOR=$BUILD_DIR/bench/bench_floor
ETCD_LOAD=$BUILD_DIR/bench/etcd_load
SCALE=${BENCH_SCALE:-100}
BENCH_RSS=${BENCH_RSS:-1}
BENCH_ETCD=${BENCH_ETCD:-auto}
RSS_KEYS=${BENCH_RSS_KEYS:-1000000}
BENCH_STALL=${BENCH_STALL:-1}
BENCH_LOGS=${BENCH_LOGS:-$BUILD_DIR/bench-logs}

for prog in "$KVSTORE" "$KVLOAD" "$RAW" "$LIB" "$FLOOR" "$ETCD_LOAD"; do
    if [[ ! -x $prog ]]; then
        echo "bench: $prog is missing: run \`make bench\` in the build" \
            "directory or set BUILD_DIR" >&2
        exit 2
    fi
done

WORK=$(mktemp -d /tmp/jacoraft-bench.XXXXXX)
# The cluster secret every libjacoraft node of every run shares.
(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/secret")
RESULTS=$WORK/results
NOTES=$WORK/notes
STALL=$WORK/stall
: >"$RESULTS"
: >"$NOTES"
: >"$STALL"
PIDS=()
declare -A PID_WHAT # pid -> what it is, for the processes watched
rm -rf "$BENCH_LOGS"
mkdir -p "$BENCH_LOGS"
ulimit -c unlimited 2>/dev/null || true

# note WHAT: one problem seen, listed at the end.
note() {
    printf '%s\n' "$*" >>"$NOTES"
    echo "  PROBLEM: $*" >&2
}

# keep_logs NAME FILE...: copy a run's logs to BENCH_LOGS/NAME/.
keep_logs() {
    local name=$1 f
    shift
    mkdir -p "$BENCH_LOGS/$name"
    for f in "$@"; do
        [[ -e $f ]] && cp "$f" "$BENCH_LOGS/$name/"
    done
}

# scan_logs WHAT NAME FILE...: any line of the given logs but the library's
# debug/info lines and kvstore's own start/stop lines is a problem; the
# logs are then kept under BENCH_LOGS/NAME.
scan_logs() {
    local what=$1 name=$2 f bad found=0
    shift 2
    for f in "$@"; do
        [[ -s $f ]] || continue
        bad=$(grep -Ev '^[0-9:.]+ jacoraft\[[^]]*\] (debug|info): |^kvstore: node [0-9]+ serving clients on |^kvstore: stopping$' \
            "$f" || true)
        [[ -n $bad ]] || continue
        found=1
        note "$what: $name/$(basename "$f"): $(wc -l <<<"$bad") line(s):" \
            "$(head -n 3 <<<"$bad" | tr '\n' '|' | sed 's/|$//; s/|/ | /g')"
    done
    if ((found)); then
        keep_logs "$name" "$@"
    fi
}

# Stop the given processes: SIGTERM, up to 5 s of grace, then SIGKILL.
# For a watched process (in PID_WHAT), a hang at stop, an exit status other
# than 0 or a death by a signal is noted.
stop_pids() {
    local p i keep=() rc hung
    for p in "$@"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "$@"; do
        hung=0
        for ((i = 0; i < 50; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$p" 2>/dev/null; then
            hung=1
            kill -KILL "$p" 2>/dev/null || true
        fi
        rc=0
        wait "$p" 2>/dev/null || rc=$?
        if [[ -n ${PID_WHAT[$p]+x} ]]; then
            if ((hung)); then
                note "${PID_WHAT[$p]} (pid $p): still running 5 s after" \
                    "SIGTERM: hang at stop, killed with SIGKILL"
            elif ((rc > 128)); then
                note "${PID_WHAT[$p]} (pid $p): died of signal" \
                    "$((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null ||
                    echo '?'))$( ((rc - 128 == 15)) &&
                    echo ': SIGTERM not handled' || true)"
            elif ((rc != 0)); then
                note "${PID_WHAT[$p]} (pid $p): exited with status $rc"
            fi
            unset "PID_WHAT[$p]"
        fi
    done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        [[ " $* " == *" $p "* ]] || keep+=("$p")
    done
    PIDS=(${keep[@]+"${keep[@]}"})
}

cleanup() {
    trap - EXIT INT TERM
    if ((${#PIDS[@]} > 0)); then
        stop_pids "${PIDS[@]}"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "bench: $*" >&2
    exit 1
}

# Print the last lines of each log named, for a failure (and keep the logs
# in BENCH_LOGS/failure).
show_logs() {
    local f
    keep_logs failure "$@"
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "---- $(basename "$f") (last lines)" >&2
        tail -n 15 "$f" >&2
    done
}

scaled() {
    local n=$(($1 * SCALE / 100))
    echo $((n > 0 ? n : 1))
}

# Free TCP ports on 127.0.0.1, below the ephemeral range, never handed out
# twice by this script: sets PORT.
USED_PORTS=" "
port_in_use() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 }
        END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
pick_port() {
    local p
    for ((;;)); do
        p=$((15000 + RANDOM % 15000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        port_in_use "$p" && continue
        USED_PORTS+="$p "
        PORT=$p
        return
    done
}

# Value of a numeric (or quoted) field of a one-line JSON object.
jget() {
    local v
    v=$(sed -n "s/.*\"$2\":\"\{0,1\}\([-0-9.]*\).*/\1/p" <<<"$1")
    echo "${v:-NA}"
}

# record SYSTEM CONCURRENCY BASELINE_INFLIGHT JSON [NOSNAP_BASELINE]: the
# ratios are taken against "bare raft" at BASELINE_INFLIGHT, and also
# against "bare raft nosnap" at NOSNAP_BASELINE if given.
record() {
    local json=$4
    if [[ $(jget "$json" per_second) == NA ]]; then
        die "$1 at $2: no result"
    fi
    printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$1" "$2" "$3" \
        "$(jget "$json" per_second)" "$(jget "$json" p50_us)" \
        "$(jget "$json" p99_us)" "$(jget "$json" max_us)" "${5:-}" \
        >>"$RESULTS"
    printf '  %-22s %-6s %s\n' "$1" "$2" "$json"
}

# ---------------------------------------------------------------- (a)
echo "bench: data under $WORK"
echo "(a) floor"
FLOOR_JSON=$("$FLOOR" --dir "$WORK")
echo "  $FLOOR_JSON"

# ---------------------------------------------------------------- (b)
RUN=0
# three WHAT PROGRAM [ARGS...]: one 3-process run of bench_raw or bench_lib
# (each node also gets --id, --address, --dir and --cluster); sets JSON to
# the line the leader printed.
# THREE_TIMEOUT (s, default 100) bounds the wait for the result; after a
# run, DRIVER is the node that printed it and DRIVER_SNAPLOG the number of
# "snapshot at index" lines in its log (with bench_lib --verbose), and
# DRIVER_FILES the names of the files in its data directory at the end.
THREE_TIMEOUT=100
three() {
    local what=$1 prog=$2 dir i cluster="" json="" pids=() ports=()
    local deadline name
    shift 2
    RUN=$((RUN + 1))
    dir=$WORK/run$RUN
    mkdir -p "$dir"
    for i in 1 2 3; do
        pick_port
        ports[i]=$PORT
        cluster+="${cluster:+,}$i=127.0.0.1:$PORT"
    done
    local auth=()
    if [ "$(basename "$prog")" = bench_lib ]; then auth=(--secret-file "$WORK/secret"); fi
    for i in 1 2 3; do
        "$prog" --id "$i" --address "127.0.0.1:${ports[i]}" \
            --dir "$dir/n$i" --cluster "$cluster" "${auth[@]}" "$@" \
            >"$dir/out$i" 2>"$dir/err$i" &
        pids+=($!)
        PIDS+=($!)
        PID_WHAT[$!]="$what node $i (run $RUN: $(basename "$prog") $*)"
    done
    deadline=$((SECONDS + THREE_TIMEOUT))
    while [[ -z $json ]]; do
        for i in 1 2 3; do
            if [[ -s $dir/out$i ]]; then
                json=$(head -n 1 "$dir/out$i")
                DRIVER=$i
                break
            fi
        done
        [[ -n $json ]] && break
        for i in 0 1 2; do
            if ! kill -0 "${pids[i]}" 2>/dev/null; then
                show_logs "$dir"/err*
                die "$what node $((i + 1)) exited without a result"
            fi
        done
        if ((SECONDS > deadline)); then
            show_logs "$dir"/err*
            die "$what: no result after $THREE_TIMEOUT s"
        fi
        sleep 0.05
    done
    sleep 0.4 # the leader closes itself; the followers are stopped
    stop_pids "${pids[@]}"
    name="run$RUN-$(basename "$prog")-$(tr ' ' '_' <<<"$*" | tr -d -- '-')"
    scan_logs "$what (run $RUN: $(basename "$prog") $*)" "$name" \
        "$dir"/err*
    DRIVER_SNAPLOG=$(grep -c 'snapshot at index' "$dir/err$DRIVER" || true)
    # The longest event-loop turn of any node (bench_lib --verbose logs it
    # when it stops), "-" if none did.
    LOOP_MAX=$(sed -n 's/.*longest event-loop turn \([0-9.]*\) ms.*/\1/p' \
        "$dir"/err* | sort -n | tail -n 1)
    LOOP_MAX=${LOOP_MAX:--}
    DRIVER_FILES=$(find "$dir/n$DRIVER" -type f -printf '%f\n' | sort |
        tr '\n' ' ')
    rm -rf "$dir"
    JSON=$json
}

# raw SYSTEM-LABEL INFLIGHT BATCH COUNT THRESHOLD: bare canonical/raft.
raw() {
    local label=$1 w=$2 b=$3 n=$4 s=$5
    three "bare raft" "$RAW" --inflight "$w" --batch "$b" --count "$n" \
        --snapshot-threshold "$s" --timeout-ms 90000
    if ((b > 1)); then
        record "$label" "${w}x$b" "" "$JSON" # no baseline for batches
    else
        record "$label" "$w" "$w" "$JSON"
    fi
}

# lib SYSTEM-LABEL INFLIGHT COUNT [THRESHOLD]: the same load through
# libjacoraft's API; without THRESHOLD, snapshots at the library's default.
# With THRESHOLD 0 (snapshots off) the row is also compared with
# "bare raft nosnap".
lib() {
    local label=$1 w=$2 n=$3 s=${4:-}
    three libjacoraft "$LIB" --inflight "$w" --count "$n" \
        ${s:+--snapshot-threshold "$s"} --timeout-ms 90000
    record "$label" "$w" "$w" "$JSON" "$([[ $s == 0 ]] && echo "$w")"
}

echo "(b) bare canonical/raft, 3 processes"
raw "bare raft" 1 1 "$(scaled 5000)" 1024
raw "bare raft" 16 1 "$(scaled 40000)" 1024
raw "bare raft" 256 1 "$(scaled 150000)" 1024
raw "bare raft nosnap" 1 1 "$(scaled 5000)" 0
raw "bare raft nosnap" 16 1 "$(scaled 40000)" 0
raw "bare raft nosnap" 256 1 "$(scaled 150000)" 0
raw "bare raft" 16 64 "$(scaled 300000)" 1024

echo "(b') libjacoraft API (jr_apply), 3 processes"
lib libjacoraft 1 "$(scaled 5000)"
lib libjacoraft 16 "$(scaled 40000)"
lib libjacoraft 256 "$(scaled 150000)"
lib "libjacoraft nosnap" 1 "$(scaled 5000)" 0
lib "libjacoraft nosnap" 16 "$(scaled 40000)" 0
lib "libjacoraft nosnap" 256 "$(scaled 150000)" 0

# ---------------------------------------------------------------- (b'')
# stall_row LABEL THRESHOLD-NOTE: one line of the stall section, from JSON.
stall_row() {
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$1" \
        "$(jget "$JSON" entries)" "$(jget "$JSON" seconds)" \
        "$(jget "$JSON" per_second)" "$(jget "$JSON" p50_us)" \
        "$(jget "$JSON" p99_us)" "$(jget "$JSON" max_us)" \
        "$(jget "$JSON" snapshots)" "$2" "$3" "$DRIVER_FILES" "$4" >>"$STALL"
    printf '  %-22s %s\n' "$1" "$JSON"
}

STALL_N=${BENCH_STALL_COUNT:-$(scaled 100000)}
if [[ $BENCH_STALL != 0 ]]; then
    echo "(b'') stall: $STALL_N writes at 1 in flight, snapshots on"
    # The disk alone over as many 4 KiB pwrite+fdatasync: its own worst
    # case bounds what any replicated write can show.
    DISK_JSON=$("$FLOOR" --dir "$WORK" --syncs "$STALL_N" --round-trips 1000)
    echo "  disk alone             $DISK_JSON"
    THREE_TIMEOUT=310
    three libjacoraft "$LIB" --inflight 1 --count "$STALL_N" \
        --timeout-ms 300000 --verbose
    stall_row libjacoraft "library default (8192)" "$DRIVER_SNAPLOG" \
        "$LOOP_MAX"
    three "bare raft" "$RAW" --inflight 1 --batch 1 --count "$STALL_N" \
        --snapshot-threshold 1024 --timeout-ms 300000
    stall_row "bare raft" "raft default (1024)" "-" "-"
    THREE_TIMEOUT=100
fi

# ---------------------------------------------------------------- (c)
KV_PIDS=()
KV_CLIENT=()
KV_PEER=()
KV_CLUSTER=""
KV_ARGS=()
KV_DIR=""
# kv_start NAME [serve flags...]: a fresh 3-node kvstore cluster; sets
# KV_PIDS, KV_CLIENT[1..3], KV_DIR (and, for kv_node_start, KV_PEER,
# KV_CLUSTER and KV_ARGS).
kv_start() {
    local name=$1 i
    shift
    KV_DIR=$WORK/$name
    mkdir -p "$KV_DIR"
    KV_PIDS=()
    KV_CLUSTER=""
    KV_ARGS=("$@")
    for i in 1 2 3; do
        pick_port
        KV_PEER[i]=$PORT
        pick_port
        KV_CLIENT[i]=$PORT
        KV_CLUSTER+="${KV_CLUSTER:+,}$i=127.0.0.1:${KV_PEER[i]}"
    done
    for i in 1 2 3; do
        : >"$KV_DIR/log$i"
        kv_node_start "$i"
    done
}

# kv_node_start I: start node I of the kv_start cluster, again after a
# kill or a stop (with the same flags, as t_wiped_follower.sh restarts
# its wiped node); its log goes on in the same file, and it is watched.
kv_node_start() {
    local i=$1
    "$KVSTORE" serve --id "$i" --address "127.0.0.1:${KV_PEER[i]}" \
        --client "127.0.0.1:${KV_CLIENT[i]}" --data-dir "$KV_DIR/n$i" \
        --initial-cluster "$KV_CLUSTER" --secret-file "$WORK/secret" \
        ${KV_ARGS[@]+"${KV_ARGS[@]}"} >>"$KV_DIR/log$i" 2>&1 &
    KV_PIDS[i - 1]=$!
    PIDS+=($!)
    PID_WHAT[$!]="kvstore node $i ($(basename "$KV_DIR"): kvstore serve${KV_ARGS[*]+ ${KV_ARGS[*]}})"
}

# kv_stop: stop the cluster of kv_start, check its logs, remove its data.
kv_stop() {
    stop_pids "${KV_PIDS[@]}"
    scan_logs "kvstore ($(basename "$KV_DIR"))" "$(basename "$KV_DIR")" \
        "$KV_DIR"/log*
    rm -rf "$KV_DIR"
}

kv_status() {
    timeout 30 "$KVSTORE" --server "127.0.0.1:${KV_CLIENT[$1]}" status \
        --json 2>/dev/null || true
}

# kv_leader [try]: wait until the cluster has a healthy leader; sets
# KV_LEADER. With "try", returns non-zero after 30 s without one instead
# of ending the benchmark.
kv_leader() {
    local deadline=$((SECONDS + 30)) i st id
    for ((;;)); do
        for i in 1 2 3; do
            st=$(kv_status "$i")
            id=$(jget "$st" leader_id)
            if [[ $id =~ ^[1-3]$ && $st == *'"health":"ok"'* ]]; then
                KV_LEADER=$id
                return 0
            fi
        done
        if ((SECONDS > deadline)); then
            [[ ${1:-} == try ]] && return 1
            show_logs "$KV_DIR"/log*
            die "kvstore: no leader after 30 s"
        fi
        sleep 0.2
    done
}

# kvrun LABEL INFLIGHT BASELINE COUNT SERVERS [NOSNAP_BASELINE]
kvrun() {
    local json
    if ! json=$("$KVLOAD" --servers "$5" --inflight "$2" --count "$4" \
        --value-size 100 --prefix "b$2." --json); then
        show_logs "$KV_DIR"/log*
        die "kvload failed at inflight $2"
    fi
    record "$1" "$2" "$3" "$json" "${6:-}"
}

echo "(c) kvstore example, 3 processes, kvload"
kv_start kv
kv_leader
LEADER_ADDR=127.0.0.1:${KV_CLIENT[KV_LEADER]}
ALL_ADDRS=127.0.0.1:${KV_CLIENT[1]},127.0.0.1:${KV_CLIENT[2]},127.0.0.1:${KV_CLIENT[3]}
echo "  leader: node $KV_LEADER, clients on $LEADER_ADDR"
# Warm up connections and the leader's first batches.
"$KVLOAD" --servers "$ALL_ADDRS" --inflight 16 --count 300 --prefix w \
    --json >/dev/null
kvrun kvstore 1 1 "$(scaled 10000)" "$LEADER_ADDR"
kvrun kvstore 16 16 "$(scaled 40000)" "$LEADER_ADDR"
kvrun kvstore 256 256 "$(scaled 150000)" "$LEADER_ADDR"
kvrun "kvstore spread" 256 256 "$(scaled 150000)" "$ALL_ADDRS"
KV_SNAPSHOT_INDEX=$(jget "$(kv_status "$KV_LEADER")" snapshot_index)
echo "  leader snapshot_index after the runs: $KV_SNAPSHOT_INDEX"
kv_stop

# The same inflight-1 run with snapshots off, to see what they cost.
kv_start kvnosnap --snapshot-threshold 1000000000
kv_leader
LEADER_ADDR=127.0.0.1:${KV_CLIENT[KV_LEADER]}
"$KVLOAD" --servers "$LEADER_ADDR" --inflight 16 --count 300 --prefix w \
    --json >/dev/null
kvrun "kvstore nosnap" 1 1 "$(scaled 10000)" "$LEADER_ADDR" 1
kv_stop

# ---------------------------------------------------------------- (d)
ETCD_STATE="not available"
etcd_install() {
    if command -v etcd >/dev/null 2>&1; then
        return 0
    fi
    if [[ $BENCH_ETCD != 1 ]]; then
        return 1
    fi
    echo "  installing etcd-server with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server \
        >"$WORK/apt.log" 2>&1; then
        apt-get update -q >>"$WORK/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server \
            >>"$WORK/apt.log" 2>&1 || true
    fi
    command -v etcd >/dev/null 2>&1
}

# etcd_bench: returns non-zero (after saying why) if etcd cannot be run.
etcd_bench() {
    local dir=$WORK/etcd i cluster="" peer=() client=() pids=() st
    local leader="" deadline json n w
    mkdir -p "$dir"
    for i in 1 2 3; do
        pick_port
        peer[i]=$PORT
        pick_port
        client[i]=$PORT
        cluster+="${cluster:+,}e$i=http://127.0.0.1:${peer[i]}"
    done
    for i in 1 2 3; do
        etcd --name "e$i" --data-dir "$dir/e$i" \
            --listen-client-urls "http://127.0.0.1:${client[i]}" \
            --advertise-client-urls "http://127.0.0.1:${client[i]}" \
            --listen-peer-urls "http://127.0.0.1:${peer[i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${peer[i]}" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "bench-$$" \
            --logger zap --log-level warn >"$dir/log$i" 2>&1 &
        pids+=($!)
        PIDS+=($!)
    done
    deadline=$((SECONDS + 60))
    while [[ -z $leader ]]; do
        for i in 1 2 3; do
            st=$("$ETCD_LOAD" --endpoints "127.0.0.1:${client[i]}" \
                --status 2>/dev/null) || continue
            if [[ $(jget "$st" member_id) != NA &&
                $(jget "$st" member_id) == $(jget "$st" leader) ]]; then
                leader=$i
            fi
        done
        if ((SECONDS > deadline)); then
            show_logs "$dir"/log*
            echo "  etcd: no leader after 60 s"
            stop_pids "${pids[@]}"
            return 1
        fi
        [[ -z $leader ]] && sleep 0.2
    done
    echo "  etcd $(etcd --version | sed -n 's/^etcd Version: //p'), leader:" \
        "e$leader on 127.0.0.1:${client[leader]}"
    "$ETCD_LOAD" --endpoints "127.0.0.1:${client[leader]}" --inflight 16 \
        --count 300 --prefix w --json >/dev/null
    for w in 1 16 256; do
        case $w in
            1) n=$(scaled 3000) ;;
            16) n=$(scaled 20000) ;;
            *) n=$(scaled 60000) ;;
        esac
        if ! json=$("$ETCD_LOAD" --endpoints "127.0.0.1:${client[leader]}" \
            --inflight "$w" --count "$n" --value-size 100 --prefix "b$w." \
            --json); then
            show_logs "$dir"/log*
            echo "  etcd: load failed at inflight $w"
            stop_pids "${pids[@]}"
            return 1
        fi
        record etcd "$w" "$w" "$json"
    done
    stop_pids "${pids[@]}"
    rm -rf "$dir"
}

echo "(d) etcd"
if [[ $BENCH_ETCD == 0 ]]; then
    ETCD_STATE="skipped (BENCH_ETCD=0)"
    echo "  etcd: skipped (BENCH_ETCD=0)"
elif ! etcd_install; then
    echo "  etcd: not available (BENCH_ETCD=1 installs Debian's etcd-server)"
elif etcd_bench; then
    ETCD_STATE="ran ($(etcd --version | sed -n 's/^etcd Version: //p'))"
else
    ETCD_STATE="failed"
fi

# ---------------------------------------------------------------- (e)
RSS_LINE="RSS: skipped (BENCH_RSS=0)"
rss_kb() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}
# state_bytes N VALUE_BYTES: the payload of a store of kvload's keys
# <p>0..<p>N-1 (a one-letter prefix) and their values: keys x (key +
# value) bytes, computed (kvstore does not report its state's size).
state_bytes() {
    awk -v n="$1" -v v="$2" 'BEGIN {
        s = 0
        for (d = 1; 10 ^ (d - 1) <= n - 1 || d == 1; d++) {
            lo = d == 1 ? 0 : 10 ^ (d - 1); hi = 10 ^ d
            if (hi > n) hi = n
            if (hi > lo) s += (hi - lo) * (1 + d)
        }
        printf "%.0f", s + n * v }'
}
RSS_STATE=""
if [[ $BENCH_RSS != 0 ]]; then
    echo "(e) RSS with $RSS_KEYS keys of 100 bytes"
    t0=$SECONDS
    kv_start kvrss
    kv_leader
    LEADER_ADDR=127.0.0.1:${KV_CLIENT[KV_LEADER]}
    if ! json=$("$KVLOAD" --servers "$LEADER_ADDR" --inflight 256 \
        --count "$RSS_KEYS" --value-size 100 --prefix k --json); then
        show_logs "$KV_DIR"/log*
        die "kvload failed while loading $RSS_KEYS keys"
    fi
    echo "  load: $json"
    FOLLOWER=$((KV_LEADER % 3 + 1))
    # Let the follower apply everything before reading its RSS.
    deadline=$((SECONDS + 60))
    while [[ $(jget "$(kv_status "$FOLLOWER")" keys) != "$RSS_KEYS" ]] &&
        ((SECONDS < deadline)); do
        sleep 0.2
    done
    RSS_L=$(rss_kb "${KV_PIDS[KV_LEADER - 1]}")
    RSS_F=$(rss_kb "${KV_PIDS[FOLLOWER - 1]}")
    RSS_STATE=$(state_bytes "$RSS_KEYS" 100)
    RSS_LINE="RSS with $RSS_KEYS keys of 100 bytes: leader\
 $((RSS_L / 1024)) MiB, follower $((RSS_F / 1024)) MiB\
 ($((RSS_F * 1024 / RSS_KEYS)) bytes/key on the follower;\
 state $(awk -v s="$RSS_STATE" 'BEGIN { printf "%.1f", s / 1048576 }') MiB\
 = keys x (key + value) bytes, computed;\
 load took $((SECONDS - t0)) s)"
    echo "  $RSS_LINE"
    kv_stop
fi

# ---------------------------------------------------------------- (f)
# forget_pid PID: a process this script has reaped itself leaves the lists
# that stop_pids and cleanup go through.
forget_pid() {
    local p keep=()
    unset "PID_WHAT[$1]"
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    PIDS=(${keep[@]+"${keep[@]}"})
}

# kv_reap I kill|term: wait for node I, which was sent SIGKILL or SIGTERM,
# to end. A SIGKILL death is expected; after SIGTERM anything but exit 0
# within 10 s (a hang is ended with SIGKILL) is a problem.
kv_reap() {
    local i=$1 p=${KV_PIDS[$1 - 1]} n rc=0 what
    what=${PID_WHAT[$p]:-kvstore node $i}
    for ((n = 0; n < 100; n++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
        note "$what (pid $p): still running 10 s after SIGTERM: hang at" \
            "stop, killed with SIGKILL"
        kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || rc=$?
    if [[ $2 == kill && $rc != 137 ]]; then
        note "$what (pid $p): sent SIGKILL, but ended with status $rc"
    elif [[ $2 == term && $rc != 0 ]]; then
        note "$what (pid $p): exited with status $rc after SIGTERM"
    fi
    forget_pid "$p"
}

# kv_wait_applied I INDEX SECONDS: wait until node I has applied INDEX;
# returns non-zero if it has not within SECONDS.
kv_wait_applied() {
    local deadline=$((SECONDS + $3)) a
    for ((;;)); do
        a=$(jget "$(kv_status "$1")" applied_index)
        [[ $a =~ ^[0-9]+$ ]] && ((a >= $2)) && return 0
        ((SECONDS > deadline)) && return 1
        sleep 0.1
    done
}

# kv_caught_up [try]: every node has applied what the leader has
# committed; with "try", returns non-zero (after saying why) instead of
# ending the benchmark.
kv_caught_up() {
    local commit i
    kv_leader "${1:-}" || {
        echo "  kvstore: no leader after 30 s"
        return 1
    }
    commit=$(jget "$(kv_status "$KV_LEADER")" commit_index)
    for i in 1 2 3; do
        if ! kv_wait_applied "$i" "$commit" 60; then
            if [[ ${1:-} == try ]]; then
                echo "  kvstore node $i did not apply index $commit in 60 s"
                return 1
            fi
            show_logs "$KV_DIR"/log*
            die "kvstore node $i did not apply index $commit in 60 s"
        fi
    done
}

BENCH_FAILOVER=${BENCH_FAILOVER:-1}
BENCH_GRACEFUL=${BENCH_GRACEFUL:-1}
FO_REPEATS=${BENCH_FAILOVER_REPEATS:-5}
FO_ELECTION_MS=${BENCH_ELECTION_MS:-1000}
FAILOVER=$WORK/failover
: >"$FAILOVER"
# fo_round KIND ROUND: one write-availability round: 1 writer (1 in
# flight) through a follower while kvload, 1 s into the load, sends the
# leader SIGKILL (KIND kill) or SIGTERM (KIND term: it hands leadership
# over before it goes); then the node is restarted and caught up. Adds a
# line to FAILOVER: kind|round|first ok after the signal (ms)|longest gap
# between two successful writes (ms)|the gap spanning the signal|
# leadership_lost|no_leader|other errors|ok.
fo_round() {
    local kind=$1 r=$2 l f sig secs json rc=0 out
    kv_caught_up try || return 1
    l=$KV_LEADER
    f=$((l % 3 + 1))
    if [[ $kind == kill ]]; then
        sig=9
        # 6 election timeouts after the signal to see a write again.
        secs=$((1 + (6 * FO_ELECTION_MS + 999) / 1000))
    else
        sig=15
        secs=3
    fi
    out=$KV_DIR/kvload-$kind$r.err
    json=$("$KVLOAD" --servers "127.0.0.1:${KV_CLIENT[f]}" --inflight 1 \
        --seconds "$secs" --value-size 100 --prefix "$kind$r." \
        --kill-pid "${KV_PIDS[l - 1]}" --kill-signal "$sig" \
        --kill-after-ms 1000 --json 2>"$out") || rc=$?
    kv_reap "$l" "$kind"
    # 3: some writes failed, which is expected around the signal.
    if [[ $rc != 0 && $rc != 3 ]] ||
        [[ $(jget "$json" kill_after_ms) == NA ]]; then
        note "kvload through node $f while node $l got signal $sig" \
            "(round $r) ended with status $rc: $(tail -n 2 "$out" |
            tr '\n' ' ')"
        json=""
    fi
    printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$kind" "$r" \
        "$(jget "$json" first_ok_after_kill_ms)" \
        "$(jget "$json" longest_gap_ms)" "$(jget "$json" kill_gap_ms)" \
        "$(jget "$json" errors_leadership_lost)" \
        "$(jget "$json" errors_no_leader)" "$(jget "$json" errors_other)" \
        "$(jget "$json" ok)" >>"$FAILOVER"
    printf '  %-5s %s: leader %s, writes through %s: %s\n' "$kind" "$r" \
        "$l" "$f" "${json:-no result}"
    kv_node_start "$l"
}

if [[ $BENCH_FAILOVER != 0 || $BENCH_GRACEFUL != 0 ]]; then
    echo "(f) write availability: the kvstore leader killed -9 / stopped," \
        "1 writer through a follower, $FO_REPEATS rounds each," \
        "election timeout $FO_ELECTION_MS ms"
    kv_start kvfail --election-timeout "$FO_ELECTION_MS"
    kv_leader
    "$KVLOAD" --servers "127.0.0.1:${KV_CLIENT[1]},127.0.0.1:${KV_CLIENT[2]},127.0.0.1:${KV_CLIENT[3]}" \
        --inflight 16 --count 300 --prefix w --json >/dev/null
    for kind in kill term; do
        [[ $kind == kill && $BENCH_FAILOVER == 0 ]] && continue
        [[ $kind == term && $BENCH_GRACEFUL == 0 ]] && continue
        for ((round = 1; round <= FO_REPEATS; round++)); do
            if ! fo_round "$kind" "$round"; then
                note "write availability: the cluster did not recover" \
                    "before $kind round $round; its logs are kept"
                keep_logs kvfail "$KV_DIR"/log*
                break 2
            fi
        done
    done
    # The last node restarted must be up (its SIGTERM handler installed)
    # before the cluster is stopped.
    kv_caught_up try || note "write availability: the cluster did not" \
        "recover after the last round"
    kv_stop
fi

# ---------------------------------------------------------------- (g)
BENCH_CATCHUP=${BENCH_CATCHUP:-1}
CATCHUP_MB=${BENCH_CATCHUP_MB:-1024}
CATCHUP_VALUE=32768
CATCHUP_LINE=""
BW_JSON=""
CU_MIBS=""

# cu_load PREFIX START COUNT VALUE_BYTES CHUNK: put keys PREFIX<START> to
# PREFIX<START+COUNT-1> (random values with --random-values: the same
# value for the same key every time) through the leader, CHUNK keys per
# kvload run; a run that got errors (a leader change under the load) is
# run again, up to 5 times: a put of the same key and value is harmless
# if it had been applied. Adds the re-runs to CU_RETRIES; returns
# non-zero (after saying why) if a chunk never went through.
cu_load() {
    local prefix=$1 from=$2 end=$(($2 + $3)) size=$4 chunk=$5 n try rc
    local out=$KV_DIR/kvload-$1.err
    while ((from < end)); do
        n=$((end - from < chunk ? end - from : chunk))
        for ((try = 0; ; try++)); do
            if ((try == 6)); then
                echo "  catch-up: keys $prefix$from.. still failed after 5" \
                    "re-runs: $(tail -n 1 "$out")"
                return 1
            fi
            kv_leader try || continue
            rc=0
            "$KVLOAD" --servers "127.0.0.1:${KV_CLIENT[KV_LEADER]}" \
                --inflight 32 --count "$n" --start "$from" \
                --value-size "$size" --random-values --prefix "$prefix" \
                --json >"$out.json" 2>"$out" || rc=$?
            ((rc == 0)) && break
            CU_RETRIES=$((CU_RETRIES + 1))
            sleep 0.5
        done
        from=$((from + n))
    done
}

# catchup_bench: the (g) measurement on a fresh cluster; sets
# CATCHUP_LINE and CU_*; returns non-zero (after saying why) if it could
# not be made.
catchup_bench() {
    local t0 load_end fill snap deadline target log_from ts te vpid a st
    CU_N=$((CATCHUP_MB * 1048576 / CATCHUP_VALUE))
    # Snapshots at the library's default (8192 entries, 2048 kept), or
    # four in the load for a smaller one.
    CU_THRESHOLD=$((CU_N / 4 < 8192 ? CU_N / 4 : 8192))
    CU_THRESHOLD=$((CU_THRESHOLD < 16 ? 16 : CU_THRESHOLD))
    CU_TRAILING=$((CU_THRESHOLD / 4))
    CU_STATE=$(state_bytes "$CU_N" "$CATCHUP_VALUE")
    CU_RETRIES=0
    t0=$SECONDS
    kv_start kvcatch --snapshot-threshold "$CU_THRESHOLD" \
        --snapshot-trailing "$CU_TRAILING" ${BENCH_CATCHUP_FLAGS:-}
    cu_load c 0 "$CU_N" "$CATCHUP_VALUE" 1024 || return 1
    echo "  load: $CU_N values of $CATCHUP_VALUE bytes in $((SECONDS - t0))" \
        "s ($CU_RETRIES chunk(s) of 1024 re-sent after errors)"
    kv_caught_up try || return 1
    # Small writes (1-byte values of keys z0, z1...) until the leader has
    # a snapshot of the whole load: the wiped node then gets nearly all of
    # the state through the install, not from the log.
    load_end=$(jget "$(kv_status "$KV_LEADER")" applied_index)
    CU_FILL=0
    fill=$((CU_THRESHOLD / 8 < 1024 ? CU_THRESHOLD / 8 : 1024))
    fill=$((fill < 8 ? 8 : fill))
    deadline=$((SECONDS + 300))
    for ((;;)); do
        kv_leader try || return 1
        st=$(kv_status "$KV_LEADER")
        snap=$(jget "$st" snapshot_index)
        a=$(jget "$st" applied_index)
        if ! [[ $snap =~ ^[0-9]+$ && $a =~ ^[0-9]+$ ]]; then
            sleep 0.3
            continue
        fi
        ((snap >= load_end)) && break
        if ((SECONDS > deadline)); then
            echo "  catch-up: no snapshot of the state in 300 s"
            return 1
        fi
        # Past the threshold, a snapshot is on its way: wait for it.
        if ((a - snap < CU_THRESHOLD)); then
            cu_load z "$CU_FILL" "$fill" 1 "$fill" || return 1
            CU_FILL=$((CU_FILL + fill))
        fi
        sleep 0.3
    done
    kv_caught_up try || return 1
    CU_STATE=$((CU_STATE + $(state_bytes "$CU_FILL" 1)))
    CU_LEADER=$KV_LEADER
    CU_RSS_L=$(rss_kb "${KV_PIDS[CU_LEADER - 1]}")
    V=$((CU_LEADER % 3 + 1))
    kill -TERM "${KV_PIDS[V - 1]}"
    kv_reap "$V" term
    rm -rf "$KV_DIR/n$V"
    target=$(jget "$(kv_status "$CU_LEADER")" applied_index)
    echo "  leader node $CU_LEADER at index $target (snapshot at $snap);" \
        "node $V stopped and wiped"
    log_from=$(($(wc -l <"$KV_DIR/log$V") + 1))
    ts=$EPOCHREALTIME
    kv_node_start "$V"
    vpid=${KV_PIDS[V - 1]}
    deadline=$((SECONDS + 600))
    for ((;;)); do
        a=$(jget "$(kv_status "$V")" applied_index)
        [[ $a =~ ^[0-9]+$ ]] && ((a >= target)) && break
        if ! kill -0 "$vpid" 2>/dev/null; then
            echo "  catch-up: node $V ended before it caught up (at $a)"
            return 1
        fi
        if ((SECONDS > deadline)); then
            echo "  catch-up: node $V not at index $target after 600 s" \
                "(at $a)"
            return 1
        fi
        sleep 0.05
    done
    te=$EPOCHREALTIME
    CU_HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' \
        "/proc/$vpid/status")
    st=$(kv_status "$V")
    if [[ $(jget "$st" snapshot_index) == 0 ]] ||
        ! tail -n "+$log_from" "$KV_DIR/log$V" | grep -q 'restored a'; then
        note "catch-up: node $V caught up without a snapshot install"
    fi
    if [[ $(jget "$st" keys) != "$((CU_N + CU_FILL))" ]]; then
        note "catch-up: node $V has $(jget "$st" keys) keys, not" \
            "$((CU_N + CU_FILL))"
    fi
    CU_SECS=$(awk -v a="$ts" -v b="$te" 'BEGIN { printf "%.2f", b - a }')
    CU_MIBS=$(awk -v s="$CU_STATE" -v t="$CU_SECS" \
        'BEGIN { printf "%.1f", s / 1048576 / t }')
    # Where the time went, from the node's log lines (local time of day).
    CU_STEPS=$(tail -n "+$log_from" "$KV_DIR/log$V" | awk \
        -v t0="$(date -d "@$ts" +%H:%M:%S.%N)" -v total="$CU_SECS" '
        function sec(t, a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        BEGIN { z = sec(t0) }
        / info: started: / && !st { st = 1
            printf "started +%.2f s, ", sec($1) - z }
        / info: leader is / && !ld { ld = 1
            printf "leader heard +%.2f s, ", sec($1) - z }
        / info: restored a / && !rs { rs = 1; b = $0
            sub(/.*restored a /, "", b); sub(/-byte.*/, "", b)
            printf "a %.0f MiB snapshot restored +%.2f s, ", b / 1048576,
                sec($1) - z }
        END { printf "caught up +%s s", total }')
    echo "  $CU_STEPS"
    CATCHUP_LINE="catch-up: $CU_N values of $CATCHUP_VALUE bytes (random,\
 incompressible) and $CU_FILL of 1 byte, state $((CU_STATE / 1048576)) MiB,\
 snapshots every $CU_THRESHOLD entries: node $V wiped and back at index\
 $target in $CU_SECS s = $CU_MIBS MiB/s ($CU_STEPS); its peak RSS (VmHWM)\
 $((CU_HWM / 1024)) MiB; the leader's RSS $((CU_RSS_L / 1024)) MiB"
    echo "  $CATCHUP_LINE"
}

if [[ $BENCH_CATCHUP != 0 ]]; then
    echo "(g) a wiped follower catching up $CATCHUP_MB MiB through a" \
        "snapshot install"
    # Three nodes' logs and snapshots of the state, and the wiped one's.
    need_mb=$((CATCHUP_MB * 10 + 1024))
    avail_mb=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
    if ((avail_mb < need_mb)); then
        CATCHUP_LINE="catch-up: skipped: $avail_mb MiB free under $WORK,\
 $need_mb MiB wanted"
        echo "  $CATCHUP_LINE"
    else
        BW_JSON=$("$FLOOR" --dir "$WORK" --bandwidth 256)
        echo "  bandwidth: $BW_JSON"
        if ! catchup_bench; then
            CU_MIBS=""
            CATCHUP_LINE="catch-up: failed (see above)"
            note "catch-up: failed; the cluster's logs are kept"
            keep_logs kvcatch "$KV_DIR"/log*
        fi
        kv_stop
    fi
fi

# ---------------------------------------------------------------- table
echo
echo "Writes of 100-byte values, 3 nodes on 127.0.0.1, data on disk" \
    "($(nproc) cores; one run each, noisy)."
echo "x raw: ratio to bare canonical/raft (snapshots every 1024) at the" \
    "same concurrency; for p50/p99, >1 means slower. libjacoraft: the" \
    "same load through jr_apply (library default: snapshots every 8192)."
awk -F'|' '
    { sys[NR] = $1; conc[NR] = $2; base[NR] = $3; ps[NR] = $4;
      p50[NR] = $5; p99[NR] = $6; mx[NR] = $7
      ns[NR] = $8
      if ($1 == "bare raft" && $3 != "") {
          bps[$3] = $4; b50[$3] = $5; b99[$3] = $6 }
      if ($1 == "bare raft nosnap" && $3 != "") {
          nps[$3] = $4; n50[$3] = $5; n99[$3] = $6 } }
    function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
    END {
        hdr = "%-18s %6s %9s %8s %8s %8s | %7s %7s %7s\n"
        printf hdr, "system", "conc", "writes/s", "p50 us", "p99 us",
            "max us", "w/s x", "p50 x", "p99 x"
        printf "%s\n", "------------------------------------------------" \
            "-----------------------------------------"
        for (i = 1; i <= NR; i++) {
            b = base[i]
            if (b != "" && (b in bps)) {
                r1 = ratio(ps[i], bps[b]); r2 = ratio(p50[i], b50[b])
                r3 = ratio(p99[i], b99[b])
            } else { r1 = r2 = r3 = "-" }
            printf hdr, sys[i], conc[i], ps[i], p50[i], p99[i], mx[i],
                r1, r2, r3
        }
        first = 1
        for (i = 1; i <= NR; i++) {
            b = ns[i]
            if (b == "" || !(b in nps)) { continue }
            if (first) {
                printf "\nx nosnap: snapshots off on both sides, ratio to" \
                    " bare raft nosnap at the same concurrency\n"
                printf "%-18s %6s | %7s %7s %7s\n", "system", "conc",
                    "w/s x", "p50 x", "p99 x"
                first = 0
            }
            printf "%-18s %6s | %7s %7s %7s\n", sys[i], conc[i],
                ratio(ps[i], nps[b]), ratio(p50[i], n50[b]),
                ratio(p99[i], n99[b])
        }
    }' "$RESULTS"
F50=$(jget "$FLOOR_JSON" fdatasync_p50_us)
FOPS=$(jget "$FLOOR_JSON" fdatasync_per_second)
R50=$(jget "$FLOOR_JSON" rtt_p50_us)
echo "floor: 4 KiB pwrite+fdatasync p50 $F50 us ($FOPS/s serial)," \
    "loopback TCP RTT p50 $R50 us, sum $(awk -v a="$F50" -v b="$R50" \
    'BEGIN { printf "%.1f", a + b }') us"
FLOOR_SUM=$(awk -v a="$F50" -v b="$R50" 'BEGIN { printf "%.1f", a + b }')
if [[ -s $STALL ]]; then
    echo
    echo "stall: max latency over $STALL_N writes at 1 in flight" \
        "(snapshots on; the snapshots column counts those the leader's FSM" \
        "took, and for libjacoraft the \"snapshot at index\" lines of its" \
        "debug log)"
    awk -F'|' '
        { sys[NR] = $1; n[NR] = $2; secs[NR] = $3; ps[NR] = $4; p50[NR] = $5
          p99[NR] = $6; mx[NR] = $7; snaps[NR] = $8; thr[NR] = $9
          slog[NR] = $10; files[NR] = $11; loop[NR] = $12
          if ($1 == "bare raft") { bmax = $7; b99 = $6 } }
        function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
        END {
            hdr = "%-12s %7s %7s %8s %7s %7s %8s %-22s %6s %5s | %6s %6s\n"
            printf hdr, "system", "writes", "seconds", "writes/s", "p50 us",
                "p99 us", "max us", "snapshot threshold", "snaps", "(log)",
                "max x", "p99 x"
            line = sprintf(hdr, "", "", "", "", "", "", "", "", "", "", "",
                "")
            sub(/\n$/, "", line)
            gsub(/./, "-", line)
            print line
            for (i = 1; i <= NR; i++) {
                printf hdr, sys[i], n[i], secs[i], ps[i], p50[i], p99[i],
                    mx[i], thr[i], snaps[i], slog[i], ratio(mx[i], bmax),
                    ratio(p99[i], b99)
            }
            printf "(x: ratio to bare raft in this section)\n"
            for (i = 1; i <= NR; i++) {
                if (loop[i] != "-" && loop[i] != "") {
                    printf "%s: longest event-loop turn on any node %s ms" \
                        " (whole run, start-up included)\n", sys[i], loop[i]
                }
            }
            printf "files in the leader'"'"'s data directory at the end:\n"
            for (i = 1; i <= NR; i++) {
                printf "  %s: %s\n", sys[i], files[i]
            }
        }' "$STALL"
    echo "the disk alone, $(jget "$DISK_JSON" syncs) x 4 KiB" \
        "pwrite+fdatasync: p99 $(jget "$DISK_JSON" fdatasync_p99_us) us," \
        "max $(jget "$DISK_JSON" fdatasync_max_us) us (a write at 1 in" \
        "flight waits for at least two of these)"
fi
echo
awk -F'|' -v floor="$FLOOR_SUM" -v f50="$F50" -v r50="$R50" '
    $1 == "libjacoraft" && $2 == "1" { p99 = $6; p50 = $5 }
    END {
        if (p99 == "" || floor <= 0) { exit }
        printf "libjacoraft p99 at 1 writer / floor: %.2f (p99 %s us;" \
            " floor = fdatasync p50 %s us + loopback RTT p50 %s us = %s us;" \
            " p50 / floor: %.2f)\n", p99 / floor, p99, f50, r50, floor,
            p50 / floor
    }' "$RESULTS"
if [[ -s $STALL ]]; then
    awk -F'|' -v floor="$FLOOR_SUM" '
        $1 == "libjacoraft" && floor > 0 {
            printf "  over the stall run'"'"'s %s writes: p99 %s us, %.2f x" \
                " the floor; max %s us, %.1f x the floor\n", $2, $6,
                $6 / floor, $7, $7 / floor }' "$STALL"
fi
echo "etcd: $ETCD_STATE"
echo "$RSS_LINE"
if [[ -s $FAILOVER ]]; then
    echo
    echo "write availability, 1 writer (1 in flight) through a follower," \
        "the leader signalled 1 s into the load (election timeout" \
        "$FO_ELECTION_MS ms):"
    awk -F'|' '
        BEGIN { hdr = "%-8s %5s %14s %14s %14s %8s %9s %6s %6s\n"
            printf hdr, "signal", "round", "first ok ms", "longest gap ms",
                "gap at sig ms", "lost", "no_leader", "other", "ok" }
        { printf hdr, ($1 == "kill" ? "SIGKILL" : "SIGTERM"), $2, $3, $4,
            $5, $6, $7, $8, $9 }' "$FAILOVER"
    echo "(first ok: from the signal to the first successful write sent" \
        "after it; longest gap: between two successful writes, whole run;" \
        "lost: leadership_lost answers)"
fi
if [[ -n $CATCHUP_LINE ]]; then
    echo "$CATCHUP_LINE"
fi
if [[ -n $BW_JSON ]]; then
    echo "bandwidth: sequential write of $(jget "$BW_JSON" seq_write_mib)" \
        "MiB + fdatasync $(jget "$BW_JSON" seq_write_mib_per_s) MiB/s," \
        "one loopback TCP stream $(jget "$BW_JSON" loopback_mib_per_s) MiB/s"
fi

# ---------------------------------------------------------------- goals
# The goals of issue 9 ("Performance push"), each with its figure of this
# run and PASS or MISS (n/a: not measured in this run).
echo
echo "issue 9 goals (this run):"
# stats KIND FIELD: "median max n" of a FAILOVER column over KIND's rounds
# (NA counted in n only: a round without a result).
stats() {
    awk -F'|' -v k="$1" -v f="$2" '
        $1 == k { n++; if ($f != "NA" && $f >= 0) v[++m] = $f + 0 }
        END {
            if (m == 0) { printf "NA NA %d\n", n; exit }
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
                if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
            printf "%s %s %d %d\n", med, v[m], n, m }' "$FAILOVER"
}
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "PASS" : "MISS") }'; }
# 1. kvstore at 256 in flight >= 5x etcd's puts/s, with a lower p99.
read -r KV_PS KV_P99 <<<"$(awk -F'|' '$1 == "kvstore" && $2 == "256" {
    print $4, $6 }' "$RESULTS")"
read -r ET_PS ET_P99 <<<"$(awk -F'|' '$1 == "etcd" && $2 == "256" {
    print $4, $6 }' "$RESULTS")"
if [[ -n ${ET_PS:-} && -n ${KV_PS:-} ]]; then
    awk -v a="$KV_PS" -v b="$ET_PS" -v p="$KV_P99" -v q="$ET_P99" 'BEGIN {
        r = a / b
        printf "  kvstore at 256 in flight >= 5x etcd puts/s, lower p99:" \
            " %s/s vs %s/s = %.2fx, p99 %s us vs %s us: %s\n", a, b, r, p, q,
            (r >= 5 && p + 0 < q + 0) ? "PASS" : "MISS" }'
else
    echo "  kvstore at 256 in flight >= 5x etcd puts/s, lower p99: n/a" \
        "(etcd: $ETCD_STATE)"
fi
# 2. p50 at 1 writer <= 1.5x the floor.
awk -F'|' -v floor="$FLOOR_SUM" '
    ($1 == "libjacoraft" || $1 == "kvstore") && $2 == "1" { p[$1] = $5 }
    END {
        for (s in p) {
            r = p[s] / floor
            name = "libjacoraft (jr_apply)"
            if (s == "kvstore") { name = "kvstore (client protocol)" }
            printf "  p50 at 1 writer <= 1.5x the floor (%s us), %s: p50" \
                " %s us = %.2fx: %s\n", floor, name, p[s], r,
                r <= 1.5 ? "PASS" : "MISS"
        } }' "$RESULTS" | sort
# 3. leader failover (kill -9 to the first successful write) <= 2
# election timeouts; judged on the worst round.
if grep -q '^kill|' "$FAILOVER"; then
    read -r MED MAX N M <<<"$(stats kill 3)"
    if [[ $MED == NA ]]; then
        echo "  leader failover <= 2 election timeouts: no round had a" \
            "successful write after the kill ($N rounds): MISS"
    else
        awk -v med="$MED" -v max="$MAX" -v n="$N" -v m="$M" \
            -v e="$FO_ELECTION_MS" 'BEGIN {
            printf "  leader failover (kill -9 to first successful write)" \
                " <= 2 election timeouts (%d ms): median %.0f ms (%.2f)," \
                " max %.0f ms (%.2f) over %d rounds%s: %s\n", 2 * e, med,
                med / e, max, max / e, n,
                m < n ? sprintf(", %d without a result", n - m) : "",
                (m == n && max <= 2 * e) ? "PASS" : "MISS" }'
    fi
else
    echo "  leader failover <= 2 election timeouts: n/a (BENCH_FAILOVER=0)"
fi
# 4. graceful leader stop (SIGTERM: leadership transfer) <= 50 ms of
# write unavailability; judged on the worst round.
if grep -q '^term|' "$FAILOVER"; then
    read -r MED MAX N M <<<"$(stats term 4)"
    read -r LMED LMAX _ <<<"$(stats term 6)"
    read -r NMED NMAX _ <<<"$(stats term 7)"
    awk -v med="$MED" -v max="$MAX" -v n="$N" -v m="$M" -v lmed="$LMED" \
        -v lmax="$LMAX" -v nmed="$NMED" -v nmax="$NMAX" 'BEGIN {
        printf "  graceful leader stop <= 50 ms of write unavailability:" \
            " longest gap median %s ms, max %s ms over %d rounds%s;" \
            " leadership_lost per stop median %s, max %s (no_leader median" \
            " %s, max %s): %s\n", med, max, n,
            m < n ? sprintf(", %d without a result", n - m) : "", lmed,
            lmax, nmed, nmax,
            (med != "NA" && m == n && max <= 50) ? "PASS" : "MISS" }'
else
    echo "  graceful leader stop <= 50 ms: n/a (BENCH_GRACEFUL=0)"
fi
# 5. a wiped follower catches up a 1 GiB state through a snapshot install
# at >= 50% of the slower of disk write and loopback bandwidth.
if [[ -n ${CU_MIBS:-} ]]; then
    awk -v r="$CU_MIBS" -v d="$(jget "$BW_JSON" seq_write_mib_per_s)" \
        -v l="$(jget "$BW_JSON" loopback_mib_per_s)" \
        -v mb="$((CU_STATE / 1048576))" -v hwm="$((CU_HWM / 1024))" 'BEGIN {
        slow = d < l ? d : l
        printf "  wiped follower catch-up (%d MiB state) >= 50%% of" \
            " min(disk write %s, loopback %s MiB/s): %s MiB/s = %.0f%%" \
            " (goal %.1f MiB/s; its peak RSS %d MiB): %s\n", mb, d, l, r,
            100 * r / slow, slow / 2, hwm, (r >= slow / 2) ? "PASS" : "MISS" }'
else
    echo "  wiped follower catch-up >= 50% of min(disk, loopback): n/a" \
        "(${CATCHUP_LINE:-BENCH_CATCHUP=0})"
fi
# 6. a node's RSS <= 1.3x its state + 16 MiB (the worse of leader and
# follower of (e)).
if [[ -n $RSS_STATE ]]; then
    awk -v s="$RSS_STATE" -v l="$RSS_L" -v f="$RSS_F" -v k="$RSS_KEYS" 'BEGIN {
        lim = 1.3 * s / 1048576 + 16; w = (l > f ? l : f) / 1024
        printf "  RSS <= 1.3x state + 16 MiB, %d keys of 100 bytes: state" \
            " %.1f MiB (keys x (key + value), computed), limit %.1f MiB;" \
            " leader %.0f MiB, follower %.0f MiB; the larger is %.2fx the" \
            " limit, (RSS - 16 MiB) / state = %.2f: %s\n", k, s / 1048576,
            lim, l / 1024, f / 1024, w / lim, (w - 16) / (s / 1048576),
            w <= lim ? "PASS" : "MISS" }'
else
    echo "  RSS <= 1.3x state + 16 MiB: n/a (BENCH_RSS=0)"
fi
if [[ -n ${CU_MIBS:-} ]]; then
    awk -v s="$CU_STATE" -v l="$CU_RSS_L" -v h="$CU_HWM" 'BEGIN {
        lim = 1.3 * s / 1048576 + 16
        printf "    the same with the catch-up'"'"'s %.0f MiB state: limit" \
            " %.0f MiB; leader %.0f MiB (%s), the wiped follower'"'"'s peak" \
            " %.0f MiB (%s)\n", s / 1048576, lim, l / 1024,
            l / 1024 <= lim ? "PASS" : "MISS", h / 1024,
            h / 1024 <= lim ? "PASS" : "MISS" }'
fi
if [[ -s $NOTES ]]; then
    echo "problems ($(wc -l <"$NOTES") note(s); logs kept in $BENCH_LOGS):"
    sed 's/^/  /' "$NOTES"
    echo "  the log lines above, without time and node, and how many times:"
    sed -n 's/^.*line(s): //p' "$NOTES" | tr '|' '\n' |
        sed 's/^ *//; s/ *$//; s/^[0-9:.]* jacoraft\[[^]]*\] //' |
        sort | uniq -c | sort -rn | sed 's/^/  /'
else
    echo "problems: none (no bench_raw, bench_lib or kvstore process" \
        "crashed, hung at stop, exited non-zero or logged a warning or" \
        "error)"
fi
