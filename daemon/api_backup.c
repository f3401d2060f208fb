/* api_backup.c: online backups through the client API, so that jaco can
 * write the archive where the operator runs it (also over --server):
 *
 *   backup.create {local?} -> {id, size, index, term, cluster_id, ...}
 *   backup.read {id, offset} -> {data: BIN (at most 1 MiB), eof}
 *   backup.done {id}          forget it
 *
 * jacod writes the archive with jr_node_backup into
 * <data-dir>/backup-transfer/, then jaco reads it in chunks and verifies
 * its own copy. One transfer at a time: a new backup.create replaces the
 * previous one (a jaco that died mid-transfer leaves nothing behind for
 * long). The archive holds the whole state: over TCP it needs an
 * authenticated connection, like a write. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mp.h"
#include "server.h"

#define CHUNK (1u << 20)

static pthread_mutex_t transfer_mutex = PTHREAD_MUTEX_INITIALIZER;
static char transfer_id[33];     /* "" when none */
static char transfer_path[4300]; /* the archive being read */

static void forget_locked(void)
{
    if (transfer_id[0] != '\0') {
        (void)unlink(transfer_path);
        transfer_id[0] = '\0';
    }
}

static void pack_info(msgpack_packer *pk,
                      const char *id,
                      uint64_t size,
                      const struct jr_backup_info *b)
{
    unsigned i;
    msgpack_pack_map(pk, 9);
    jd_mp_kv_str(pk, "id", id);
    jd_mp_key(pk, "size");
    msgpack_pack_uint64(pk, size);
    jd_mp_key(pk, "index");
    msgpack_pack_uint64(pk, b->index);
    jd_mp_key(pk, "term");
    msgpack_pack_uint64(pk, b->term);
    jd_mp_kv_str(pk, "cluster_id", b->cluster_id);
    jd_mp_key(pk, "incarnation");
    msgpack_pack_uint32(pk, b->incarnation);
    jd_mp_key(pk, "state_size");
    msgpack_pack_uint64(pk, b->state_size);
    jd_mp_key(pk, "created");
    msgpack_pack_int64(pk, b->created);
    jd_mp_key(pk, "members");
    msgpack_pack_array(pk, b->n_members);
    for (i = 0; i < b->n_members; i++) {
        msgpack_pack_map(pk, 3);
        jd_mp_kv_str(pk, "name", b->members[i].name);
        jd_mp_kv_str(pk, "address", b->members[i].address);
        jd_mp_kv_str(pk, "role", jr_role_name(b->members[i].role));
    }
}

static void op_create(const struct jd_ctx *ctx,
                      const struct jd_request *req,
                      msgpack_sbuffer *reply)
{
    const msgpack_object *local = jd_mp_get(req->args, "local");
    struct jr_backup_info *b = calloc(1, sizeof *b);
    unsigned char raw[16];
    char dir[4200], path[4300], id[33];
    struct jr_error err;
    struct stat st;
    msgpack_packer pk;
    unsigned i;
    int rv;

    if (b == NULL) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        return;
    }
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        free(b);
        jd_reply_error(reply, JD_CODE_INTERNAL, "no randomness");
        return;
    }
    for (i = 0; i < sizeof raw; i++) {
        (void)snprintf(id + 2 * i, 3, "%02x", raw[i]);
    }
    (void)snprintf(dir, sizeof dir, "%s/backup-transfer", ctx->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        free(b);
        jd_reply_error(reply, JD_CODE_INTERNAL, "create %s: %s", dir,
                       strerror(errno));
        return;
    }
    (void)snprintf(path, sizeof path, "%s/%s.tar.gz", dir, id);
    memset(&err, 0, sizeof err);
    rv =
        jr_node_backup(ctx->node, path,
                       local != NULL && local->type == MSGPACK_OBJECT_BOOLEAN &&
                               local->via.boolean
                           ? JR_BACKUP_LOCAL
                           : 0,
                       NULL, NULL, b, &err);
    if (rv != 0) {
        free(b);
        jd_api_reply_jr(reply, rv, err.message);
        return;
    }
    if (stat(path, &st) != 0) {
        free(b);
        jd_reply_error(reply, JD_CODE_INTERNAL, "stat %s: %s", path,
                       strerror(errno));
        return;
    }
    pthread_mutex_lock(&transfer_mutex);
    forget_locked();
    memcpy(transfer_id, id, sizeof transfer_id);
    (void)snprintf(transfer_path, sizeof transfer_path, "%s", path);
    pthread_mutex_unlock(&transfer_mutex);
    jd_reply_ok(reply, &pk);
    pack_info(&pk, id, (uint64_t)st.st_size, b);
    free(b);
}

static void op_read(const struct jd_request *req, msgpack_sbuffer *reply)
{
    char id[33], *buf;
    uint64_t offset;
    ssize_t n;
    msgpack_packer pk;
    int fd;
    if (jd_mp_copy_str(jd_mp_get(req->args, "id"), id, sizeof id) != 0 ||
        jd_mp_u64(jd_mp_get(req->args, "offset"), &offset) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "id and offset are required");
        return;
    }
    buf = malloc(CHUNK);
    if (buf == NULL) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        return;
    }
    pthread_mutex_lock(&transfer_mutex);
    if (strcmp(id, transfer_id) != 0) {
        pthread_mutex_unlock(&transfer_mutex);
        free(buf);
        jd_reply_error(reply, JD_CODE_NOT_FOUND,
                       "backup %s is gone: another backup replaced it; run "
                       "jaco backup again",
                       id);
        return;
    }
    fd = open(transfer_path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? pread(fd, buf, CHUNK, (off_t)offset) : -1;
    if (fd >= 0) {
        close(fd);
    }
    pthread_mutex_unlock(&transfer_mutex);
    if (n < 0) {
        free(buf);
        jd_reply_error(reply, JD_CODE_INTERNAL, "read backup: %s",
                       strerror(errno));
        return;
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 2);
    jd_mp_key(&pk, "data");
    msgpack_pack_bin(&pk, (size_t)n);
    msgpack_pack_bin_body(&pk, buf, (size_t)n);
    jd_mp_key(&pk, "eof");
    if (n < (ssize_t)CHUNK) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    free(buf);
}

static void op_done(const struct jd_request *req, msgpack_sbuffer *reply)
{
    char id[33];
    msgpack_packer pk;
    if (jd_mp_copy_str(jd_mp_get(req->args, "id"), id, sizeof id) != 0) {
        jd_reply_error(reply, JD_CODE_INVALID, "id is required");
        return;
    }
    pthread_mutex_lock(&transfer_mutex);
    if (strcmp(id, transfer_id) == 0) {
        forget_locked();
    }
    pthread_mutex_unlock(&transfer_mutex);
    jd_reply_ok(reply, &pk);
    msgpack_pack_nil(&pk);
}

void jd_api_backup_cleanup(const char *data_dir)
{
    char dir[4200], path[4500];
    struct dirent *e;
    DIR *d;
    (void)snprintf(dir, sizeof dir, "%s/backup-transfer", data_dir);
    d = opendir(dir);
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            (void)snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            (void)unlink(path);
        }
    }
    closedir(d);
}

bool jd_api_backup(const struct jd_ctx *ctx,
                   const struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply)
{
    if (strncmp(req->op, "backup.", 7) != 0) {
        return false;
    }
    if (!client->local && !client->authenticated) {
        jd_reply_error(reply, JD_CODE_UNAUTHENTICATED,
                       "a backup holds the whole state: it needs the local "
                       "socket or an authenticated connection (jaco --server "
                       "HOST:PORT --secret-file FILE)");
        return true;
    }
    if (strcmp(req->op, "backup.create") == 0) {
        op_create(ctx, req, reply);
    } else if (strcmp(req->op, "backup.read") == 0) {
        op_read(req, reply);
    } else if (strcmp(req->op, "backup.done") == 0) {
        op_done(req, reply);
    } else {
        jd_reply_error(reply, JD_CODE_UNKNOWN_OP, "unknown operation \"%s\"",
                       req->op);
    }
    return true;
}
