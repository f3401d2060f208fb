/* recover.c: what a stopped node's data directory holds, read without
 * starting the node (jr_recover_inspect; jaco recover inspect), so that an
 * operator who lost a majority can tell which survivor has the most recent
 * log before forcing a configuration on them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jr_internal.h"
#include "logstore.h"
#include "metastore.h"
#include "peers.h"
#include "snapstore.h"

#define SEGMENT_SIZE (8u << 20) /* as io.c: only used to open the store */
#define SENTINEL "SYNCING"      /* a snapshot install not yet restored */

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* canonical/raft 0.15 encodes a configuration entry as: format 1 (one
 * byte), the server count (64-bit little endian), then per server its id
 * (64-bit little endian), its address (NUL-terminated) and its role (one
 * byte), padded to 8 bytes (test_recover pins this against
 * raft_configuration_encode). raft exports no decoder. */
static int conf_decode(const void *buf,
                       size_t len,
                       struct jr_recovery_info *info)
{
    const unsigned char *p = buf;
    size_t pos = 9, i, n;
    if (len < 9 || p[0] != 1) {
        return JR_ECORRUPT;
    }
    n = (size_t)get_le64(p + 1);
    if (n > JR_RECOVERY_MAX_SERVERS) {
        return JR_ECORRUPT;
    }
    for (i = 0; i < n; i++) {
        struct jr_recovery_server *s = &info->servers[i];
        const unsigned char *nul;
        size_t alen;
        if (len - pos < 8 + 1 + 1) {
            return JR_ECORRUPT;
        }
        s->id = get_le64(p + pos);
        pos += 8;
        nul = memchr(p + pos, '\0', len - pos);
        if (nul == NULL || (size_t)(nul - (p + pos)) >= sizeof s->address ||
            (size_t)(nul - p) + 1 >= len) {
            return JR_ECORRUPT;
        }
        alen = (size_t)(nul - (p + pos));
        memcpy(s->address, p + pos, alen + 1);
        pos += alen + 1;
        s->role = p[pos] == RAFT_VOTER     ? JR_ROLE_VOTER
                  : p[pos] == RAFT_STANDBY ? JR_ROLE_STANDBY
                                           : JR_ROLE_SPARE;
        pos++;
    }
    info->n_servers = (unsigned)n;
    return 0;
}

static void conf_copy(const struct raft_configuration *c,
                      struct jr_recovery_info *info)
{
    unsigned i;
    info->n_servers = 0;
    for (i = 0; i < c->n && i < JR_RECOVERY_MAX_SERVERS; i++) {
        struct jr_recovery_server *s = &info->servers[i];
        s->id = c->servers[i].id;
        (void)snprintf(s->address, sizeof s->address, "%s",
                       c->servers[i].address);
        s->role = c->servers[i].role == RAFT_VOTER     ? JR_ROLE_VOTER
                  : c->servers[i].role == RAFT_STANDBY ? JR_ROLE_STANDBY
                                                       : JR_ROLE_SPARE;
        info->n_servers++;
    }
}

static void close_cb(void *arg)
{
    *(bool *)arg = true;
}

/* Load the log of raft_dir (the node is stopped: we hold its lock). */
static int read_log(const char *raft_dir,
                    struct jr_recovery_info *info,
                    struct jr_error *err)
{
    struct jr__logstore_config cfg;
    struct jr__logstore *log;
    struct raft_entry *entries = NULL;
    char msg[JR_ERRMSG_SIZE];
    size_t n = 0, i;
    uint64_t start;
    uv_loop_t loop;
    bool closed = false;
    int rv;

    if (uv_loop_init(&loop) != 0) {
        return jr__error_set(err, JR_ENOMEM, "inspect: cannot create a loop");
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = raft_dir;
    cfg.segment_size = SEGMENT_SIZE;
    rv = jr__logstore_open(&loop, &cfg, &log, msg);
    if (rv != 0) {
        (void)uv_loop_close(&loop);
        return jr__error_set(err, rv, "inspect: %s", msg);
    }
    rv = jr__logstore_load(log, &start, &entries, &n, msg);
    if (rv == 0) {
        info->log_read = true;
        info->first_index = n > 0 ? start : 0;
        if (n > 0) {
            info->last_index = start + n - 1;
            info->last_term = entries[n - 1].term;
        }
        for (i = n; i > 0; i--) {
            if (entries[i - 1].type == RAFT_CHANGE) {
                if (conf_decode(entries[i - 1].buf.base, entries[i - 1].buf.len,
                                info) != 0) {
                    rv = jr__error_set(err, JR_ECORRUPT,
                                       "inspect: the configuration at index "
                                       "%llu of %s does not decode",
                                       (unsigned long long)(start + i - 1),
                                       raft_dir);
                }
                info->conf_index = start + i - 1;
                break;
            }
        }
        jr__logstore_entries_free(entries, n);
    } else {
        jr__error_set(err, rv, "%s", msg);
    }
    jr__logstore_close(log, close_cb, &closed);
    while (!closed) {
        (void)uv_run(&loop, UV_RUN_ONCE);
    }
    (void)uv_loop_close(&loop);
    return rv;
}

int jr_recover_inspect(const char *dir,
                       struct jr_recovery_info *info,
                       struct jr_error *err)
{
    struct jr__snapshot_info snap;
    struct jr__raft_meta rmeta;
    struct jr__meta meta;
    char raft_dir[4096], path[4096], msg[JR_ERRMSG_SIZE];
    struct stat st;
    int lock_fd, rv;

    if (dir == NULL || info == NULL) {
        return jr__error_set(err, JR_EINVAL, "inspect: bad arguments");
    }
    memset(info, 0, sizeof *info);
    (void)snprintf(info->data_dir, sizeof info->data_dir, "%s", dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return jr__error_set(err, JR_ENOTFOUND, "%s: no such directory", dir);
    }
    (void)snprintf(path, sizeof path, "%s/%s", dir, JR__RESTORE_SENTINEL);
    info->restoring = access(path, F_OK) == 0;
    rv = jr__meta_load(dir, &meta, err);
    if (rv == JR_ENOTFOUND && info->restoring) {
        return jr__error_set(err, JR_ESTATE,
                             "%s: a restore into it did not complete (%s is "
                             "present): run jaco restore --force again",
                             dir, JR__RESTORE_SENTINEL);
    }
    if (rv == JR_ENOTFOUND) {
        return jr__error_set(err, JR_ENOTFOUND,
                             "%s is not a jacoraft data directory (no "
                             "identity file)",
                             dir);
    }
    if (rv != 0) {
        return rv;
    }
    info->node_id = meta.node_id;
    (void)snprintf(info->node_name, sizeof info->node_name, "%s", meta.name);
    (void)snprintf(info->cluster_id, sizeof info->cluster_id, "%s",
                   meta.cluster_id);
    info->incarnation = meta.incarnation;
    (void)snprintf(raft_dir, sizeof raft_dir, "%s/raft", dir);
    (void)snprintf(path, sizeof path, "%s/raft/peers.json", dir);
    info->peers_pending = access(path, F_OK) == 0;
    (void)snprintf(path, sizeof path, "%s/raft/%s", dir, SENTINEL);
    info->partially_synced = access(path, F_OK) == 0;

    /* Hold the node's lock while reading, so that it cannot start under
     * us; a node running on it is reported, and its log left alone. */
    (void)snprintf(path, sizeof path, "%s/LOCK", dir);
    lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        info->locked = errno == EWOULDBLOCK;
    }

    rv = jr__metastore_load(raft_dir, &rmeta, msg);
    if (rv != 0) {
        rv = jr__error_set(err, rv, "%s", msg);
        goto out;
    }
    info->term = rmeta.term;
    info->voted_for = rmeta.vote;
    rv = jr__snapstore_latest(raft_dir, &snap, msg);
    if (rv == 0) {
        info->snapshot_index = snap.index;
        info->snapshot_term = snap.term;
        info->last_index = snap.index;
        info->last_term = snap.term;
        info->conf_index = snap.conf_index;
        conf_copy(&snap.conf, info);
        raft_configuration_close(&snap.conf);
    } else if (rv != JR_ENOTFOUND) {
        rv = jr__error_set(err, rv, "%s", msg);
        goto out;
    }
    rv = 0;
    if (!info->locked) {
        struct jr_recovery_info log_info = *info;
        rv = read_log(raft_dir, &log_info, err);
        if (rv == 0) {
            info->log_read = true;
            info->first_index = log_info.first_index;
            if (log_info.last_index > info->last_index) {
                info->last_index = log_info.last_index;
                info->last_term = log_info.last_term;
            }
            if (log_info.conf_index > info->conf_index) {
                info->conf_index = log_info.conf_index;
                info->n_servers = log_info.n_servers;
                memcpy(info->servers, log_info.servers, sizeof info->servers);
            }
        }
    }
out:
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    return rv;
}

/* ---- peers.json: forcing a configuration at start ---- */

/* The steps, each safe to repeat after a crash:
 *   1. validate raft/peers.json (a bad file stops the start, untouched);
 *   2. rename it to peers.json.applying-<incarnation>, the incarnation it
 *      gives this node (current + 1): the name carries the decision;
 *   3. store that incarnation in the identity file (set, not bumped);
 *   4. append the configuration to the log (raft_recover; twice is
 *      harmless: the last configuration wins);
 *   5. rename the file to peers.json.applied-<incarnation>, kept so that the
 *      operator can see what was applied.
 * A start that finds peers.json.applying-N resumes at step 3. */
#define PEERS_FILE "peers.json"
#define APPLYING "peers.json.applying-"
#define APPLIED "peers.json.applied-"

static int find_applying(const char *raft_dir, char *name, size_t size)
{
    DIR *d = opendir(raft_dir);
    struct dirent *e;
    int found = 0;
    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, APPLYING, strlen(APPLYING)) == 0) {
            (void)snprintf(name, size, "%s", e->d_name);
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

static int copy_file(const char *from, const char *to)
{
    char buf[64 << 10];
    int in, out, e = 0;
    ssize_t k;
    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return errno;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        e = errno;
        close(in);
        return e;
    }
    while ((k = read(in, buf, sizeof buf)) > 0) {
        if ((e = jr__write_all(out, buf, (size_t)k)) != 0) {
            break;
        }
    }
    if (k < 0 && e == 0) {
        e = errno;
    }
    if (e == 0 && fsync(out) != 0) {
        e = errno;
    }
    close(out);
    close(in);
    return e;
}

/* Before a forced configuration changes anything: the log, snapshots,
 * term and vote and identity as they were, in raft/before-recovery-<N>/,
 * so that a mistaken recovery can be undone (jaco-recovery(7)). Segments
 * are copied (a truncation may write into an old one); snapshots, never
 * changed once written, are linked. */
static int keep_aside(struct jr_node *n, unsigned long incarnation, char *msg)
{
    char aside[4096], from[8192], to[8192];
    struct dirent *e;
    DIR *d;
    int rv = 0;
    (void)snprintf(aside, sizeof aside, "%s/before-recovery-%lu", n->raft_dir,
                   incarnation);
    if (mkdir(aside, 0700) != 0) {
        if (errno == EEXIST) {
            return 0; /* kept by a start that crashed after it */
        }
        jr__errf(msg, "create %s: %s", aside, strerror(errno));
        return jr__err_from_errno(errno);
    }
    d = opendir(n->raft_dir);
    if (d == NULL) {
        jr__errf(msg, "read %s: %s", n->raft_dir, strerror(errno));
        return jr__err_from_errno(errno);
    }
    while (rv == 0 && (e = readdir(d)) != NULL) {
        bool seg = strncmp(e->d_name, "seg-", 4) == 0 ||
                   strcmp(e->d_name, "meta") == 0;
        bool snap = strncmp(e->d_name, "snapshot-", 9) == 0;
        if (!seg && !snap) {
            continue;
        }
        (void)snprintf(from, sizeof from, "%s/%s", n->raft_dir, e->d_name);
        (void)snprintf(to, sizeof to, "%s/%s", aside, e->d_name);
        rv = snap && link(from, to) == 0 ? 0 : copy_file(from, to);
        if (rv != 0) {
            jr__errf(msg, "keep %s aside: %s", from, strerror(rv));
            rv = jr__err_from_errno(rv);
        }
    }
    closedir(d);
    if (rv == 0) {
        (void)snprintf(from, sizeof from, "%s/jacoraft.id", n->data_dir);
        (void)snprintf(to, sizeof to, "%s/jacoraft.id", aside);
        if ((rv = copy_file(from, to)) != 0) {
            jr__errf(msg, "keep %s aside: %s", from, strerror(rv));
            rv = jr__err_from_errno(rv);
        }
    }
    (void)jr__fsync_dir(aside);
    (void)jr__fsync_dir(n->raft_dir);
    return rv;
}

int jr__recover_ingest(struct jr_node *n, struct jr_error *err)
{
    struct jr__peers peers;
    struct raft_configuration conf;
    struct jr__meta meta;
    char path[4096], applying[4096], applied[4096], name[256];
    char msg[JR_ERRMSG_SIZE];
    unsigned long incarnation;
    int rv, e;

    (void)snprintf(path, sizeof path, "%s/%s", n->raft_dir, PEERS_FILE);
    if (find_applying(n->raft_dir, name, sizeof name)) {
        incarnation = strtoul(name + strlen(APPLYING), NULL, 10);
        (void)snprintf(applying, sizeof applying, "%s/%s", n->raft_dir, name);
        jr__warnf(n,
                  "resuming the forced recovery from %s interrupted by a "
                  "crash",
                  applying);
    } else {
        rv = jr__peers_read_file(path, &peers, msg);
        if (rv == JR_ENOTFOUND) {
            return 0;
        }
        if (rv == 0) {
            rv = jr__peers_validate(&peers, n->cfg.id, path, msg);
        }
        if (rv != 0) {
            return jr__error_set(err, rv,
                                 "%s; refusing to start (the file and the "
                                 "data directory are untouched: fix the file "
                                 "or remove it)",
                                 msg);
        }
        incarnation = (unsigned long)n->meta.incarnation + 1;
        rv = keep_aside(n, incarnation, msg);
        if (rv != 0) {
            return jr__error_set(err, rv,
                                 "forced recovery: %s; nothing was changed "
                                 "(free space for a copy of the log, or "
                                 "remove %s)",
                                 msg, path);
        }
        (void)snprintf(applying, sizeof applying, "%s/%s%lu", n->raft_dir,
                       APPLYING, incarnation);
        if (rename(path, applying) != 0 ||
            (e = jr__fsync_dir(n->raft_dir)) != 0) {
            return jr__error_set(err, jr__err_from_errno(errno),
                                 "forced recovery: rename %s: %s", path,
                                 strerror(errno));
        }
        jr__warnf(n,
                  "forced recovery: applying %s: %u server(s); this node "
                  "moves to incarnation %lu of cluster %s",
                  path, peers.n, incarnation, n->cluster_id);
    }
    rv = jr__peers_read_file(applying, &peers, msg);
    if (rv == 0) {
        rv = jr__peers_validate(&peers, n->cfg.id, applying, msg);
    }
    if (rv != 0) {
        return jr__error_set(err, rv, "forced recovery: %s", msg);
    }
    meta = n->meta;
    meta.incarnation = (uint32_t)incarnation;
    rv = jr__meta_store(n->data_dir, &meta, err);
    if (rv != 0) {
        return rv;
    }
    uv_mutex_lock(&n->mutex);
    n->meta = meta;
    uv_mutex_unlock(&n->mutex);
    raft_configuration_init(&conf);
    rv = jr__peers_to_configuration(&peers, &conf);
    if (rv == 0) {
        rv = raft_recover(&n->raft, &conf);
        if (rv != 0) {
            rv = jr__error_set(err, jr__err_from_raft(rv),
                               "forced recovery: append the configuration: "
                               "%s",
                               raft_errmsg(&n->raft));
        }
    } else {
        rv = jr__error_set(err, rv, "forced recovery: out of memory");
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        return rv;
    }
    (void)snprintf(applied, sizeof applied, "%s/%s%lu", n->raft_dir, APPLIED,
                   incarnation);
    if (rename(applying, applied) != 0) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "forced recovery: rename %s: %s", applying,
                             strerror(errno));
    }
    (void)jr__fsync_dir(n->raft_dir);
    /* Snapshot as soon as the next entry is applied (node.c), so that the
     * recovered configuration is in a snapshot, as after hashicorp/raft's
     * peers.json. */
    n->snapshot_after_recovery = true;
    jr__warnf(n,
              "forced recovery done: the configuration of %s is in the log "
              "(every entry of this node's log is now taken as committed); "
              "the file is kept as %s",
              path, applied);
    return 0;
}

/* ---- writing peers.json (offline) ---- */

int jr_recover_write_peers(const char *dir,
                           const struct jr_recovery_server *servers,
                           unsigned n,
                           unsigned flags,
                           char *text,
                           size_t text_size,
                           struct jr_error *err)
{
    struct jr__peers peers;
    struct jr__meta meta;
    char path[4096], aside[4200], msg[JR_ERRMSG_SIZE], *json = NULL;
    size_t json_len = 0;
    unsigned i;
    int lock_fd = -1, rv;

    if (dir == NULL || servers == NULL || n == 0 || n > JR__PEERS_MAX) {
        return jr__error_set(err, JR_EINVAL,
                             "write peers: between 1 and %d servers",
                             JR__PEERS_MAX);
    }
    (void)snprintf(path, sizeof path, "%s/%s", dir, JR__RESTORE_SENTINEL);
    rv = jr__meta_load(dir, &meta, err);
    if (rv == JR_ENOTFOUND && access(path, F_OK) == 0) {
        return jr__error_set(err, JR_ESTATE,
                             "%s: a restore into it did not complete (%s is "
                             "present): run jaco restore --force again",
                             dir, JR__RESTORE_SENTINEL);
    }
    if (rv == JR_ENOTFOUND) {
        return jr__error_set(err, JR_ENOTFOUND,
                             "%s is not a jacoraft data directory (no "
                             "identity file)",
                             dir);
    }
    if (rv != 0) {
        return rv;
    }
    memset(&peers, 0, sizeof peers);
    for (i = 0; i < n; i++) {
        struct jr__peer *p = &peers.p[i];
        p->id = servers[i].id;
        (void)snprintf(p->address, sizeof p->address, "%s", servers[i].address);
        p->role = servers[i].role == JR_ROLE_VOTER     ? RAFT_VOTER
                  : servers[i].role == JR_ROLE_STANDBY ? RAFT_STANDBY
                                                       : RAFT_SPARE;
    }
    peers.n = n;
    (void)snprintf(path, sizeof path, "%s/raft/%s", dir, PEERS_FILE);
    rv = jr__peers_validate(&peers, meta.node_id, path, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "%s", msg);
    }
    rv = jr__peers_format(&peers, &json, &json_len);
    if (rv != 0) {
        return jr__error_set(err, rv, "write peers: out of memory");
    }
    if (text != NULL && text_size > 0) {
        (void)snprintf(text, text_size, "%s", json);
    }
    free(json);
    if ((flags & JR_RECOVER_DRY_RUN) != 0) {
        return 0;
    }
    /* The lock keeps a node from starting while we write. */
    rv = jr__datadir_lock(dir, &lock_fd, err);
    if (rv != 0) {
        return rv;
    }
    if (access(path, F_OK) == 0) {
        (void)snprintf(aside, sizeof aside, "%s.replaced-%ld", path,
                       (long)time(NULL));
        if (rename(path, aside) != 0) {
            rv = jr__error_set(err, jr__err_from_errno(errno),
                               "write peers: move %s aside: %s", path,
                               strerror(errno));
            goto out;
        }
    }
    rv = jr__peers_write_file(path, &peers, msg);
    if (rv != 0) {
        rv = jr__error_set(err, rv, "%s", msg);
    }
out:
    jr__datadir_unlock(lock_fd);
    return rv;
}

int jr_recover_force_new_cluster(const char *dir,
                                 unsigned flags,
                                 char *text,
                                 size_t text_size,
                                 struct jr_error *err)
{
    struct jr_recovery_info *info = calloc(1, sizeof *info);
    struct jr_recovery_server self;
    unsigned i;
    int rv;
    if (info == NULL) {
        return jr__error_set(err, JR_ENOMEM, "out of memory");
    }
    rv = jr_recover_inspect(dir, info, err);
    if (rv == 0 && info->locked) {
        rv = jr__error_set(err, JR_ELOCKED,
                           "data directory %s is locked by a running node: "
                           "stop it first",
                           dir);
    }
    if (rv == 0) {
        for (i = 0; i < info->n_servers; i++) {
            if (info->servers[i].id == info->node_id) {
                break;
            }
        }
        if (i == info->n_servers) {
            rv = jr__error_set(err, JR_ESTATE,
                               "node %llu is not in the last configuration "
                               "of %s: it cannot tell its own address; use "
                               "write-peers with an explicit address",
                               (unsigned long long)info->node_id, dir);
        } else {
            self = info->servers[i];
            self.role = JR_ROLE_VOTER;
            rv = jr_recover_write_peers(dir, &self, 1, flags, text, text_size,
                                        err);
        }
    }
    free(info);
    return rv;
}

/* ---- partially synced: a snapshot install that did not complete ---- */

void jr__sync_sentinel_set(struct jr_node *n)
{
    char path[4096];
    int fd;
    if (n->partially_synced) {
        return;
    }
    (void)snprintf(path, sizeof path, "%s/%s", n->raft_dir, SENTINEL);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
        (void)jr__fsync_dir(n->raft_dir);
    }
    n->partially_synced = true;
}

void jr__sync_sentinel_clear(struct jr_node *n)
{
    char path[4096];
    if (!n->partially_synced) {
        return;
    }
    (void)snprintf(path, sizeof path, "%s/%s", n->raft_dir, SENTINEL);
    if (unlink(path) == 0) {
        (void)jr__fsync_dir(n->raft_dir);
        jr__infof(n, "re-synced from the leader: no longer partially synced");
    }
    n->partially_synced = false;
}

/* At start, with the sentinel there: the log and snapshots may not agree
 * with each other or with the state machine. Keep the identity, the secret
 * and raft's term and vote; move the log and snapshots aside (never
 * deleted: raft/partial-<time>/), so that the node starts empty, cannot
 * stand for election (it knows no configuration) and gets everything from
 * the leader again. */
int jr__sync_resume(struct jr_node *n, struct jr_error *err)
{
    char path[4096], aside[4096], from[8192], to[8192];
    struct dirent *e;
    DIR *d;
    (void)snprintf(path, sizeof path, "%s/%s", n->raft_dir, SENTINEL);
    if (access(path, F_OK) != 0) {
        return 0;
    }
    (void)snprintf(aside, sizeof aside, "%s/partial-%ld", n->raft_dir,
                   (long)time(NULL));
    if (mkdir(aside, 0700) != 0 && errno != EEXIST) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "partially synced: create %s: %s", aside,
                             strerror(errno));
    }
    d = opendir(n->raft_dir);
    if (d == NULL) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "partially synced: read %s: %s", n->raft_dir,
                             strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) != 0 &&
            strncmp(e->d_name, "open-", 5) != 0 &&
            strncmp(e->d_name, "snapshot-", 9) != 0 &&
            strcmp(e->d_name, "reset.tmp") != 0) {
            continue;
        }
        (void)snprintf(from, sizeof from, "%s/%s", n->raft_dir, e->d_name);
        (void)snprintf(to, sizeof to, "%s/%s", aside, e->d_name);
        if (rename(from, to) != 0) {
            int saved = errno;
            closedir(d);
            return jr__error_set(err, jr__err_from_errno(saved),
                                 "partially synced: move %s aside: %s", from,
                                 strerror(saved));
        }
    }
    closedir(d);
    (void)jr__fsync_dir(aside);
    (void)jr__fsync_dir(n->raft_dir);
    n->partially_synced = true;
    jr__warnf(n,
              "partially synced: a snapshot install did not complete before "
              "this node stopped; its raft log and snapshots are moved to %s "
              "and it re-syncs from the leader (it stands for no election "
              "until then)",
              aside);
    return 0;
}
