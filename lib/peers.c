/* peers.c: raft/peers.json, parsed strictly with jansson and written
 * atomically (see peers.h for the format). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jr_internal.h"
#include "peers.h"

#define ID_RANGE "1 to 18446744073709551615"
#define QUOTE_MAX 40 /* bytes of a value quoted in a message */
/* '"', QUOTE_MAX bytes escaped as \xNN at worst, '"', "...", NUL. */
#define QUOTE_SIZE (2 + 4 * QUOTE_MAX + 3 + 1)
#define ROLES "\"voter\", \"standby\" or \"spare\""

/* Every message starts with the file and, when there is one, the element:
 * "peers.json: element 2: ...". */
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
    /* Truncation of a diagnostic is acceptable; it stays terminated. */
    (void)vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (elem > 0) {
        jr__errf(errmsg, "%s: element %u: %s", path, elem, detail);
    } else {
        jr__errf(errmsg, "%s: %s", path, detail);
    }
    return JR_EINVAL;
}

/* s (len bytes) in double quotes for a message: at most QUOTE_MAX bytes,
 * then "..."; '"' and '\\' escaped, and every byte outside printable ASCII
 * as \xNN, so that the file cannot put control characters in a log. */
static const char *quote(const char *s, size_t len, char out[QUOTE_SIZE])
{
    size_t i, o = 0;
    out[o++] = '"';
    for (i = 0; i < len && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            (void)snprintf(out + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    out[o++] = '"';
    if (len > QUOTE_MAX) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static const char *quote_json(const json_t *v, char out[QUOTE_SIZE])
{
    return quote(json_string_value(v), json_string_length(v), out);
}

/* What a JSON value is, for "want ..." messages. */
static const char *kind(const json_t *v)
{
    switch (json_typeof(v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL: return "a real number";
        case JSON_TRUE:
        case JSON_FALSE: return "a boolean";
        case JSON_NULL: return "null";
    }
    return "a value of unknown type";
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past
 * U+10FFFF. jansson refuses anything else, in and out. */
static bool is_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0, k, n;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n) {
            return false;
        }
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

/* An id in a string: 1..20 decimal digits, no sign, no leading zero, at
 * most UINT64_MAX, not 0. Returns NULL with *out set, or why not. */
static const char *id_of_string(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (len == 0) {
        return "is empty (want a string of decimal digits)";
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return "is not a string of decimal digits";
        }
    }
    if (len == 1 && s[0] == '0') {
        return "is not a node id (want " ID_RANGE ")";
    }
    if (s[0] == '0') {
        return "has a leading zero";
    }
    if (len > 20) {
        return "is over 18446744073709551615";
    }
    for (i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return "is over 18446744073709551615";
        }
        v = v * 10 + d;
    }
    *out = v;
    return NULL;
}

/* An address: "A.B.C.D:PORT" with a port of 1..65535 in canonical
 * decimal, so that one server has one spelling (the duplicate check
 * compares text). jr__parse_address, which connects, has the last word on
 * the host. Returns NULL, or why not (into why). */
static const char *address_problem(const char *s, char *why, size_t size)
{
    char q[QUOTE_SIZE], msg[JR_ERRMSG_SIZE];
    struct sockaddr_in sa;
    size_t len = strlen(s), plen, i;
    const char *colon = strrchr(s, ':');
    unsigned long port = 0;
    (void)quote(s, len, q);
    if (len == 0) {
        (void)snprintf(why, size, "\"\" is empty (want HOST:PORT)");
        return why;
    }
    if (len >= JR__PEER_ADDRESS_SIZE) {
        (void)snprintf(why, size, "%s is longer than %d bytes", q,
                       JR__PEER_ADDRESS_SIZE - 1);
        return why;
    }
    if (colon == NULL) {
        (void)snprintf(why, size, "%s has no port (want HOST:PORT)", q);
        return why;
    }
    if (colon == s) {
        (void)snprintf(why, size, "%s has no host (want HOST:PORT)", q);
        return why;
    }
    plen = len - (size_t)(colon + 1 - s);
    for (i = 0; i < plen && i < 6; i++) {
        char c = colon[1 + i];
        if (c < '0' || c > '9') {
            break;
        }
        port = port * 10 + (unsigned long)(c - '0');
    }
    if (plen == 0 || plen > 5 || i < plen || colon[1] == '0' || port == 0 ||
        port > 65535) {
        (void)snprintf(why, size, "%s has a bad port (want 1 to 65535)", q);
        return why;
    }
    if (jr__parse_address(s, &sa, msg) != 0) {
        (void)snprintf(why, size,
                       "%s: the host is not an IPv4 address (want "
                       "A.B.C.D:PORT)",
                       q);
        return why;
    }
    return NULL;
}

static int parse_id(const json_t *v,
                    const char *path,
                    unsigned elem,
                    uint64_t *id,
                    char *errmsg)
{
    char q[QUOTE_SIZE];
    const char *why;
    if (json_is_integer(v)) {
        if (json_integer_value(v) <= 0) {
            return bad(errmsg, path, elem,
                       "\"id\": %" JSON_INTEGER_FORMAT
                       " is not a node id (want " ID_RANGE ")",
                       json_integer_value(v));
        }
        *id = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) {
        return bad(errmsg, path, elem,
                   "\"id\": %s (want an integer, or a string of decimal "
                   "digits)",
                   kind(v));
    }
    why = id_of_string(json_string_value(v), json_string_length(v), id);
    if (why != NULL) {
        return bad(errmsg, path, elem, "\"id\": %s %s", quote_json(v, q), why);
    }
    return 0;
}

static int parse_address(const json_t *v,
                         const char *path,
                         unsigned elem,
                         struct jr__peer *p,
                         char *errmsg)
{
    char why[JR_ERRMSG_SIZE];
    if (!json_is_string(v)) {
        return bad(errmsg, path, elem,
                   "\"address\": %s (want a string, HOST:PORT)", kind(v));
    }
    /* jansson refuses \u0000 (no JSON_ALLOW_NUL): the C string is all of
     * it. */
    if (address_problem(json_string_value(v), why, sizeof why) != NULL) {
        return bad(errmsg, path, elem, "\"address\": %s", why);
    }
    memcpy(p->address, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int parse_role(const json_t *v,
                      const char *path,
                      unsigned elem,
                      int *role,
                      char *errmsg)
{
    char q[QUOTE_SIZE];
    const char *s;
    if (!json_is_string(v)) {
        return bad(errmsg, path, elem, "\"role\": %s (want " ROLES ")",
                   kind(v));
    }
    s = json_string_value(v);
    if (strcmp(s, "voter") == 0) {
        *role = RAFT_VOTER;
    } else if (strcmp(s, "standby") == 0) {
        *role = RAFT_STANDBY;
    } else if (strcmp(s, "spare") == 0) {
        *role = RAFT_SPARE;
    } else {
        return bad(errmsg, path, elem, "\"role\": %s is not " ROLES,
                   quote_json(v, q));
    }
    return 0;
}

static int parse_peer(json_t *o,
                      const char *path,
                      unsigned elem,
                      struct jr__peer *p,
                      char *errmsg)
{
    char q[QUOTE_SIZE];
    const char *key;
    json_t *v;
    bool have_id = false, have_address = false;
    int rv;

    if (!json_is_object(o)) {
        return bad(errmsg, path, elem,
                   "%s, not an object (want {\"id\": ..., \"address\": "
                   "...})",
                   kind(o));
    }
    memset(p, 0, sizeof *p);
    p->role = RAFT_VOTER;
    /* jansson 2.14 keeps keys in insertion order, so the first bad field
     * of the text is the one named. */
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "id") == 0) {
            rv = parse_id(v, path, elem, &p->id, errmsg);
            have_id = true;
        } else if (strcmp(key, "address") == 0) {
            rv = parse_address(v, path, elem, p, errmsg);
            have_address = true;
        } else if (strcmp(key, "role") == 0) {
            rv = parse_role(v, path, elem, &p->role, errmsg);
        } else if (strcmp(key, "name") == 0) {
            if (!json_is_string(v)) {
                rv = bad(errmsg, path, elem, "\"name\": %s (want a string)",
                         kind(v));
            } else if (json_string_length(v) >= sizeof p->name) {
                rv = bad(errmsg, path, elem, "\"name\": longer than %d bytes",
                         JR__PEER_NAME_SIZE - 1);
            } else {
                memcpy(p->name, json_string_value(v), json_string_length(v));
                rv = 0;
            }
        } else {
            rv = bad(errmsg, path, elem,
                     "unknown field %s (want \"id\", \"address\", \"role\" "
                     "or \"name\")",
                     quote(key, strlen(key), q));
        }
        if (rv != 0) {
            return rv;
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

static int parse_json_error(const json_error_t *jerr,
                            const char *path,
                            char *errmsg)
{
    char text[sizeof jerr->text];
    size_t i;
    /* jansson's text quotes the file near the error ("near '...'"):
     * keep the file's control characters out of the log. */
    for (i = 0; i < sizeof text - 1 && jerr->text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)jerr->text[i];
        text[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    text[i] = '\0';
    switch (json_error_code(jerr)) {
        case json_error_out_of_memory:
            jr__errf(errmsg, "%s: out of memory", path);
            return JR_ENOMEM;
        case json_error_numeric_overflow:
            /* jansson's integers are signed 64-bit; most of jacod's ids
             * are not. */
            return bad(errmsg, path, 0,
                       "not valid JSON: line %d, column %d: %s (write ids "
                       "over 9223372036854775807 as strings)",
                       jerr->line, jerr->column, text);
        default:
            return bad(errmsg, path, 0,
                       "not valid JSON: line %d, column %d: %s", jerr->line,
                       jerr->column, text);
    }
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
    size_t i, n;
    int rv = 0;

    /* Bound jansson's work and memory before it sees the text. */
    if (len > JR__PEERS_FILE_MAX) {
        return bad(errmsg, path, 0, "%zu bytes, more than %d", len,
                   JR__PEERS_FILE_MAX);
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return parse_json_error(&jerr, path, errmsg);
    }
    if (!json_is_array(root)) {
        rv = bad(errmsg, path, 0,
                 "the top level is %s: want a JSON array of servers, "
                 "[{\"id\": ..., \"address\": ...}, ...]",
                 kind(root));
        goto err_root;
    }
    n = json_array_size(root);
    if (n == 0) {
        rv = bad(errmsg, path, 0,
                 "an empty array: want a JSON array of 1 to %d servers",
                 JR__PEERS_MAX);
        goto err_root;
    }
    if (n > JR__PEERS_MAX) {
        rv = bad(errmsg, path, 0, "%zu servers, at most %d", n, JR__PEERS_MAX);
        goto err_root;
    }
    /* 12 KiB: too much for the stack of a thread that may be small. */
    if ((tmp = calloc(1, sizeof *tmp)) == NULL) {
        jr__errf(errmsg, "%s: out of memory", path);
        rv = JR_ENOMEM;
        goto err_root;
    }
    for (i = 0; i < n; i++) {
        rv = parse_peer(json_array_get(root, i), path, (unsigned)i + 1,
                        &tmp->p[i], errmsg);
        if (rv != 0) {
            goto err_tmp;
        }
    }
    tmp->n = (unsigned)n;
    *out = *tmp;
err_tmp:
    free(tmp);
err_root:
    json_decref(root);
    return rv;
}

static int validate_peer(const struct jr__peer *p,
                         const char *path,
                         unsigned elem,
                         char *errmsg)
{
    char why[JR_ERRMSG_SIZE];
    size_t name_len;
    if (p->id == 0) {
        return bad(errmsg, path, elem,
                   "id 0 is not a node id (want " ID_RANGE ")");
    }
    if (memchr(p->address, '\0', sizeof p->address) == NULL) {
        return bad(errmsg, path, elem, "the address is not terminated");
    }
    if (address_problem(p->address, why, sizeof why) != NULL) {
        return bad(errmsg, path, elem, "\"address\": %s", why);
    }
    if (p->role != RAFT_VOTER && p->role != RAFT_STANDBY &&
        p->role != RAFT_SPARE) {
        return bad(errmsg, path, elem, "role %d is not a raft role", p->role);
    }
    name_len = strnlen(p->name, sizeof p->name);
    if (name_len == sizeof p->name) {
        return bad(errmsg, path, elem, "the name is not terminated");
    }
    if (!is_utf8((const unsigned char *)p->name, name_len)) {
        return bad(errmsg, path, elem, "the name is not UTF-8");
    }
    return 0;
}

int jr__peers_validate(const struct jr__peers *p,
                       uint64_t self_id,
                       const char *path,
                       char *errmsg)
{
    unsigned i, j, voters = 0;
    bool self = self_id == 0;
    int rv;
    if (p->n == 0 || p->n > JR__PEERS_MAX) {
        return bad(errmsg, path, 0, "%u servers, want 1 to %d", p->n,
                   JR__PEERS_MAX);
    }
    for (i = 0; i < p->n; i++) {
        if ((rv = validate_peer(&p->p[i], path, i + 1, errmsg)) != 0) {
            return rv;
        }
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
        return bad(errmsg, path, 0,
                   "no voter: at least one server needs \"role\": \"voter\"");
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
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd, e = 0, rv;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        if (e == ENOENT) {
            jr__errf(errmsg, "%s does not exist", path);
            return JR_ENOTFOUND;
        }
        jr__errf(errmsg, "open %s: %s", path, strerror(e));
        return jr__err_from_errno(e);
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        jr__errf(errmsg, "stat %s: %s", path, strerror(e));
        rv = jr__err_from_errno(e);
        goto err_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = bad(errmsg, path, 0, "not a regular file");
        goto err_fd;
    }
    if (st.st_size > JR__PEERS_FILE_MAX) {
        rv = bad(errmsg, path, 0, "%lld bytes, more than %d",
                 (long long)st.st_size, JR__PEERS_FILE_MAX);
        goto err_fd;
    }
    /* One byte more than allowed: a file that grew since fstat is still
     * caught by jr__peers_parse's size check. */
    if ((buf = malloc(JR__PEERS_FILE_MAX + 1)) == NULL) {
        jr__errf(errmsg, "read %s: out of memory", path);
        rv = JR_ENOMEM;
        goto err_fd;
    }
    while (got < JR__PEERS_FILE_MAX + 1) {
        ssize_t k = read(fd, buf + got, JR__PEERS_FILE_MAX + 1 - got);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            break;
        }
        if (k == 0) {
            break;
        }
        got += (size_t)k;
    }
    if (e != 0) {
        jr__errf(errmsg, "read %s: %s", path, strerror(e));
        rv = jr__err_from_errno(e);
    } else {
        rv = jr__peers_parse(buf, got, path, out, errmsg);
    }
    free(buf);
err_fd:
    /* Read only: nothing of ours can be lost at close. */
    (void)close(fd);
    return rv;
}

static const char *role_name(int role)
{
    switch (role) {
        case RAFT_VOTER: return "voter";
        case RAFT_STANDBY: return "standby";
        case RAFT_SPARE: return "spare";
    }
    return NULL;
}

/* A jansson string of a field that may be unterminated or not UTF-8: *v
 * NULL and JR_EINVAL then, JR_ENOMEM if jansson cannot allocate. */
static int string_of(const char *s, size_t size, json_t **v)
{
    size_t len = strnlen(s, size);
    *v = NULL;
    if (len == size || !is_utf8((const unsigned char *)s, len)) {
        return JR_EINVAL;
    }
    *v = json_stringn(s, len);
    return *v == NULL ? JR_ENOMEM : 0;
}

static int format_peer(const struct jr__peer *p, json_t *o)
{
    char id[24];
    const char *role = role_name(p->role);
    json_t *v;
    int rv;
    if (role == NULL) {
        return JR_EINVAL;
    }
    /* Always a string: a JSON integer cannot carry ids over 2^63 - 1. */
    (void)snprintf(id, sizeof id, "%llu", (unsigned long long)p->id);
    if (json_object_set_new(o, "id", json_string(id)) != 0) {
        return JR_ENOMEM;
    }
    if ((rv = string_of(p->address, sizeof p->address, &v)) != 0) {
        return rv;
    }
    if (json_object_set_new(o, "address", v) != 0 ||
        json_object_set_new(o, "role", json_string(role)) != 0) {
        return JR_ENOMEM;
    }
    if (p->name[0] != '\0') {
        if ((rv = string_of(p->name, sizeof p->name, &v)) != 0) {
            return rv;
        }
        if (json_object_set_new(o, "name", v) != 0) {
            return JR_ENOMEM;
        }
    }
    return 0;
}

int jr__peers_format(const struct jr__peers *p, char **out, size_t *len)
{
    json_t *root, *o;
    char *text;
    unsigned i;
    int rv;
    if (p->n > JR__PEERS_MAX) {
        return JR_EINVAL;
    }
    if ((root = json_array()) == NULL) {
        return JR_ENOMEM;
    }
    for (i = 0; i < p->n; i++) {
        /* json_array_append_new consumes o even when it fails. */
        if ((o = json_object()) == NULL ||
            json_array_append_new(root, o) != 0) {
            rv = JR_ENOMEM;
            goto err_root;
        }
        if ((rv = format_peer(&p->p[i], o)) != 0) {
            goto err_root;
        }
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        rv = JR_ENOMEM;
        goto err_root;
    }
    json_decref(root);
    *out = text;
    *len = strlen(text);
    return 0;
err_root:
    json_decref(root);
    return rv;
}

int jr__peers_write_file(const char *path,
                         const struct jr__peers *p,
                         char *errmsg)
{
    char *text = NULL;
    size_t len;
    int rv;

    if ((rv = jr__peers_validate(p, 0, path, errmsg)) != 0) {
        return rv;
    }
    if ((rv = jr__peers_format(p, &text, &len)) != 0) {
        jr__errf(errmsg, "%s: %s", path,
                 rv == JR_ENOMEM ? "out of memory" : "cannot be formatted");
        return rv;
    }
    /* The file ends with a newline; the text has none. */
    text[len] = '\n';
    rv = jr__write_file_atomic(path, text, len + 1, errmsg);
    free(text);
    return rv;
}

int jr__peers_to_configuration(const struct jr__peers *p,
                               struct raft_configuration *conf)
{
    unsigned i;
    int rv;
    raft_configuration_init(conf);
    for (i = 0; i < p->n && i < JR__PEERS_MAX; i++) {
        rv = raft_configuration_add(conf, p->p[i].id, p->p[i].address,
                                    p->p[i].role);
        if (rv != 0) {
            raft_configuration_close(conf);
            raft_configuration_init(conf);
            return jr__err_from_raft(rv);
        }
    }
    return 0;
}
