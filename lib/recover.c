/* recover.c: what a stopped node's data directory holds, read without
 * starting the node (jr_recover_inspect; jaco recover inspect), so that an
 * operator who lost a majority can tell which survivor has the most recent
 * log before forcing a configuration on them. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "logstore.h"
#include "metastore.h"
#include "snapstore.h"

#define SEGMENT_SIZE (8u << 20) /* as io.c: only used to open the store */

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

static void free_entries(struct raft_entry *entries, size_t n)
{
    void *batch = NULL;
    size_t i;
    for (i = 0; i < n; i++) {
        if (entries[i].batch != batch) {
            batch = entries[i].batch;
            raft_free(batch);
        }
    }
    raft_free(entries);
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
        free_entries(entries, n);
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
    rv = jr__meta_load(dir, &meta, err);
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
    (void)snprintf(info->cluster_id, sizeof info->cluster_id, "%s",
                   meta.cluster_id);
    info->incarnation = meta.incarnation;
    (void)snprintf(raft_dir, sizeof raft_dir, "%s/raft", dir);
    (void)snprintf(path, sizeof path, "%s/raft/peers.json", dir);
    info->peers_pending = access(path, F_OK) == 0;

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
