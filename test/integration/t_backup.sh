#!/bin/bash
# Backup and restore end to end with kvstore (jaco-backup(8)):
# - total cluster loss drill: 3 nodes, 5,000 writes, a backup taken during
#   continuous writes, kill -9 of every node, every data directory wiped,
#   restore on one fresh directory, two fresh nodes joined with tokens:
#   same cluster id, 3 voters, every write up to the backup's index there;
# - the backup is consistent: keys acknowledged at an index after the
#   backup's are absent from the restored state;
# - a host of the old cluster (older incarnation) is refused by the
#   restored one;
# - truncated, bit-flipped and foreign archives are rejected by verify and
#   by restore, which leaves its target untouched.
. "$(dirname "$0")/lib.sh"

JACO=${JACO:-$top_builddir/jaco}
alloc_nodes 3
start_cluster
for i in 1 2 3; do wait_client "$i"; done
leader=$(wait_leader 1 2 3)
servers="${CLIENT[1]},${CLIENT[2]},${CLIENT[3]}"
"$KVLOAD" --servers "$servers" --inflight 32 --count 5000 --prefix before- \
    --ack-file "$WORK/acked" >/dev/null || fail "5,000 writes"
[ "$(wc -l <"$WORK/acked")" = 5000 ] || fail "not every write was acknowledged"

# A backup in the middle of continuous writes, through a follower.
"$KVLOAD" --servers "$servers" --inflight 8 --seconds 4 --prefix during- \
    --ack-file "$WORK/acked" >/dev/null 2>&1 &
load=$!
sleep 1.5
follower=$((leader % 3 + 1))
out=$(kv "$follower" backup b.tar.gz) || fail "backup: $out"
read -r index size path <<<"$out"
log "backup at index $index ($size bytes of state) during writes"
wait "$load" || fail "writes during the backup"
[ "$path" = "$WORK/n$follower/backups/b.tar.gz" ] || fail "backup written to $path"
[ ! -e "$path.tmp" ] || fail "a temporary file was left behind"
cp "$path" "$WORK/b.tar.gz"
if kv 1 backup ../../escape.tar.gz >"$WORK/out" 2>&1; then
    fail "a client chose where the server writes"
fi
tar tzf "$WORK/b.tar.gz" >"$WORK/list" || fail "tar cannot list the backup"
assert_eq "$(tr '\n' ' ' <"$WORK/list")" "jaco-backup/backup.json jaco-backup/state jaco-backup/SHA256SUMS " "archive contents"
"$JACO" backup verify "$WORK/b.tar.gz" >"$WORK/verify" || fail "verify: $(cat "$WORK/verify")"
cid=$(status_field 1 cluster_id)
grep -q "$cid" "$WORK/verify" || fail "verify does not show the cluster id: $(cat "$WORK/verify")"
after=$(awk -v i="$index" '$2 > i' "$WORK/acked" | wc -l)
[ "$after" -gt 0 ] || fail "no write was acknowledged after the backup: the test proves nothing"

# Keep one old node's directory: a host of the old cluster.
stop_node 3
cp -a "$WORK/n3" "$WORK/old3"

# Total loss.
for i in 1 2; do kill_node "$i"; done
rm -rf "$WORK"/n1 "$WORK"/n2 "$WORK"/n3

# Bad archives are refused, by verify and by restore, touching nothing.
size_b=$(stat -c %s "$WORK/b.tar.gz")
head -c $((size_b / 2)) "$WORK/b.tar.gz" >"$WORK/truncated.tar.gz"
cp "$WORK/b.tar.gz" "$WORK/flipped.tar.gz"
printf '\x55' | dd of="$WORK/flipped.tar.gz" bs=1 seek=$((size_b / 3)) conv=notrunc 2>/dev/null
cmp -s "$WORK/b.tar.gz" "$WORK/flipped.tar.gz" && printf '\xaa' | dd of="$WORK/flipped.tar.gz" bs=1 seek=$((size_b / 3)) conv=notrunc 2>/dev/null
mkdir -p "$WORK/foreign/etc" && echo data >"$WORK/foreign/etc/x"
tar czf "$WORK/foreign.tar.gz" -C "$WORK/foreign" etc
mkdir -p "$WORK/target"
echo keep >"$WORK/target/precious"
for bad in truncated flipped foreign; do
    if "$JACO" backup verify "$WORK/$bad.tar.gz" >"$WORK/out" 2>&1; then
        fail "verify accepted the $bad archive"
    fi
    case $bad in
        truncated) grep -q 'truncated' "$WORK/out" || fail "truncation not named: $(cat "$WORK/out")" ;;
        foreign) grep -q 'not a jacoraft backup' "$WORK/out" || fail "foreign archive not named: $(cat "$WORK/out")" ;;
        *) grep -q 'code: corrupt' "$WORK/out" || fail "bit flip not reported as corrupt: $(cat "$WORK/out")" ;;
    esac
    for dir in "$WORK/empty-$bad" "$WORK/target"; do
        if "$KVSTORE" restore --input "$WORK/$bad.tar.gz" --id 1 --address "${PEER[1]}" \
            --data-dir "$dir" --force >"$WORK/out" 2>&1; then
            fail "restore accepted the $bad archive"
        fi
    done
    [ ! -e "$WORK/empty-$bad" ] || [ -z "$(ls -A "$WORK/empty-$bad")" ] ||
        fail "a refused restore wrote into an empty directory"
    assert_eq "$(ls -A "$WORK/target")" precious "the target after a refused restore"
done
if "$KVSTORE" restore --input "$WORK/b.tar.gz" --id 1 --address "${PEER[1]}" \
    --data-dir "$WORK/target" >"$WORK/out" 2>&1; then
    fail "restore into a non-empty directory without --force"
fi
grep -q 'not_empty' "$WORK/out" || fail "non-empty target not named: $(cat "$WORK/out")"

# Restore on a fresh directory and start: a one-voter cluster.
"$KVSTORE" restore --input "$WORK/b.tar.gz" --id 1 --address "${PEER[1]}" \
    --data-dir "$WORK/n1" >"$WORK/out" 2>&1 || fail "restore: $(cat "$WORK/out")"
rm -f "$WORK/secret" # the restored cluster has a new secret of its own
start_node 1
wait_client 1
assert_eq "$(wait_leader 1)" 1 "leader of the restored cluster"
assert_eq "$(status_field 1 cluster_id)" "$cid" "cluster id after the restore"

# The old host is refused: older incarnation of the same cluster.
"$KVSTORE" serve --id 3 --address "${PEER[3]}" --client "${CLIENT[3]}" \
    --data-dir "$WORK/old3" --election-timeout "$ELECTION_MS" >>"$WORK/log-old3" 2>&1 &
PID[old]=$!
for ((t = 0; t < 100; t++)); do
    grep -q 'incarnation' "$WORK/log1" && break
    sleep 0.1
done
grep -q 'incarnation' "$WORK/log1" || fail "the old host was not refused for its incarnation"
assert_eq "$(leader_of 1)" 1 "leader after the old host knocked"
kill_node old

# Two fresh hosts join with tokens; the reconciler makes 3 voters.
for i in 2 3; do
    token=$(kv 1 token 600) || fail "token"
    start_node "$i" --join-token "$token" --promote-after 500
    wait_client "$i"
done
for ((t = 0; t < 150; t++)); do
    voters=$(kv 1 status --json | grep -o '"role":"voter"' | wc -l)
    [ "$voters" = 3 ] && break
    sleep 0.2
done
assert_eq "$voters" 3 "voters after two joins"
kv 1 put after-restore yes >/dev/null || fail "write on the restored cluster"
commit=$(status_field 1 commit_index)
for i in 1 2 3; do
    wait_applied "$i" "$commit"
    assert_eq "$(status_field "$i" cluster_id)" "$cid" "cluster id of node $i"
done

# Every write up to the backup's index is there, on a joined node too...
awk -v i="$index" '$2 <= i' "$WORK/acked" >"$WORK/expected"
[ "$(wc -l <"$WORK/expected")" -ge 5000 ] || fail "fewer than 5,000 writes before the backup"
for i in 1 3; do
    "$KVLOAD" --servers "${CLIENT[$i]}" --verify "$WORK/expected" >"$WORK/out" 2>&1 ||
        fail "node $i lacks writes up to the backup's index: $(cat "$WORK/out")"
done
# ...and none after it: the state is the one at that index.
awk -v i="$index" '$2 > i {print $1}' "$WORK/acked" | shuf -n 100 --random-source=<(yes) >"$WORK/later"
while read -r key; do
    if kv 3 get "$key" >/dev/null 2>&1; then
        fail "$key, acknowledged after index $index, is in the restored state"
    fi
done <"$WORK/later"
log "restored: $(wc -l <"$WORK/expected") writes present, $after later ones absent (100 checked)"
