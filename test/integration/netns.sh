# netns.sh: network faults for the cluster tests, for real: every node gets
# a network namespace of its own (10.99.0.I on a veth whose other end is on
# a bridge in a hub namespace, where the clients run, at 10.99.0.254), and
# faults are nftables rules in the nodes' namespaces (table ip jacofault):
# partitions, one-way loss, random loss, flapping; latency goes through
# faultproxy (test/lib/faultproxy.c), to which a node's connections to its
# peers are redirected, since this kernel has no netem. Source it after
# lib.sh; ns_require skips the test (exit 77) where namespaces cannot be
# made, and everything made is removed at exit, also on failure.
FAULTPROXY=${FAULTPROXY:-$top_builddir/test/faultproxy}
NS_TAG=$$
NS_HUB=jhub$NS_TAG
NS_SUBNET=10.99.0
NS_LIST=()

ns_name() { echo "jn$NS_TAG-$1"; }
nsx() { local i=$1; shift; ip netns exec "$(ns_name "$i")" "$@"; }
hubx() { ip netns exec "$NS_HUB" "$@"; }

ns_require() {
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
        log "SKIP: needs root, iproute2 and nftables (scripts/test.sh installs them)"
        exit 77
    fi
    if ! ip netns add "$NS_HUB" 2>/dev/null; then
        log "SKIP: cannot create network namespaces here"
        exit 77
    fi
    NS_LIST+=("$NS_HUB")
    ON_EXIT="ns_teardown; ${ON_EXIT:-}"
}

ns_teardown() {
    local n
    for n in "${NS_LIST[@]}"; do ip netns delete "$n" 2>/dev/null || true; done
}

# ns_setup COUNT: namespaces, addresses, an empty fault table for nodes
# 1..COUNT; sets PEER, CLIENT, NSWRAP and CLIENT_WRAP for lib.sh.
ns_setup() {
    local i n
    N=$1
    hubx ip link set lo up
    hubx ip link add br0 type bridge
    hubx ip addr add "$NS_SUBNET.254/24" dev br0
    hubx ip link set br0 up
    for ((i = 1; i <= N; i++)); do
        n=$(ns_name "$i")
        ip netns add "$n"
        NS_LIST+=("$n")
        ip link add "jv$NS_TAG-$i" type veth peer name "jb$NS_TAG-$i"
        ip link set "jv$NS_TAG-$i" netns "$n"
        ip link set "jb$NS_TAG-$i" netns "$NS_HUB"
        nsx "$i" ip link set lo up
        nsx "$i" ip link set "jv$NS_TAG-$i" name eth0
        nsx "$i" ip addr add "$NS_SUBNET.$i/24" dev eth0
        nsx "$i" ip link set eth0 up
        hubx ip link set "jb$NS_TAG-$i" master br0
        hubx ip link set "jb$NS_TAG-$i" up
        nsx "$i" nft -f - <<NFT
table ip jacofault {
    chain input { type filter hook input priority -10; policy accept; }
    chain output { type filter hook output priority -10; policy accept; }
    chain delay { type nat hook output priority -100; policy accept; }
}
NFT
        PEER[$i]="$NS_SUBNET.$i:7000"
        CLIENT[$i]="$NS_SUBNET.$i:7001"
        NSWRAP[$i]="ip netns exec $n"
    done
    CLIENT_WRAP="ip netns exec $NS_HUB"
}

# ns_cut I J: no packet between nodes I and J, either way.
ns_cut() {
    nsx "$1" nft add rule ip jacofault input ip saddr "$NS_SUBNET.$2" drop
    nsx "$1" nft add rule ip jacofault output ip daddr "$NS_SUBNET.$2" drop
    nsx "$2" nft add rule ip jacofault input ip saddr "$NS_SUBNET.$1" drop
    nsx "$2" nft add rule ip jacofault output ip daddr "$NS_SUBNET.$1" drop
}

# ns_partition "I..." "J...": every node of the first group cut from every
# node of the second (clients in the hub still reach all).
ns_partition() {
    local a b
    for a in $1; do for b in $2; do ns_cut "$a" "$b"; done; done
}

# ns_oneway I J: I hears nothing from J; J still hears I.
ns_oneway() {
    nsx "$1" nft add rule ip jacofault input ip saddr "$NS_SUBNET.$2" drop
}

# ns_loss I PERCENT: node I drops PERCENT% of the packets its peers send it.
ns_loss() {
    nsx "$1" nft add rule ip jacofault input ip saddr != "$NS_SUBNET.254" \
        numgen random mod 100 '<' "$2" drop
}

# ns_delay I MS: every connection node I opens to a peer crosses a proxy
# that holds each byte MS ms (so a round trip from I takes MS ms more).
ns_delay() {
    local i=$1 ms=$2 j routes=()
    for ((j = 1; j <= N; j++)); do
        [ "$j" = "$i" ] && continue
        routes+=(--route "$((17000 + j))=$NS_SUBNET.$j:7000")
        nsx "$i" nft add rule ip jacofault delay ip daddr "$NS_SUBNET.$j" \
            tcp dport 7000 meta mark != 0x4a redirect to ":$((17000 + j))"
    done
    nsx "$i" "$FAULTPROXY" --delay-ms "$ms" --mark 0x4a "${routes[@]}" \
        >>"$WORK/proxy$i" 2>&1 &
    PID[proxy$i]=$!
}

# ns_heal [I...]: remove every fault (of the given nodes, or all); proxies
# stop, and connections through them break (the nodes reconnect).
ns_heal() {
    local i nodes=("$@")
    if [ ${#nodes[@]} -eq 0 ]; then
        for ((i = 1; i <= N; i++)); do nodes+=("$i"); done
    fi
    for i in "${nodes[@]}"; do
        nsx "$i" nft flush chain ip jacofault input
        nsx "$i" nft flush chain ip jacofault output
        nsx "$i" nft flush chain ip jacofault delay
        if [ -n "${PID[proxy$i]:-}" ]; then
            kill "${PID[proxy$i]}" 2>/dev/null || true
            wait "${PID[proxy$i]}" 2>/dev/null || true
            unset "PID[proxy$i]"
        fi
    done
}
