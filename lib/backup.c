/* backup.c: online backups of a running node (jr_node_backup), their
 * verification (jr_backup_verify) and the offline restore that turns a
 * fresh data directory into a single-voter cluster holding the backup
 * (jr_backup_restore). The archive is a standard tar.gz written with
 * libarchive, so an operator can list and unpack it with tar; SHA-256
 * checksums (libsodium) cover every part. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "jointoken.h"
#include "jr_internal.h"
#include "metastore.h"
#include "snapstore.h"

#define KIND "jacoraft-backup"
#define DIR_NAME "jaco-backup/"
#define META_NAME DIR_NAME "backup.json"
#define STATE_NAME DIR_NAME "state"
#define SUMS_NAME DIR_NAME "SHA256SUMS"
#define IO_CHUNK (1u << 20)
#define META_MAX (1u << 20) /* backup.json is a few KiB */

/* ---- metadata ---- */

static void sha256_hex(crypto_hash_sha256_state *st, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(st, d);
    (void)sodium_bin2hex(out, 65, d, sizeof d);
}

static const char *role_text(int role)
{
    return role == JR_ROLE_VOTER     ? "voter"
           : role == JR_ROLE_STANDBY ? "standby"
                                     : "spare";
}

static int role_of_text(const char *s)
{
    return strcmp(s, "voter") == 0     ? JR_ROLE_VOTER
           : strcmp(s, "standby") == 0 ? JR_ROLE_STANDBY
           : strcmp(s, "spare") == 0   ? JR_ROLE_SPARE
                                       : -1;
}

static char *meta_encode(const struct jr_backup_info *b)
{
    json_t *root = json_object(), *members = json_array(), *state;
    char created[32];
    struct tm tm;
    time_t t = (time_t)b->created;
    unsigned i;
    char *text;
    (void)gmtime_r(&t, &tm);
    (void)strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (i = 0; i < b->n_members; i++) {
        const struct jr_backup_member *m = &b->members[i];
        json_array_append_new(
            members, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)m->id,
                               "name", m->name, "address", m->address, "role",
                               role_text(m->role)));
    }
    state = json_pack("{s:s,s:I,s:s}", "file", "state", "size",
                      (json_int_t)b->state_size, "sha256", b->state_sha256);
    json_object_set_new(root, "kind", json_string(KIND));
    json_object_set_new(root, "format", json_integer(b->format));
    json_object_set_new(root, "software", json_string(b->software));
    json_object_set_new(root, "cluster_id", json_string(b->cluster_id));
    json_object_set_new(root, "incarnation", json_integer(b->incarnation));
    json_object_set_new(root, "index", json_integer((json_int_t)b->index));
    json_object_set_new(root, "term", json_integer((json_int_t)b->term));
    json_object_set_new(root, "created", json_string(created));
    json_object_set_new(root, "created_unix", json_integer(b->created));
    json_object_set_new(root, "source",
                        json_pack("{s:I,s:s}", "id", (json_int_t)b->source_id,
                                  "name", b->source_name));
    json_object_set_new(root, "members", members);
    json_object_set_new(root, "state", state);
    /* Key order as inserted: the file reads top-down like a report. */
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

static bool copy_str(json_t *o, const char *key, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL || strlen(s) >= size) {
        return false;
    }
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static bool get_u64(json_t *o, const char *key, uint64_t *v)
{
    json_t *x = json_object_get(o, key);
    if (!json_is_integer(x) || json_integer_value(x) < 0) {
        return false;
    }
    *v = (uint64_t)json_integer_value(x);
    return true;
}

/* Parse backup.json. The format is checked before anything else, so that
 * a newer archive is refused as such rather than as corrupt. */
static int meta_decode(const char *text,
                       size_t len,
                       struct jr_backup_info *b,
                       char *msg)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr), *members, *state, *src;
    uint64_t v;
    size_t i;
    int rv = JR_ECORRUPT;
    memset(b, 0, sizeof *b);
    if (root == NULL || !json_is_object(root)) {
        jr__errf(msg, "%s is not valid JSON (line %d: %s)", META_NAME,
                 jerr.line, jerr.text);
        goto out;
    }
    if (json_string_value(json_object_get(root, "kind")) == NULL ||
        strcmp(json_string_value(json_object_get(root, "kind")), KIND) != 0) {
        jr__errf(msg, "%s is not a jacoraft backup's metadata", META_NAME);
        goto out;
    }
    if (!get_u64(root, "format", &v)) {
        jr__errf(msg, "%s: no format version", META_NAME);
        goto out;
    }
    b->format = (uint32_t)v;
    (void)copy_str(root, "software", b->software, sizeof b->software);
    if (v != JR_BACKUP_FORMAT) {
        jr__errf(msg,
                 "backup format %" PRIu64
                 " (written by %s); this jacoraft "
                 "(%s) reads format %d only: restore it with the version "
                 "that wrote it",
                 v, b->software[0] != '\0' ? b->software : "an unknown version",
                 jr_version(), JR_BACKUP_FORMAT);
        rv = JR_EVERSION;
        goto out;
    }
    state = json_object_get(root, "state");
    src = json_object_get(root, "source");
    members = json_object_get(root, "members");
    /* The cluster id goes into the restored node's identity file, which
     * takes lowercase hex only. */
    if (!copy_str(root, "cluster_id", b->cluster_id, sizeof b->cluster_id) ||
        strlen(b->cluster_id) != JR__CLUSTER_ID_LEN ||
        strspn(b->cluster_id, "0123456789abcdef") != JR__CLUSTER_ID_LEN ||
        !get_u64(root, "incarnation", &v) || v > UINT32_MAX ||
        !get_u64(root, "index", &b->index) || b->index == 0 ||
        !get_u64(root, "term", &b->term) ||
        !get_u64(root, "created_unix", &v) || !json_is_object(state) ||
        !get_u64(state, "size", &b->state_size) ||
        !copy_str(state, "sha256", b->state_sha256, sizeof b->state_sha256) ||
        strlen(b->state_sha256) != 64 || !json_is_array(members) ||
        json_array_size(members) == 0 ||
        json_array_size(members) > JR_BACKUP_MAX_MEMBERS) {
        jr__errf(msg,
                 "%s lacks a field or has one out of range (cluster_id, "
                 "incarnation, index, term, created_unix, state, members)",
                 META_NAME);
        goto out;
    }
    b->created = (int64_t)v;
    (void)get_u64(root, "incarnation", &v);
    b->incarnation = (uint32_t)v;
    if (json_is_object(src)) {
        (void)get_u64(src, "id", &b->source_id);
        (void)copy_str(src, "name", b->source_name, sizeof b->source_name);
    }
    for (i = 0; i < json_array_size(members); i++) {
        json_t *m = json_array_get(members, i);
        struct jr_backup_member *d = &b->members[i];
        char role[16];
        if (!json_is_object(m) || !get_u64(m, "id", &d->id) || d->id == 0 ||
            !copy_str(m, "address", d->address, sizeof d->address) ||
            !copy_str(m, "role", role, sizeof role) ||
            (d->role = role_of_text(role)) < 0) {
            jr__errf(msg, "%s: member %zu is malformed", META_NAME, i + 1);
            goto out;
        }
        (void)copy_str(m, "name", d->name, sizeof d->name);
    }
    b->n_members = (unsigned)i;
    rv = 0;
out:
    json_decref(root);
    return rv;
}

/* ---- writing ---- */

struct capture {
    struct jr__op op;
    struct jr__waiter w;
    struct jr_backup_info *info;
    struct jr_snapshot_writer *state; /* out */
};

/* On the loop thread: the state at the applied index, as a snapshot of
 * raft's would hold it, and the metadata that goes with it. */
static void capture_run(struct jr_node *n, struct jr__op *op)
{
    struct capture *c = (struct capture *)op;
    struct jr_backup_info *b = c->info;
    const struct raft_configuration *conf = &n->raft.configuration;
    char msg[JR_ERRMSG_SIZE];
    unsigned i;
    int rv;
    if (n->cluster_id[0] == '\0' || n->raft.last_applied == 0) {
        jr__waiter_finish(&c->w, JR_ESTATE,
                          "backup: this node is not a member of a cluster "
                          "yet");
        return;
    }
    rv = jr__snapshot_capture(n, &c->state);
    if (rv != 0) {
        jr__errf(msg, "backup: the state machine failed to snapshot (%d)", rv);
        jr__waiter_finish(&c->w, JR_ESNAPSHOT, msg);
        return;
    }
    b->format = JR_BACKUP_FORMAT;
    (void)snprintf(b->software, sizeof b->software, "jacoraft %s",
                   jr_version());
    (void)snprintf(b->cluster_id, sizeof b->cluster_id, "%s", n->cluster_id);
    b->incarnation = n->meta.incarnation;
    b->index = n->raft.last_applied;
    /* raft 0.15 gives no term of an applied entry; the current term is
     * never lower, and the restored cluster starts from it. */
    b->term = n->raft.current_term;
    b->created = (int64_t)time(NULL);
    b->source_id = n->cfg.id;
    (void)snprintf(b->source_name, sizeof b->source_name, "%s", n->name);
    for (i = 0; i < conf->n && i < JR_BACKUP_MAX_MEMBERS; i++) {
        struct jr_backup_member *m = &b->members[i];
        m->id = conf->servers[i].id;
        (void)snprintf(m->name, sizeof m->name, "%s",
                       jr__contact_name_of(n, m->id));
        (void)snprintf(m->address, sizeof m->address, "%s",
                       conf->servers[i].address);
        m->role = conf->servers[i].role;
    }
    b->n_members = i;
    jr__waiter_finish(&c->w, 0, NULL);
}

struct writer {
    struct archive *a;
    const char *tmp;
    jr_progress_cb progress;
    void *progress_data;
    uint64_t done, total;
};

static int archive_failed(struct writer *w,
                          const char *what,
                          struct jr_error *err)
{
    int e = archive_errno(w->a);
    int code = e == ENOSPC || e == EDQUOT ? JR_ENOSPACE : JR_EIO;
    return jr__error_set(err, code, "backup: %s %s: %s", what, w->tmp,
                         archive_error_string(w->a) != NULL
                             ? archive_error_string(w->a)
                             : strerror(e));
}

static int put_entry(struct writer *w,
                     const char *name,
                     const struct raft_buffer *bufs,
                     unsigned n,
                     int64_t mtime,
                     struct jr_error *err)
{
    struct archive_entry *e = archive_entry_new();
    uint64_t size = 0;
    unsigned i;
    if (e == NULL) {
        return jr__error_set(err, JR_ENOMEM, "backup: out of memory");
    }
    for (i = 0; i < n; i++) {
        size += bufs[i].len;
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, (time_t)mtime, 0);
    if (archive_write_header(w->a, e) != ARCHIVE_OK) {
        archive_entry_free(e);
        return archive_failed(w, "write", err);
    }
    archive_entry_free(e);
    for (i = 0; i < n; i++) {
        const char *p = bufs[i].base;
        size_t left = bufs[i].len;
        while (left > 0) {
            size_t k = left < IO_CHUNK ? left : IO_CHUNK;
            if (archive_write_data(w->a, p, k) != (la_ssize_t)k) {
                return archive_failed(w, "write", err);
            }
            p += k;
            left -= k;
            w->done += k;
            if (w->progress != NULL) {
                w->progress(w->progress_data, w->done, w->total);
            }
        }
    }
    return 0;
}

static int write_archive(const char *path,
                         struct jr_backup_info *b,
                         const struct raft_buffer *state,
                         unsigned n_state,
                         jr_progress_cb progress,
                         void *progress_data,
                         struct jr_error *err)
{
    char tmp[4096], dir[4096], sums[256], *meta = NULL, meta_sha[65];
    crypto_hash_sha256_state st;
    struct writer w;
    struct raft_buffer buf;
    unsigned i;
    int fd, rv, e;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return jr__error_set(err, JR_EINVAL, "backup: path too long");
    }
    crypto_hash_sha256_init(&st);
    b->state_size = 0;
    for (i = 0; i < n_state; i++) {
        crypto_hash_sha256_update(&st, state[i].base, state[i].len);
        b->state_size += state[i].len;
    }
    sha256_hex(&st, b->state_sha256);
    meta = meta_encode(b);
    if (meta == NULL) {
        return jr__error_set(err, JR_ENOMEM, "backup: out of memory");
    }
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)meta, strlen(meta));
    sha256_hex(&st, meta_sha);
    (void)snprintf(sums, sizeof sums, "%s  backup.json\n%s  state\n", meta_sha,
                   b->state_sha256);

    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        free(meta);
        return jr__error_set(err, jr__err_from_errno(e),
                             "backup: create %s: %s", tmp, strerror(e));
    }
    memset(&w, 0, sizeof w);
    w.tmp = tmp;
    w.progress = progress;
    w.progress_data = progress_data;
    w.total = b->state_size;
    w.a = archive_write_new();
    if (w.a == NULL || archive_write_add_filter_gzip(w.a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
        archive_write_open_fd(w.a, fd) != ARCHIVE_OK) {
        rv = w.a != NULL ? archive_failed(&w, "open", err)
                         : jr__error_set(err, JR_ENOMEM, "backup: no memory");
        goto fail;
    }
    buf.base = meta;
    buf.len = strlen(meta);
    rv = put_entry(&w, META_NAME, &buf, 1, b->created, err);
    if (rv == 0) {
        rv = put_entry(&w, STATE_NAME, state, n_state, b->created, err);
    }
    if (rv == 0) {
        buf.base = sums;
        buf.len = strlen(sums);
        rv = put_entry(&w, SUMS_NAME, &buf, 1, b->created, err);
    }
    if (rv == 0 && archive_write_close(w.a) != ARCHIVE_OK) {
        rv = archive_failed(&w, "finish", err);
    }
    if (rv != 0) {
        goto fail;
    }
    archive_write_free(w.a);
    w.a = NULL;
    if (fsync(fd) != 0) {
        e = errno;
        rv = jr__error_set(err, jr__err_from_errno(e), "backup: fsync %s: %s",
                           tmp, strerror(e));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        rv = jr__error_set(err, jr__err_from_errno(e), "backup: close %s: %s",
                           tmp, strerror(e));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        e = errno;
        rv = jr__error_set(err, jr__err_from_errno(e),
                           "backup: rename %s to %s: %s", tmp, path,
                           strerror(e));
        goto fail;
    }
    jr__parent_dir(path, dir, sizeof dir);
    if ((e = jr__fsync_dir(dir)) != 0) {
        free(meta);
        return jr__error_set(err, jr__err_from_errno(e),
                             "backup: fsync directory %s: %s", dir,
                             strerror(e));
    }
    free(meta);
    return 0;

fail:
    if (w.a != NULL) {
        archive_write_free(w.a);
    }
    if (fd >= 0) {
        close(fd);
    }
    (void)unlink(tmp);
    free(meta);
    return rv;
}

int jr_node_backup(struct jr_node *n,
                   const char *path,
                   unsigned flags,
                   jr_progress_cb progress,
                   void *progress_data,
                   struct jr_backup_info *info,
                   struct jr_error *err)
{
    struct capture c;
    struct jr_backup_info *b;
    int rv;
    if (n == NULL || path == NULL || path[0] == '\0') {
        return jr__error_set(err, JR_EINVAL, "backup: bad arguments");
    }
    if (jr__on_loop_thread(n)) {
        return jr__error_set(err, JR_EDEADLK, "backup: on the loop thread");
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return jr__error_set(err, JR_ENOMEM, "backup: out of memory");
    }
    if ((flags & JR_BACKUP_LOCAL) == 0) {
        rv = jr_barrier_sync(n, 0, err);
        if (rv != 0) {
            free(b);
            return rv;
        }
    }
    memset(&c, 0, sizeof c);
    jr__waiter_init(&c.w);
    c.op.run = capture_run;
    c.info = b;
    rv = jr__post(n, &c.op);
    if (rv == 0) {
        (void)jr__waiter_wait(&c.w, 0);
        rv = c.w.status;
        if (rv != 0) {
            jr__error_set(err, rv, "%s", c.w.errmsg);
        }
    } else {
        jr__error_set(err, rv, "backup: the node is not running");
    }
    jr__waiter_close(&c.w);
    if (rv == 0) {
        const struct raft_buffer *bufs;
        unsigned n_bufs = jr__snapshot_buffers(c.state, &bufs);
        rv = write_archive(path, b, bufs, n_bufs, progress, progress_data, err);
    }
    jr__snapshot_writer_free(c.state);
    if (rv == 0) {
        jr__infof(n,
                  "backup at index %" PRIu64 " (%" PRIu64
                  " bytes of state) written to %s",
                  b->index, b->state_size, path);
        if (info != NULL) {
            *info = *b;
        }
    }
    free(b);
    return rv;
}

/* ---- reading ---- */

struct reader {
    const char *path;
    struct jr_backup_info *info;
    bool keep_state;          /* restore: hold the state in memory */
    struct raft_buffer state; /* raft_malloc'd */
    jr_progress_cb progress;
    void *progress_data;
};

static int damaged(struct archive *a, const char *path, struct jr_error *err)
{
    const char *why = archive_error_string(a);
    if (archive_errno(a) == ENOENT) {
        return jr__error_set(err, JR_ENOTFOUND, "%s: no such file", path);
    }
    return jr__error_set(err, JR_ECORRUPT,
                         "%s is truncated or damaged: %s; take another "
                         "backup, or use an older archive",
                         path, why != NULL ? why : "read error");
}

static int not_a_backup(struct archive *a,
                        const char *path,
                        struct jr_error *err)
{
    const char *why = archive_error_string(a);
    if (why != NULL && strstr(why, "runcated") != NULL) {
        /* A gzip stream cut before the first tar header. */
        return damaged(a, path, err);
    }
    return jr__error_set(err, JR_ECORRUPT,
                         "%s is not a jacoraft backup (not a readable tar.gz "
                         "file: %s)",
                         path, why != NULL ? why : "read error");
}

/* Read the entry's data, hashing it (and keeping it when asked). */
static int read_entry(struct archive *a,
                      struct reader *r,
                      uint64_t size,
                      char *keep,
                      char sha[65],
                      struct jr_error *err)
{
    crypto_hash_sha256_state st;
    char *chunk = malloc(IO_CHUNK);
    uint64_t got = 0;
    if (chunk == NULL) {
        return jr__error_set(err, JR_ENOMEM, "out of memory");
    }
    crypto_hash_sha256_init(&st);
    for (;;) {
        la_ssize_t k = archive_read_data(a, chunk, IO_CHUNK);
        if (k < 0) {
            free(chunk);
            return damaged(a, r->path, err);
        }
        if (k == 0) {
            break;
        }
        if (got + (uint64_t)k > size) {
            free(chunk);
            return jr__error_set(err, JR_ECORRUPT,
                                 "%s: an entry is longer than its header "
                                 "says",
                                 r->path);
        }
        crypto_hash_sha256_update(&st, (unsigned char *)chunk, (size_t)k);
        if (keep != NULL) {
            memcpy(keep + got, chunk, (size_t)k);
        }
        got += (uint64_t)k;
        if (r->progress != NULL && keep != NULL) {
            r->progress(r->progress_data, got, size);
        }
    }
    free(chunk);
    if (got != size) {
        return jr__error_set(err, JR_ECORRUPT,
                             "%s is truncated: an entry holds %" PRIu64
                             " of its %" PRIu64 " bytes",
                             r->path, got, size);
    }
    sha256_hex(&st, sha);
    return 0;
}

/* Walk the archive: backup.json first, then state, then SHA256SUMS, and
 * nothing else; every checksum must match. */
static int read_archive(struct reader *r, struct jr_error *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    char msg[JR_ERRMSG_SIZE], meta_sha[65], state_sha[65], sums_sha[65];
    char *meta = NULL, *sums = NULL, expect[256];
    char version_msg[JR_ERRMSG_SIZE];
    unsigned seen = 0;
    bool other_version = false;
    int rv = 0, ar;

    if (a == NULL) {
        return jr__error_set(err, JR_ENOMEM, "out of memory");
    }
    (void)archive_read_support_filter_gzip(a);
    (void)archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, r->path, 1 << 16) != ARCHIVE_OK) {
        rv = archive_errno(a) == ENOENT ? damaged(a, r->path, err)
                                        : not_a_backup(a, r->path, err);
        goto out;
    }
    while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        la_int64_t size = archive_entry_size(e);
        if (name == NULL || size < 0) {
            rv = jr__error_set(err, JR_ECORRUPT,
                               "%s: an entry has no name "
                               "or size",
                               r->path);
            goto out;
        }
        if (seen == 0 && strcmp(name, META_NAME) != 0) {
            rv = jr__error_set(err, JR_ECORRUPT,
                               "%s is not a jacoraft backup: it starts with "
                               "\"%s\", not %s",
                               r->path, name, META_NAME);
            goto out;
        }
        if (seen == 0) {
            if ((uint64_t)size > META_MAX ||
                (meta = malloc((size_t)size + 1)) == NULL) {
                rv = jr__error_set(err, JR_ECORRUPT, "%s: %s is %lld bytes",
                                   r->path, META_NAME, (long long)size);
                goto out;
            }
            rv = read_entry(a, r, (uint64_t)size, meta, meta_sha, err);
            if (rv != 0) {
                goto out;
            }
            meta[size] = '\0';
            rv = meta_decode(meta, (size_t)size, r->info, msg);
            if (rv == JR_EVERSION) {
                /* Said only once the checksums hold: a flipped digit in
                 * the format is damage, not another version. */
                jr__errf(version_msg, "%s: %s", r->path, msg);
                other_version = true;
                rv = 0;
            } else if (rv != 0) {
                rv = jr__error_set(err, rv, "%s: %s", r->path, msg);
                goto out;
            }
        } else if (seen == 1 && strcmp(name, STATE_NAME) == 0) {
            if (!other_version && (uint64_t)size != r->info->state_size) {
                rv = jr__error_set(err, JR_ECORRUPT,
                                   "%s: the state is %lld bytes, %s says "
                                   "%" PRIu64,
                                   r->path, (long long)size, META_NAME,
                                   r->info->state_size);
                goto out;
            }
            if (r->keep_state && !other_version) {
                r->state.len = (size_t)size;
                r->state.base = raft_malloc(size > 0 ? (size_t)size : 1);
                if (r->state.base == NULL) {
                    rv = jr__error_set(err, JR_ENOMEM,
                                       "restore: no memory for %lld bytes of "
                                       "state",
                                       (long long)size);
                    goto out;
                }
            }
            rv =
                read_entry(a, r, (uint64_t)size, r->state.base, state_sha, err);
            if (rv != 0) {
                goto out;
            }
            if (!other_version &&
                strcmp(state_sha, r->info->state_sha256) != 0) {
                rv = jr__error_set(err, JR_ECORRUPT,
                                   "%s: the state's SHA-256 is %s, %s says "
                                   "%s: the archive is damaged",
                                   r->path, state_sha, META_NAME,
                                   r->info->state_sha256);
                goto out;
            }
        } else if (seen == 2 && strcmp(name, SUMS_NAME) == 0) {
            if (size > 1024 || (sums = malloc((size_t)size + 1)) == NULL) {
                rv = jr__error_set(err, JR_ECORRUPT, "%s: %s is %lld bytes",
                                   r->path, SUMS_NAME, (long long)size);
                goto out;
            }
            rv = read_entry(a, r, (uint64_t)size, sums, sums_sha, err);
            if (rv != 0) {
                goto out;
            }
            sums[size] = '\0';
            (void)snprintf(expect, sizeof expect,
                           "%s  backup.json\n%s  state\n", meta_sha, state_sha);
            if (strcmp(sums, expect) != 0) {
                rv = jr__error_set(err, JR_ECORRUPT,
                                   "%s: %s does not match the archive's "
                                   "contents: it is damaged",
                                   r->path, SUMS_NAME);
                goto out;
            }
        } else if (other_version) {
            break; /* another layout: the version is what to say */
        } else {
            rv = jr__error_set(err, JR_ECORRUPT,
                               "%s: unexpected entry \"%s\" (a backup holds "
                               "%s, %s and %s, in that order)",
                               r->path, name, META_NAME, STATE_NAME, SUMS_NAME);
            goto out;
        }
        seen++;
    }
    if (other_version && (ar == ARCHIVE_EOF || ar == ARCHIVE_OK)) {
        rv = jr__error_set(err, JR_EVERSION, "%s", version_msg);
        goto out;
    }
    if (ar != ARCHIVE_EOF && seen == 0) {
        rv = not_a_backup(a, r->path, err);
        goto out;
    }
    if (ar != ARCHIVE_EOF) {
        rv = damaged(a, r->path, err);
        goto out;
    }
    if (seen < 3) {
        rv = jr__error_set(err, JR_ECORRUPT, "%s is %s: %s is missing", r->path,
                           seen == 0 ? "not a jacoraft backup" : "truncated",
                           seen == 0   ? META_NAME
                           : seen == 1 ? STATE_NAME
                                       : SUMS_NAME);
        goto out;
    }
out:
    free(meta);
    free(sums);
    archive_read_free(a);
    return rv;
}

/* libarchive stops reading at the tar end-of-archive blocks and leaves the
 * rest of the gzip stream, its CRC-32 and length trailer included,
 * unread: a flipped bit there would go unseen. Read the whole stream with
 * zlib, which checks the trailer. */
static int gzip_check(const char *path, struct jr_error *err)
{
    gzFile g = gzopen(path, "rb");
    char *buf;
    int n, zerr = Z_OK;
    const char *why;
    if (g == NULL) {
        return jr__error_set(err, JR_EIO, "%s: cannot open: %s", path,
                             strerror(errno));
    }
    buf = malloc(IO_CHUNK);
    if (buf == NULL) {
        gzclose(g);
        return jr__error_set(err, JR_ENOMEM, "out of memory");
    }
    while ((n = gzread(g, buf, IO_CHUNK)) > 0) {
    }
    why = gzerror(g, &zerr);
    free(buf);
    if (n < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
        jr__error_set(err, JR_ECORRUPT,
                      "%s is truncated or damaged: gzip stream: %s; take "
                      "another backup, or use an older archive",
                      path, why != NULL ? why : "read error");
        gzclose(g);
        return JR_ECORRUPT;
    }
    if (gzclose(g) != Z_OK) {
        return jr__error_set(err, JR_ECORRUPT,
                             "%s is damaged: its gzip trailer does not match",
                             path);
    }
    return 0;
}

int jr_backup_verify(const char *path,
                     struct jr_backup_info *info,
                     struct jr_error *err)
{
    struct jr_backup_info *b;
    struct reader r;
    struct stat st;
    int rv;
    if (path == NULL) {
        return jr__error_set(err, JR_EINVAL, "verify: no file");
    }
    if (stat(path, &st) != 0) {
        return jr__error_set(err, errno == ENOENT ? JR_ENOTFOUND : JR_EIO,
                             "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return jr__error_set(err, JR_ECORRUPT, "%s is not a regular file",
                             path);
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return jr__error_set(err, JR_ENOMEM, "verify: out of memory");
    }
    memset(&r, 0, sizeof r);
    r.path = path;
    r.info = b;
    rv = read_archive(&r, err);
    if (rv == 0) {
        rv = gzip_check(path, err);
    }
    if (rv == 0 && info != NULL) {
        *info = *b;
    }
    free(b);
    return rv;
}

/* ---- restore ---- */

/* Anything but the lock file (and a filesystem's lost+found) makes the
 * directory non-empty. */
static int dir_entries(const char *dir, bool *empty, struct jr_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *empty = true;
    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        return jr__error_set(err, jr__err_from_errno(errno), "restore: %s: %s",
                             dir, strerror(errno));
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strcmp(e->d_name, "LOCK") != 0 &&
            strcmp(e->d_name, "lost+found") != 0) {
            *empty = false;
        }
    }
    closedir(d);
    return 0;
}

/* Move everything but the lock into <dir>/before-restore-<time>/. */
static int move_aside(const char *dir,
                      char *aside,
                      size_t size,
                      struct jr_error *err)
{
    DIR *d;
    struct dirent *e;
    int rv = 0;
    (void)snprintf(aside, size, "%s/before-restore-%ld", dir, (long)time(NULL));
    if (mkdir(aside, 0700) != 0) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "restore: create %s: %s", aside, strerror(errno));
    }
    d = opendir(dir);
    if (d == NULL) {
        return jr__error_set(err, jr__err_from_errno(errno), "restore: %s: %s",
                             dir, strerror(errno));
    }
    while (rv == 0 && (e = readdir(d)) != NULL) {
        char from[4096], to[8192];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "LOCK") == 0 ||
            strcmp(e->d_name, "lost+found") == 0 ||
            strcmp(aside + strlen(dir) + 1, e->d_name) == 0) {
            continue;
        }
        (void)snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        (void)snprintf(to, sizeof to, "%s/%s", aside, e->d_name);
        if (rename(from, to) != 0) {
            rv = jr__error_set(err, jr__err_from_errno(errno),
                               "restore: move %s aside: %s", from,
                               strerror(errno));
        }
    }
    closedir(d);
    if (rv == 0 && (errno = jr__fsync_dir(dir)) != 0) {
        rv = jr__error_set(err, jr__err_from_errno(errno),
                           "restore: fsync %s: %s", dir, strerror(errno));
    }
    return rv;
}

static int sentinel_create(const char *dir, struct jr_error *err)
{
    char path[4096];
    int fd, e = 0;
    (void)snprintf(path, sizeof path, "%s/%s", dir, JR__RESTORE_SENTINEL);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(fd) != 0) {
        e = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    if (e == 0) {
        e = jr__fsync_dir(dir);
    }
    if (e != 0) {
        return jr__error_set(err, jr__err_from_errno(e),
                             "restore: create %s: %s", path, strerror(e));
    }
    return 0;
}

/* Write the new node's files; the sentinel is there all along. */
static int restore_write(const struct jr_restore_opts *o,
                         const struct jr_backup_info *b,
                         const struct raft_buffer *state,
                         struct jr_error *err)
{
    char raft_dir[4096], path[4200], msg[JR_ERRMSG_SIZE];
    struct jr__snapshot_info snap;
    struct jr__raft_meta rmeta;
    struct jr__meta meta;
    struct jr_member member;
    unsigned char secret[JR__SECRET_LEN];
    int rv;

    (void)snprintf(raft_dir, sizeof raft_dir, "%s/raft", o->data_dir);
    if (mkdir(raft_dir, 0700) != 0) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "restore: create %s: %s", raft_dir,
                             strerror(errno));
    }
    memset(&snap, 0, sizeof snap);
    snap.index = b->index;
    snap.term = b->term;
    snap.conf_index = b->index;
    raft_configuration_init(&snap.conf);
    if (raft_configuration_add(&snap.conf, o->node_id, o->address,
                               RAFT_VOTER) != 0) {
        raft_configuration_close(&snap.conf);
        return jr__error_set(err, JR_ENOMEM, "restore: out of memory");
    }
    rv = jr__snapstore_put(raft_dir, &snap, state, 1, 1, msg);
    raft_configuration_close(&snap.conf);
    if (rv != 0) {
        return jr__error_set(err, rv, "restore: %s", msg);
    }
    rmeta.term = b->term;
    rmeta.vote = 0;
    rv = jr__metastore_store(raft_dir, &rmeta, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "restore: %s", msg);
    }
    if (o->secret != NULL) {
        memcpy(secret, o->secret, sizeof secret);
    } else if ((rv = jr__secret_generate(secret)) != 0) {
        return jr__error_set(err, rv, "restore: cannot generate a secret");
    }
    rv = jr__secret_save(o->data_dir, secret, msg);
    sodium_memzero(secret, sizeof secret);
    if (rv != 0) {
        return jr__error_set(err, rv, "restore: %s", msg);
    }
    memset(&meta, 0, sizeof meta);
    meta.node_id = o->node_id;
    memcpy(meta.cluster_id, b->cluster_id, sizeof meta.cluster_id);
    /* A new incarnation: hosts still holding the old cluster are refused
     * (jaco-recovery(7), split brain) until wiped and joined. */
    meta.incarnation = b->incarnation + 1;
    /* As if this node had bootstrapped a one-node cluster: a daemon whose
     * configuration says so (jacod's bootstrap = true) starts on it. */
    member.id = o->node_id;
    member.address = o->address;
    jr__members_digest(&member, 1, meta.bootstrap_digest);
    if (o->name != NULL) {
        (void)snprintf(meta.name, sizeof meta.name, "%s", o->name);
    }
    rv = jr__meta_store(o->data_dir, &meta, err);
    if (rv != 0) {
        return rv;
    }
    (void)snprintf(path, sizeof path, "%s/%s", o->data_dir,
                   JR__RESTORE_SENTINEL);
    if (unlink(path) != 0 || (errno = jr__fsync_dir(o->data_dir)) != 0) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "restore: remove %s: %s", path, strerror(errno));
    }
    return 0;
}

int jr_backup_restore(const char *path,
                      const struct jr_restore_opts *o,
                      struct jr_backup_info *info,
                      struct jr_error *err)
{
    struct jr_backup_info *b;
    struct reader r;
    char aside[4200];
    bool empty;
    int lock_fd = -1, rv;
    uint32_t a, p, q, s;
    unsigned port;

    if (path == NULL || o == NULL || o->data_dir == NULL || o->node_id == 0 ||
        o->address == NULL) {
        return jr__error_set(err, JR_EINVAL,
                             "restore: an archive, a data directory, a node "
                             "id and an address are required");
    }
    if (sscanf(o->address, "%u.%u.%u.%u:%u", &a, &p, &q, &s, &port) != 5 ||
        a > 255 || p > 255 || q > 255 || s > 255 || port == 0 || port > 65535) {
        return jr__error_set(err, JR_EINVAL,
                             "restore: address \"%s\" is not IPv4:port",
                             o->address);
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return jr__error_set(err, JR_ENOMEM, "restore: out of memory");
    }
    memset(&r, 0, sizeof r);
    r.path = path;
    r.info = b;
    r.keep_state = (o->flags & JR_RESTORE_DRY_RUN) == 0;
    r.progress = o->progress;
    r.progress_data = o->progress_data;
    /* Everything is read and checked before the directory is touched. */
    rv = read_archive(&r, err);
    if (rv == 0) {
        rv = gzip_check(path, err);
    }
    if (rv != 0) {
        goto out;
    }
    /* A running node first: that is what to say, also for a dry run. */
    rv = jr__datadir_probe_lock(o->data_dir, err);
    if (rv != 0) {
        goto out;
    }
    rv = dir_entries(o->data_dir, &empty, err);
    if (rv != 0) {
        goto out;
    }
    if (!empty && (o->flags & JR_RESTORE_FORCE) == 0) {
        rv = jr__error_set(err, JR_ENOTEMPTY,
                           "restore: %s is not empty: it may hold a node's "
                           "data; restore into an empty directory, or use "
                           "--force to move its contents aside",
                           o->data_dir);
        goto out;
    }
    if ((o->flags & JR_RESTORE_DRY_RUN) != 0) {
        goto out;
    }
    rv = jr__datadir_lock(o->data_dir, &lock_fd, err);
    if (rv != 0) {
        goto out;
    }
    if (!empty) {
        rv = move_aside(o->data_dir, aside, sizeof aside, err);
        if (rv != 0) {
            goto out;
        }
    }
    rv = sentinel_create(o->data_dir, err);
    if (rv == 0) {
        rv = restore_write(o, b, &r.state, err);
    }
out:
    jr__datadir_unlock(lock_fd);
    if (rv == 0 && info != NULL) {
        *info = *b;
    }
    raft_free(r.state.base);
    free(b);
    return rv;
}
