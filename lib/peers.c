/* peers.c: raft/peers.json (see peers.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "peers.h"

static int bad(char *errmsg,
               const char *path,
               unsigned elem,
               const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));

static int bad(char *errmsg,
               const char *path,
               unsigned elem,
               const char *fmt,
               ...)
{
    char detail[JR_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (elem > 0) {
        jr__errf(errmsg, "%s: element %u: %s", path, elem, detail);
    } else {
        jr__errf(errmsg, "%s: %s", path, detail);
    }
    return JR_EINVAL;
}

/* A decimal string of 1..20 digits that fits in 64 bits, > 0. */
static bool parse_id_string(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i, len = strlen(s);
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0')) {
        return false;
    }
    for (i = 0; i < len; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return v > 0;
}

static int parse_peer(json_t *o,
                      const char *path,
                      unsigned elem,
                      struct jr__peer *p,
                      char *errmsg)
{
    const char *key, *s;
    json_t *v;
    char msg[JR_ERRMSG_SIZE];
    bool have_id = false, have_address = false;

    if (!json_is_object(o)) {
        return bad(errmsg, path, elem,
                   "not an object (want {\"id\": ..., \"address\": ...})");
    }
    memset(p, 0, sizeof *p);
    p->role = RAFT_VOTER;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "id") == 0) {
            if (json_is_integer(v)) {
                if (json_integer_value(v) <= 0) {
                    return bad(errmsg, path, elem,
                               "\"id\": %lld is not a positive node id",
                               (long long)json_integer_value(v));
                }
                p->id = (uint64_t)json_integer_value(v);
            } else if (json_is_string(v)) {
                if (!parse_id_string(json_string_value(v), &p->id)) {
                    return bad(errmsg, path, elem,
                               "\"id\": \"%.40s\" is not a node id (1 to "
                               "18446744073709551615, decimal)",
                               json_string_value(v));
                }
            } else {
                return bad(errmsg, path, elem,
                           "\"id\": not an integer or a string of digits");
            }
            have_id = true;
        } else if (strcmp(key, "address") == 0) {
            struct sockaddr_in sa;
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                json_string_length(v) >= sizeof p->address) {
                return bad(errmsg, path, elem,
                           "\"address\": not a HOST:PORT string");
            }
            s = json_string_value(v);
            if (jr__parse_address(s, &sa, msg) != 0) {
                return bad(errmsg, path, elem, "\"address\": %s", msg);
            }
            (void)snprintf(p->address, sizeof p->address, "%s", s);
            have_address = true;
        } else if (strcmp(key, "role") == 0) {
            s = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(s, "voter") == 0) {
                p->role = RAFT_VOTER;
            } else if (strcmp(s, "standby") == 0) {
                p->role = RAFT_STANDBY;
            } else if (strcmp(s, "spare") == 0) {
                p->role = RAFT_SPARE;
            } else {
                return bad(errmsg, path, elem,
                           "\"role\": want \"voter\", \"standby\" or "
                           "\"spare\"");
            }
        } else if (strcmp(key, "name") == 0) {
            if (!json_is_string(v) || json_string_length(v) >= sizeof p->name) {
                return bad(errmsg, path, elem,
                           "\"name\": not a string of up to 63 bytes");
            }
            (void)snprintf(p->name, sizeof p->name, "%s", json_string_value(v));
        } else {
            return bad(errmsg, path, elem,
                       "unknown field \"%.40s\" (want id, address, role, "
                       "name)",
                       key);
        }
    }
    if (!have_id) {
        return bad(errmsg, path, elem, "\"id\" is missing");
    }
    if (!have_address) {
        return bad(errmsg, path, elem, "\"address\" is missing");
    }
    return 0;
}

int jr__peers_parse(const char *text,
                    size_t len,
                    const char *path,
                    struct jr__peers *out,
                    char *errmsg)
{
    struct jr__peers *tmp;
    json_error_t jerr;
    json_t *root;
    size_t i;
    int rv = 0;

    if (len > JR__PEERS_FILE_MAX) {
        return bad(errmsg, path, 0, "%zu bytes, more than %d", len,
                   JR__PEERS_FILE_MAX);
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return bad(errmsg, path, 0, "not valid JSON: line %d, column %d: %s",
                   jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_array(root) || json_array_size(root) == 0 ||
        json_array_size(root) > JR__PEERS_MAX) {
        json_decref(root);
        return bad(errmsg, path, 0,
                   "want a JSON array of 1 to %d servers, [{\"id\": ..., "
                   "\"address\": ...}, ...]",
                   JR__PEERS_MAX);
    }
    tmp = calloc(1, sizeof *tmp);
    if (tmp == NULL) {
        json_decref(root);
        return JR_ENOMEM;
    }
    for (i = 0; i < json_array_size(root) && rv == 0; i++) {
        rv = parse_peer(json_array_get(root, i), path, (unsigned)i + 1,
                        &tmp->p[i], errmsg);
    }
    if (rv == 0) {
        tmp->n = (unsigned)json_array_size(root);
        *out = *tmp;
    }
    free(tmp);
    json_decref(root);
    return rv;
}

int jr__peers_validate(const struct jr__peers *p,
                       uint64_t self_id,
                       const char *path,
                       char *errmsg)
{
    unsigned i, j, voters = 0;
    bool self = self_id == 0;
    for (i = 0; i < p->n; i++) {
        for (j = 0; j < i; j++) {
            if (p->p[i].id == p->p[j].id) {
                return bad(errmsg, path, 0,
                           "elements %u and %u have the same id %llu", j + 1,
                           i + 1, (unsigned long long)p->p[i].id);
            }
            if (strcmp(p->p[i].address, p->p[j].address) == 0) {
                return bad(errmsg, path, 0,
                           "elements %u and %u have the same address %s", j + 1,
                           i + 1, p->p[i].address);
            }
        }
        voters += p->p[i].role == RAFT_VOTER;
        self = self || p->p[i].id == self_id;
    }
    if (voters == 0) {
        return bad(errmsg, path, 0, "no voter: at least one is needed");
    }
    if (!self) {
        return bad(errmsg, path, 0,
                   "this node (id %llu) is not among the servers: every "
                   "survivor's file lists itself",
                   (unsigned long long)self_id);
    }
    return 0;
}

int jr__peers_read_file(const char *path, struct jr__peers *out, char *errmsg)
{
    char *buf;
    struct stat st;
    size_t got = 0;
    int fd, rv;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            jr__errf(errmsg, "%s does not exist", path);
            return JR_ENOTFOUND;
        }
        jr__errf(errmsg, "open %s: %s", path, strerror(errno));
        return jr__err_from_errno(errno);
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bad(errmsg, path, 0, "not a regular file");
    }
    if (st.st_size > JR__PEERS_FILE_MAX) {
        close(fd);
        return bad(errmsg, path, 0, "%lld bytes, more than %d",
                   (long long)st.st_size, JR__PEERS_FILE_MAX);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return JR_ENOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)k;
    }
    close(fd);
    rv = jr__peers_parse(buf, got, path, out, errmsg);
    free(buf);
    return rv;
}

static const char *role_name(int role)
{
    return role == RAFT_VOTER     ? "voter"
           : role == RAFT_STANDBY ? "standby"
                                  : "spare";
}

int jr__peers_format(const struct jr__peers *p, char **out, size_t *len)
{
    json_t *root = json_array();
    char id[24];
    unsigned i;
    if (root == NULL) {
        return JR_ENOMEM;
    }
    for (i = 0; i < p->n; i++) {
        json_t *o = json_object();
        (void)snprintf(id, sizeof id, "%llu", (unsigned long long)p->p[i].id);
        if (o == NULL || json_array_append_new(root, o) != 0 ||
            json_object_set_new(o, "id", json_string(id)) != 0 ||
            json_object_set_new(o, "address", json_string(p->p[i].address)) !=
                0 ||
            json_object_set_new(o, "role",
                                json_string(role_name(p->p[i].role))) != 0 ||
            (p->p[i].name[0] != '\0' &&
             json_object_set_new(o, "name", json_string(p->p[i].name)) != 0)) {
            json_decref(root);
            return JR_ENOMEM;
        }
    }
    *out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (*out == NULL) {
        return JR_ENOMEM;
    }
    *len = strlen(*out);
    return 0;
}

int jr__peers_write_file(const char *path,
                         const struct jr__peers *p,
                         char *errmsg)
{
    char tmp[4200], dir[4200], *text = NULL;
    size_t len;
    int fd, e, rv;
    rv = jr__peers_format(p, &text, &len);
    if (rv != 0) {
        jr__errf(errmsg, "%s: out of memory", path);
        return rv;
    }
    (void)snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)snprintf(dir, sizeof dir, "%s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        free(text);
        jr__errf(errmsg, "create %s: %s", tmp, strerror(e));
        return jr__err_from_errno(e);
    }
    e = jr__write_all(fd, text, len);
    if (e == 0) {
        e = jr__write_all(fd, "\n", 1);
    }
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
    }
    if (close(fd) != 0 && e == 0) {
        e = errno;
    }
    free(text);
    if (e == 0 && rename(tmp, path) != 0) {
        e = errno;
    }
    if (e == 0) {
        e = jr__fsync_dir(dirname(dir));
    }
    if (e != 0) {
        (void)unlink(tmp);
        jr__errf(errmsg, "write %s: %s", path, strerror(e));
        return jr__err_from_errno(e);
    }
    return 0;
}

int jr__peers_to_configuration(const struct jr__peers *p,
                               struct raft_configuration *conf)
{
    unsigned i;
    for (i = 0; i < p->n; i++) {
        if (raft_configuration_add(conf, p->p[i].id, p->p[i].address,
                                   p->p[i].role) != 0) {
            return JR_ENOMEM;
        }
    }
    return 0;
}
