/* datadir.c: the data directory's lock and the identity file that binds it
 * to one node and one cluster. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"

#define META_FILE "jacoraft.id"
#define LOCK_FILE "LOCK"
#define META_FORMAT 1

int jr__datadir_lock(const char *dir, int *fd, struct jr_error *err)
{
    char path[4096];
    int f;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return jr__error_set(err, jr__err_from_errno(errno),
                             "create data directory %s: %s", dir,
                             strerror(errno));
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, LOCK_FILE) >=
        (int)sizeof path) {
        return jr__error_set(err, JR_EINVAL, "data directory path too long");
    }
    f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        return jr__error_set(err, jr__err_from_errno(errno), "open %s: %s",
                             path, strerror(errno));
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK) {
            return jr__error_set(err, JR_ELOCKED,
                                 "data directory %s is locked by another "
                                 "process (is a node already running on it?)",
                                 dir);
        }
        return jr__error_set(err, jr__err_from_errno(e), "lock %s: %s", path,
                             strerror(e));
    }
    *fd = f;
    return 0;
}

int jr__datadir_probe_lock(const char *dir, struct jr_error *err)
{
    char path[4096];
    int f, rv = 0;
    (void)snprintf(path, sizeof path, "%s/%s", dir, LOCK_FILE);
    f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        return 0; /* no lock file: nobody ever ran on it */
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        rv = jr__error_set(err, JR_ELOCKED,
                           "data directory %s is locked by another process "
                           "(is a node already running on it?)",
                           dir);
    }
    close(f); /* releases the lock if we got it */
    return rv;
}

void jr__datadir_unlock(int fd)
{
    if (fd >= 0) {
        (void)flock(fd, LOCK_UN);
        (void)close(fd);
    }
}

static bool is_hex_id(const char *s)
{
    size_t i;
    if (strlen(s) != JR__CLUSTER_ID_LEN) {
        return false;
    }
    for (i = 0; i < JR__CLUSTER_ID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool jr__meta_name_ok(const char *name)
{
    size_t i;
    if (name[0] == '\0') {
        return false;
    }
    for (i = 0; name[i] != '\0'; i++) {
        if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The file is "key value" lines, so an operator can read it with cat. */
int jr__meta_parse(const char *text,
                   size_t len,
                   struct jr__meta *m,
                   char *errmsg)
{
    char line[256];
    size_t pos = 0;
    unsigned lineno = 0;
    bool have_format = false, have_id = false;
    struct jr__meta out;
    memset(&out, 0, sizeof out);
    while (pos < len) {
        size_t end = pos;
        char key[32], value[128];
        while (end < len && text[end] != '\n') {
            end++;
        }
        lineno++;
        if (end - pos >= sizeof line) {
            jr__errf(errmsg, "line %u too long", lineno);
            return JR_ECORRUPT;
        }
        memcpy(line, text + pos, end - pos);
        line[end - pos] = '\0';
        pos = end + 1;
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        value[0] = '\0';
        if (sscanf(line, "%31s %127s", key, value) < 1) {
            jr__errf(errmsg, "line %u: cannot parse", lineno);
            return JR_ECORRUPT;
        }
        if (strcmp(key, "format") == 0) {
            if (strcmp(value, "1") != 0) {
                jr__errf(errmsg, "line %u: unsupported format %s", lineno,
                         value);
                return JR_ECORRUPT;
            }
            have_format = true;
        } else if (strcmp(key, "node_id") == 0) {
            char *endp;
            errno = 0;
            out.node_id = strtoull(value, &endp, 10);
            /* strtoull accepts a sign ("-1" is ULLONG_MAX) and leading
             * blanks: only digits are an id. */
            if (errno != 0 || *endp != '\0' || out.node_id == 0 ||
                value[0] < '0' || value[0] > '9') {
                jr__errf(errmsg, "line %u: bad node_id '%s'", lineno, value);
                return JR_ECORRUPT;
            }
            have_id = true;
        } else if (strcmp(key, "incarnation") == 0) {
            char *endp;
            unsigned long long v;
            errno = 0;
            v = strtoull(value, &endp, 10);
            if (errno != 0 || *endp != '\0' || value[0] < '0' ||
                value[0] > '9' || v > UINT32_MAX) {
                jr__errf(errmsg, "line %u: bad incarnation '%s'", lineno,
                         value);
                return JR_ECORRUPT;
            }
            out.incarnation = (uint32_t)v;
        } else if (strcmp(key, "name") == 0) {
            /* Informational (jaco recover inspect): the id is what counts. */
            (void)snprintf(out.name, sizeof out.name, "%s", value);
        } else if (strcmp(key, "cluster_id") == 0 ||
                   strcmp(key, "bootstrap") == 0) {
            char *dst = key[0] == 'c' ? out.cluster_id : out.bootstrap_digest;
            if (value[0] != '\0' && !is_hex_id(value)) {
                jr__errf(errmsg, "line %u: bad %s '%s'", lineno, key, value);
                return JR_ECORRUPT;
            }
            memcpy(dst, value, strlen(value) + 1);
        } else {
            jr__errf(errmsg, "line %u: unknown key '%s'", lineno, key);
            return JR_ECORRUPT;
        }
    }
    if (!have_format || !have_id) {
        jr__errf(errmsg, "missing %s", !have_format ? "format" : "node_id");
        return JR_ECORRUPT;
    }
    *m = out;
    return 0;
}

int jr__meta_format(const struct jr__meta *m, char *buf, size_t size)
{
    int n =
        snprintf(buf, size,
                 "# jacoraft node identity: do not edit\n"
                 "format %d\nnode_id %" PRIu64
                 "\ncluster_id %s\n"
                 "bootstrap %s\nincarnation %" PRIu32 "\n%s%s%s",
                 META_FORMAT, m->node_id, m->cluster_id, m->bootstrap_digest,
                 m->incarnation, jr__meta_name_ok(m->name) ? "name " : "",
                 jr__meta_name_ok(m->name) ? m->name : "",
                 jr__meta_name_ok(m->name) ? "\n" : "");
    if (n < 0 || (size_t)n >= size) {
        return JR_EINVAL;
    }
    return n;
}

int jr__meta_load(const char *dir, struct jr__meta *m, struct jr_error *err)
{
    char path[4096], buf[1024], msg[JR_ERRMSG_SIZE];
    ssize_t n;
    int fd, rv;
    (void)snprintf(path, sizeof path, "%s/%s", dir, META_FILE);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return JR_ENOTFOUND;
        }
        return jr__error_set(err, jr__err_from_errno(errno), "open %s: %s",
                             path, strerror(errno));
    }
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        return jr__error_set(err, JR_EIO, "read %s: %s", path, strerror(errno));
    }
    rv = jr__meta_parse(buf, (size_t)n, m, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "identity file %s is corrupt: %s", path,
                             msg);
    }
    return 0;
}

int jr__write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void jr__parent_dir(const char *path, char *dir, size_t size)
{
    char *slash;
    (void)snprintf(dir, size, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        (void)snprintf(dir, size, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
}

int jr__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = 0;
    if (fd < 0) {
        return errno;
    }
    if (fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    return e;
}

/* A storage write: no such directory, the disk is full, or it failed. */
static int write_error(int e)
{
    return e == ENOENT                  ? JR_ENOTFOUND
           : e == ENOSPC || e == EDQUOT ? JR_ENOSPACE
                                        : JR_EIO;
}

int jr__write_file_atomic(const char *path,
                          const void *buf,
                          size_t len,
                          char *errmsg)
{
    char tmp[4200], dir[4096];
    const char *step;
    int fd, e = 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp ||
        strlen(path) >= sizeof dir) {
        jr__errf(errmsg, "%s: path too long", path);
        return JR_EINVAL;
    }
    jr__parent_dir(path, dir, sizeof dir);
    /* A temporary file left by a crash may have any mode or owner, or be a
     * link someone planted: start from a file O_EXCL proves we created. */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        e = errno;
        jr__errf(errmsg, "remove %s: %s", tmp, strerror(e));
        return write_error(e);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        jr__errf(errmsg, "create %s: %s", tmp, strerror(e));
        return write_error(e);
    }
    /* The umask can only take permissions away, and one that took the
     * owner's read bit would leave a file we cannot load: exactly 0600,
     * before any byte is in it. */
    step = "chmod";
    if (fchmod(fd, 0600) != 0) {
        e = errno;
    } else if ((e = jr__write_all(fd, buf, len)) != 0) {
        step = "write";
    } else if (fsync(fd) != 0) {
        step = "fsync";
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        step = "close";
        e = errno;
    }
    if (e == 0 && rename(tmp, path) != 0) {
        step = "rename";
        e = errno;
    }
    if (e != 0) {
        jr__errf(errmsg, "%s %s: %s", step, tmp, strerror(e));
        (void)unlink(tmp);
        return write_error(e);
    }
    /* The rename is durable once the directory is. */
    if ((e = jr__fsync_dir(dir)) != 0) {
        jr__errf(errmsg, "fsync directory %s after storing %s: %s", dir, path,
                 strerror(e));
        return write_error(e);
    }
    return 0;
}

/* Write to a temporary file, fsync, rename, fsync the directory: a crash
 * leaves the old identity or the new one, never a mix. */
int jr__meta_store(const char *dir,
                   const struct jr__meta *m,
                   struct jr_error *err)
{
    char path[4096], buf[1024], msg[JR_ERRMSG_SIZE];
    int len, rv;
    (void)snprintf(path, sizeof path, "%s/%s", dir, META_FILE);
    len = jr__meta_format(m, buf, sizeof buf);
    if (len < 0) {
        return jr__error_set(err, JR_EINVAL, "format identity");
    }
    rv = jr__write_file_atomic(path, buf, (size_t)len, msg);
    if (rv != 0) {
        return jr__error_set(err, rv, "store identity %s: %s", path, msg);
    }
    return 0;
}

static void hex_of(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void jr__cluster_id_random(char out[JR__CLUSTER_ID_LEN + 1])
{
    unsigned char bytes[JR__CLUSTER_ID_LEN / 2];
    if (uv_random(NULL, NULL, bytes, sizeof bytes, 0, NULL) != 0) {
        /* getrandom cannot fail once the pool is seeded; fall back on
         * time and pid rather than refusing to bootstrap. */
        uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        unsigned long long a = raft_digest("jacoraft", t);
        unsigned long long b = raft_digest("cluster", t + 1);
        memcpy(bytes, &a, 8);
        memcpy(bytes + 8, &b, 8);
    }
    hex_of(bytes, sizeof bytes, out);
}

static int member_cmp(const void *a, const void *b)
{
    const struct jr_member *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The id of a statically bootstrapped cluster must be the same on every
 * member without any communication, so it is a digest of the sorted list. */
void jr__members_digest(const struct jr_member *members,
                        unsigned n,
                        char out[JR__CLUSTER_ID_LEN + 1])
{
    struct jr_member sorted[64];
    char text[8192];
    size_t used = 0;
    unsigned i;
    unsigned char bytes[16];
    unsigned long long a, b;
    if (n > 64) {
        n = 64;
    }
    memcpy(sorted, members, n * sizeof *members);
    qsort(sorted, n, sizeof *sorted, member_cmp);
    for (i = 0; i < n && used < sizeof text; i++) {
        int k = snprintf(text + used, sizeof text - used, "%" PRIu64 "=%s,",
                         sorted[i].id, sorted[i].address);
        if (k < 0) {
            break;
        }
        used += (size_t)k;
    }
    text[used < sizeof text ? used : sizeof text - 1] = '\0';
    a = raft_digest(text, 0);
    b = raft_digest(text, 1);
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    hex_of(bytes, sizeof bytes, out);
}
