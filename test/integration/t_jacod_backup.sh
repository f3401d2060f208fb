#!/bin/bash
# Backups with jacod and jaco (jaco-backup(8)): jaco backup over the unix
# socket and over authenticated TCP (refused without the secret), jaco
# backup verify; a backup node (backup-dir) joined with a token stays a
# standby the reconciler never promotes, keeps backup-keep verified
# archives that each restore, shows in cluster status and is flagged STALE
# once stopped; after the loss of every host, jaco restore of its newest
# archive on a fresh directory gives a one-voter cluster with the same id
# and state, which a fresh host joins with a token.
. "$(dirname "$0")/lib.sh"

for i in 1 2 b; do
    PEER[$i]="127.0.0.1:$(free_port)"
    SOCK[$i]="$WORK/$i.sock"
    cat >"$WORK/n$i.conf" <<EOF
name = n$i
data-dir = $WORK/n$i
peer-address = ${PEER[$i]}
socket = "${SOCK[$i]}"
election-timeout = $ELECTION_MS
promote-after = 500
EOF
done
CLIENT_TCP="127.0.0.1:$(free_port)"
echo "bootstrap = true" >>"$WORK/n1.conf"
echo "client-address = $CLIENT_TCP" >>"$WORK/n1.conf"
cat >>"$WORK/nb.conf" <<EOF
backup-dir = $WORK/archives
backup-interval = 2s
backup-keep = 3
EOF

leads() { jaco "$1" -o json cluster status 2>/dev/null | grep -q "\"leader_name\":\"n$2\""; }
voters() { jaco "$1" -o json raft list-peers 2>/dev/null | grep -o '"voter":true' | wc -l; }

# A backup-dir that cannot be one: refused at start, nothing written.
cp "$WORK/nb.conf" "$WORK/bad.conf"
echo x >"$WORK/not-a-dir"
sed -i "s|^backup-dir = .*|backup-dir = $WORK/not-a-dir|; s|^data-dir = .*|data-dir = $WORK/bad|" "$WORK/bad.conf"
rc=0
timeout 20 "$JACOD" --config "$WORK/bad.conf" >"$WORK/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit code of jacod with a file as backup-dir"
grep -q "backup-dir $WORK/not-a-dir: not a directory" "$WORK/out" || fail "bad backup-dir not named: $(cat "$WORK/out")"
[ ! -e "$WORK/bad/jacoraft.id" ] || fail "jacod wrote its data directory before refusing backup-dir"

start_jacod 1
wait_for 30 "n1 leads" leads 1 1
wait_for 30 "n1 in the node table" jaco 1 node label n1 rack=r7
cid=$(jaco 1 -o json cluster status | sed -n 's/.*"cluster_id":"\([^"]*\)".*/\1/p')

# jaco backup over the socket; the file verifies and tar lists it.
timeout 60 "$JACO" backup --output "$WORK/one.tar.gz" --socket "${SOCK[1]}" >"$WORK/out" 2>&1 ||
    fail "jaco backup (--socket after the verb): $(cat "$WORK/out")"
grep -q "$cid" "$WORK/out" || fail "jaco backup does not show the cluster id: $(cat "$WORK/out")"
tar tzf "$WORK/one.tar.gz" | grep -q 'jaco-backup/state' || fail "tar cannot list the backup"
"$JACO" -o json backup verify "$WORK/one.tar.gz" | grep -q "\"cluster_id\":\"$cid\"" ||
    fail "backup verify -o json"
[ -z "$(ls -A "$WORK/n1/backup-transfer" 2>/dev/null)" ] || fail "jacod kept its transfer copy"
# Over TCP: refused without the secret, written with it.
if timeout 30 "$JACO" --server "$CLIENT_TCP" backup --output "$WORK/tcp.tar.gz" >"$WORK/out" 2>&1; then
    fail "an unauthenticated TCP client got a backup"
fi
grep -q 'unauthenticated' "$WORK/out" || fail "TCP refusal not named: $(cat "$WORK/out")"
[ ! -e "$WORK/tcp.tar.gz" ] || fail "a refused backup left a file"
timeout 60 "$JACO" --server "$CLIENT_TCP" --secret-file "$WORK/n1/secret" backup \
    --output "$WORK/tcp.tar.gz" >"$WORK/out" 2>&1 || fail "authenticated TCP backup: $(cat "$WORK/out")"
"$JACO" backup verify "$WORK/tcp.tar.gz" >/dev/null || fail "the TCP backup does not verify"
# Bad usage is refused with exit code 2.
rc=0; "$JACO" backup --bogus >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "exit code of jaco backup --bogus"

# A second host and a backup node join with tokens.
for i in 2 b; do
    start_jacod "$i"
    wait_for 30 "n$i answers" jaco "$i" cluster status
    token=$(jaco 1 node issue-join-token) || fail "token"
    jaco "$i" node join "$token" >/dev/null || fail "n$i join"
done
# Three members would make three voters; the backup node does not count
# and is never promoted: one voter (n1), n2 and nb standbys.
sleep 3
assert_eq "$(voters 1)" 1 "voters with a backup node among 3 members"
jaco 1 node list >"$WORK/list"
grep -q 'nb .*standby: never votes (backup node)' "$WORK/list" ||
    fail "the backup node's role is not explained: $(cat "$WORK/list")"

# It writes verified archives every 2 s and keeps 3.
wait_for 40 "the backup node's archives" bash -c \
    "[ \$(grep -c 'backup node: wrote and verified' '$WORK/logb') -ge 5 ]"
ls "$WORK/archives" >"$WORK/archives.list"
assert_eq "$(grep -c '^jaco-backup-.*\.tar\.gz$' "$WORK/archives.list")" 3 "archives kept"
assert_eq "$(wc -l <"$WORK/archives.list")" 3 "files in backup-dir"
k=0
for a in "$WORK"/archives/jaco-backup-*.tar.gz; do
    k=$((k + 1))
    "$JACO" backup verify "$a" >/dev/null || fail "$a does not verify"
    "$JACO" restore --input "$a" --name "r$k" --data-dir "$WORK/r$k" \
        --peer-address "127.0.0.1:$(free_port)" >"$WORK/out" 2>&1 ||
        fail "$a does not restore: $(cat "$WORK/out")"
done
wait_for 20 "the Backups line" bash -c \
    "timeout 10 '$JACO' --socket '${SOCK[1]}' cluster status | grep -q 'nb .*newest archive .*every 2s'"
jaco 1 cluster status | grep 'nb ' | grep -q STALE && fail "a fresh archive is flagged STALE"

# Stopped, its newest archive ages past twice the interval: STALE.
kill -TERM "${PID[b]}"
wait "${PID[b]}" || fail "the backup node did not stop cleanly"
unset "PID[b]"
newest=$(ls "$WORK"/archives/jaco-backup-*.tar.gz | sort | tail -n 1)
sleep 5
jaco 1 cluster status | grep 'nb ' | grep -q 'STALE' || fail "an old archive is not flagged: $(jaco 1 cluster status)"

# Every host is lost. The newest archive brings the cluster back.
kill_node 1
kill_node 2
rm -rf "$WORK/n1" "$WORK/n2" "$WORK/nb"
if "$JACO" restore --input "$newest" --name n1 --config "$WORK/n1.conf" --data-dir "$WORK/r1" >"$WORK/out" 2>&1; then
    fail "restore into a used directory without --force"
fi
grep -q 'not_empty' "$WORK/out" || fail "not_empty not named: $(cat "$WORK/out")"
"$JACO" restore --input "$newest" --name n1 --config "$WORK/n1.conf" >"$WORK/out" 2>&1 ||
    fail "restore: $(cat "$WORK/out")"
grep -q "$WORK/n1" "$WORK/out" || fail "restore did not take data-dir from jacod's config: $(cat "$WORK/out")"
start_jacod 1
wait_for 30 "the restored n1 leads" leads 1 1
status=$(jaco 1 -o json cluster status)
grep -q "\"cluster_id\":\"$cid\"" <<<"$status" || fail "another cluster id after restore: $status"
assert_eq "$(voters 1)" 1 "voters after restore"
jaco 1 -o json node list | grep -q '"rack":"r7"' || fail "the restored state lacks n1's label"
# The lost hosts are still listed, as no members, until removed or back.
wait_for 20 "the lost backup node marked" bash -c \
    "timeout 10 '$JACO' --socket '${SOCK[1]}' node list | grep -q 'nb .*none: not in the Raft configuration'"
jaco 1 node remove --force nb >/dev/null || fail "remove the lost backup node"
jaco 1 node list | grep -q '^nb ' && fail "nb still listed after its removal"
start_jacod 2
wait_for 30 "n2 answers" jaco 2 cluster status
if "$JACO" restore --input "$newest" --name n2 --config "$WORK/n2.conf" --dry-run >"$WORK/out" 2>&1; then
    fail "a dry-run restore into a running jacod's directory passed"
fi
grep -q 'code: locked' "$WORK/out" || fail "a running jacod's directory is not reported locked: $(cat "$WORK/out")"
token=$(jaco 1 node issue-join-token) || fail "token on the restored cluster"
jaco 2 node join "$token" >/dev/null || fail "join the restored cluster"
jaco 2 -o json cluster status | grep -q "\"cluster_id\":\"$cid\"" || fail "n2 joined another cluster"
jaco 2 node label n2 after=restore >/dev/null || fail "a write through the joined host"
log "restored cluster $cid from $(basename "$newest"); n2 joined"
