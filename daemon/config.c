/* config.c: jacod's settings from its command line and its config file.
 *
 * The config file (jacod.conf(5) is written from this comment)
 *
 * The file is UTF-8 text with one setting per line:
 *
 *     # this node
 *     name = node-1
 *     peer-address = 10.0.0.1:7400      # raft traffic
 *     data-dir = "/srv/jaco data"
 *
 * - Blank lines are ignored. `#` starts a comment when it begins a line or
 *   follows whitespace; elsewhere (`/a#b`) it is part of the value.
 * - A line is `key = value`; whitespace around the key and the value is
 *   trimmed. An empty value (`client-address =`) is the empty string.
 * - A value may be double-quoted to keep surrounding whitespace or a ` #`.
 *   Inside quotes `\"` is a quote and `\\` a backslash; any other backslash
 *   sequence is an error. Only whitespace or a comment may follow the closing
 *   quote.
 * - Keys are the long flag names of jacod(8) without the leading `--`:
 *
 *   name               this node's name, 1 to 63 of a-z, 0-9 and `-`
 *                      (default: the host name up to its first `.`)
 *   data-dir           path (default /var/lib/jaco)
 *   peer-address       HOST:PORT raft listens on (default 127.0.0.1:7400)
 *   client-address     HOST:PORT of the TCP client API, empty for none
 *                      (default empty)
 *   socket             path of the unix socket (default /run/jaco/jacod.sock)
 *   bootstrap          true, false, yes, no, 1 or 0 (default false)
 *   initial-cluster    NAME=HOST:PORT,... at most 16 members (default empty)
 *   election-timeout   milliseconds, 10 to 600000 (default 1000)
 *   heartbeat-timeout  milliseconds, 10 to 600000 (default 100)
 *   snapshot-threshold log entries, 16 to 1000000000 (default 8192)
 *   log-level          debug, info, warning or error (default info)
 *   scheduler-plugin   path of a .so, empty for none (default
 *                      PKGLIBDIR/jacod-scheduler-spread.so, if installed)
 *   isolation-plugin   path of a .so, empty for none (default empty)
 *   audit-max-events   1 to 1000000000 (default 10000)
 *   audit-max-age      a duration: 30d, 12h, 90m, 45s or plain seconds,
 *                      at least 1 s (default 30d)
 *
 *   HOST is a host name, an IPv4 address or a bracketed IPv6 address
 *   ([::1]:7400); PORT is 1 to 65535. Numbers are decimal digits only.
 * - A key given twice, an unknown key, a line without `=`, a bad value and a
 *   value longer than its field are errors reported as `FILE:LINE: ...`.
 *   Lines are limited to 16 KiB and the file to 1 MiB.
 * - Flags override the file. Beyond each value on its own, jd_config_check
 *   requires election-timeout >= 2 * heartbeat-timeout, unique member names,
 *   this node in initial-cluster with peer-address as its address, and not
 *   both bootstrap and initial-cluster. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_LINE_BYTES (16 * 1024)

enum opt_type {
    OPT_NAME,      /* node name */
    OPT_PATH,      /* non-empty string */
    OPT_PLUGIN,    /* string, "" for none */
    OPT_ADDR,      /* HOST:PORT */
    OPT_ADDR_NONE, /* HOST:PORT or "" */
    OPT_BOOL,
    OPT_CLUSTER,
    OPT_MS,    /* unsigned milliseconds in [min, max] */
    OPT_COUNT, /* unsigned in [min, max] */
    OPT_DURATION,
    OPT_LOG_LEVEL,
};

struct opt {
    const char *key; /* config key, and the flag without "--" */
    const char *metavar;
    enum opt_type type;
    size_t offset; /* of the field in struct jd_config */
    size_t size;   /* of a string field, to check lengths */
    unsigned min, max;
    const char *help;
};

#define FIELD(f) \
    offsetof(struct jd_config, f), sizeof(((struct jd_config *)0)->f)

/* Sorted as in --help; the order is also the getopt val (OPT_BASE + index). */
static const struct opt opts[] = {
    {"name", "NAME", OPT_NAME, FIELD(name), 0, 0,
     "this node's name, 1 to 63 of a-z, 0-9 and -"},
    {"data-dir", "PATH", OPT_PATH, FIELD(data_dir), 0, 0,
     "directory of the node's state"},
    {"peer-address", "HOST:PORT", OPT_ADDR, FIELD(peer_address), 0, 0,
     "address raft listens on"},
    {"client-address", "HOST:PORT", OPT_ADDR_NONE, FIELD(client_address), 0, 0,
     "address of the TCP client API, empty for none"},
    {"socket", "PATH", OPT_PATH, FIELD(socket_path), 0, 0,
     "unix socket of the client API"},
    {"bootstrap", NULL, OPT_BOOL, FIELD(bootstrap), 0, 0,
     "create a one-node cluster if the data dir is empty"},
    {"initial-cluster", "NAME=HOST:PORT,...", OPT_CLUSTER,
     FIELD(initial_cluster), 0, 0, "members of a new cluster, this node too"},
    {"election-timeout", "MS", OPT_MS, FIELD(election_timeout_ms), 10, 600000,
     "election timeout, 10 to 600000 ms"},
    {"heartbeat-timeout", "MS", OPT_MS, FIELD(heartbeat_timeout_ms), 10, 600000,
     "heartbeat interval, 10 to 600000 ms"},
    {"snapshot-threshold", "N", OPT_COUNT, FIELD(snapshot_threshold), 16,
     1000000000, "log entries between snapshots, 16 to 10^9"},
    {"log-level", "LEVEL", OPT_LOG_LEVEL, FIELD(log_level), 0, 0,
     "debug, info, warning or error"},
    {"scheduler-plugin", "PATH", OPT_PLUGIN, FIELD(scheduler_plugin), 0, 0,
     "scheduler plugin (.so), empty for none"},
    {"isolation-plugin", "PATH", OPT_PLUGIN, FIELD(isolation_plugin), 0, 0,
     "isolation plugin (.so), empty for none"},
    {"audit-max-events", "N", OPT_COUNT, FIELD(audit_max_events), 1, 1000000000,
     "audit events kept, 1 to 10^9"},
    {"audit-max-age", "DURATION", OPT_DURATION, FIELD(audit_max_age_s), 1,
     UINT_MAX, "age of the oldest audit event kept (30d, 12h, 90m, 45s)"},
    {"secret-file", "PATH", OPT_PLUGIN, FIELD(secret_file), 0, 0,
     "cluster secret (64 hex digits, mode 0600) for initial-cluster"},
    {"zone", "NAME", OPT_PLUGIN, FIELD(zone), 0, 0,
     "failure zone; voters are spread across zones"},
    {"max-voters", "N", OPT_COUNT, FIELD(max_voters), 1, 9,
     "most voters the reconciler keeps, odd, 1 to 9"},
    {"promote-after", "MS", OPT_MS, FIELD(promote_after_ms), 0, 3600000,
     "a standby is promoted after being reachable this long"},
    {"dead-node-timeout", "DURATION", OPT_DURATION, FIELD(dead_node_timeout_s),
     0, 30 * 86400,
     "remove a node unreachable this long (0: never, the default)"},
    {"backup-dir", "PATH", OPT_PLUGIN, FIELD(backup_dir), 0, 0,
     "make this a backup node writing archives here (jaco-backup(8))"},
    {"backup-interval", "DURATION", OPT_DURATION, FIELD(backup_interval_s), 1,
     30 * 86400, "a backup node's time between archives (default 1h)"},
    {"backup-keep", "N", OPT_COUNT, FIELD(backup_keep), 1, 100000,
     "archives a backup node keeps (default 24)"},
    {"isolation-check-interval", "DURATION", OPT_DURATION,
     FIELD(isolation_check_s), 1, 86400,
     "how often the isolation ruleset is checked for drift (default 30s)"},
    {"isolation-ports", "LOW-HIGH", OPT_PLUGIN, FIELD(isolation_ports), 0, 0,
     "ports the nftables plugin keeps to replicas (default 20000-29999)"},
    {"restart-limit", "N", OPT_COUNT, FIELD(restart_limit), 1, 100,
     "failures in a row before a replica is failed (default 3)"},
    {"restart-backoff", "MS", OPT_MS, FIELD(restart_backoff_ms), 10, 600000,
     "first restart delay, doubled per failure up to 30 s (default 1000)"},
    {"stop-timeout", "MS", OPT_MS, FIELD(stop_timeout_ms), 0, 600000,
     "time between SIGTERM and SIGKILL of a replica (default 10000)"},
    {"reschedule-after", "DURATION", OPT_DURATION, FIELD(reschedule_after_s), 1,
     30 * 86400,
     "an unreachable host's unpinned replicas move after this (default 60s)"},
};

#define N_OPTS (sizeof opts / sizeof opts[0])

/* getopt_long vals of the command-line-only flags and of the table's. */
enum { VAL_CONFIG = 256, VAL_VERSION, OPT_BASE };

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    char *p;
    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    /* A truncated message is still a useful one: the key or flag and the
     * line come first. */
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* Values quoted in it come from the file as they are: one line, and
     * no terminal control bytes. */
    for (p = err; *p != '\0'; p++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f) {
            *p = '?';
        }
    }
}

/* ---- values ---- */

static bool name_is_valid(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 63) {
        return false;
    }
    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-')) {
            return false;
        }
    }
    return true;
}

/* Decimal digits only: strtoull alone would take a sign ("-1" is
 * ULLONG_MAX), leading blanks and, with base 0, hex. */
static bool parse_digits(const char *s, size_t len, unsigned long long *out)
{
    char buf[32], *end;
    size_t i;
    if (len == 0 || len >= sizeof buf) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    *out = strtoull(buf, &end, 10);
    return errno == 0 && *end == '\0';
}

/* HOST:PORT with HOST a host name, IPv4 address or [IPv6] address. An
 * unbracketed IPv6 address is refused: its last ':' is ambiguous. */
static bool hostport_is_valid(const char *s, const char **why)
{
    const char *colon = strrchr(s, ':');
    const char *host = s, *host_end = colon;
    unsigned long long port;
    const char *p;
    *why = NULL;
    if (colon == NULL) {
        return false;
    }
    if (s[0] == '[') {
        host++;
        if (colon == s || colon[-1] != ']') {
            return false;
        }
        host_end = colon - 1;
        for (p = host; p < host_end; p++) {
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') {
                return false;
            }
        }
    } else {
        for (p = host; p < host_end; p++) {
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
                *p != '_') {
                return false;
            }
        }
    }
    if (host_end == host) {
        return false;
    }
    if (!parse_digits(colon + 1, strlen(colon + 1), &port)) {
        return false;
    }
    if (port < 1 || port > 65535) {
        *why = "port must be 1 to 65535";
        return false;
    }
    return true;
}

/* Copy value into a string field of size bytes. */
static int set_string(char *dst,
                      size_t size,
                      const char *value,
                      char *msg,
                      size_t msglen)
{
    size_t len = strlen(value);
    if (len >= size) {
        errf(msg, msglen, "value is %zu bytes, longer than the %zu allowed",
             len, size - 1);
        return -1;
    }
    memcpy(dst, value, len + 1);
    return 0;
}

static int set_address(char *dst,
                       size_t size,
                       const char *value,
                       bool empty_ok,
                       char *msg,
                       size_t msglen)
{
    const char *why;
    if (value[0] == '\0' && empty_ok) {
        dst[0] = '\0';
        return 0;
    }
    if (strlen(value) >= size) {
        return set_string(dst, size, value, msg, msglen);
    }
    if (!hostport_is_valid(value, &why)) {
        errf(msg, msglen, "\"%s\" is not HOST:PORT%s%s", value,
             why != NULL ? ": " : "", why != NULL ? why : "");
        return -1;
    }
    return set_string(dst, size, value, msg, msglen);
}

/* Shared by the parser (which adds a line number) and jd_config_check. */
static int check_members(const struct jd_peer *peers,
                         unsigned n,
                         char *msg,
                         size_t msglen)
{
    unsigned i, j;
    if (n > JD_MAX_PEERS) {
        errf(msg, msglen, "more than %d members", JD_MAX_PEERS);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!name_is_valid(peers[i].name, strlen(peers[i].name))) {
            errf(msg, msglen,
                 "member name \"%s\" is not 1 to 63 of a-z, 0-9 and -",
                 peers[i].name);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(peers[i].name, peers[j].name) == 0) {
                errf(msg, msglen, "member name \"%s\" appears twice",
                     peers[i].name);
                return -1;
            }
        }
    }
    return 0;
}

/* NAME=HOST:PORT,... into peers; "" is no members. Blanks around items are
 * allowed so that a long list can be written "a=h:1, b=h:2". */
static int parse_cluster(const char *value,
                         struct jd_peer *peers,
                         unsigned *n,
                         char *msg,
                         size_t msglen)
{
    const char *p = value;
    unsigned count = 0;
    if (value[0] == '\0') {
        *n = 0;
        return 0;
    }
    for (;;) {
        const char *item = p, *end, *eq;
        size_t name_len, addr_len;
        const char *why;
        while (*item == ' ' || *item == '\t') {
            item++;
        }
        end = strchr(item, ',');
        if (end == NULL) {
            end = item + strlen(item);
        }
        p = end;
        while (end > item && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        eq = memchr(item, '=', (size_t)(end - item));
        if (eq == NULL) {
            errf(msg, msglen, "member %u \"%.*s\" is not NAME=HOST:PORT",
                 count + 1, (int)(end - item), item);
            return -1;
        }
        if (count == JD_MAX_PEERS) {
            errf(msg, msglen, "more than %d members", JD_MAX_PEERS);
            return -1;
        }
        name_len = (size_t)(eq - item);
        addr_len = (size_t)(end - eq - 1);
        if (!name_is_valid(item, name_len)) {
            errf(msg, msglen,
                 "member name \"%.*s\" is not 1 to 63 of a-z, 0-9 and -",
                 (int)name_len, item);
            return -1;
        }
        if (addr_len >= sizeof peers[count].address) {
            errf(msg, msglen,
                 "member %.*s: address is %zu bytes, longer than "
                 "the %zu allowed",
                 (int)name_len, item, addr_len,
                 sizeof peers[count].address - 1);
            return -1;
        }
        memcpy(peers[count].name, item, name_len);
        peers[count].name[name_len] = '\0';
        memcpy(peers[count].address, eq + 1, addr_len);
        peers[count].address[addr_len] = '\0';
        if (!hostport_is_valid(peers[count].address, &why)) {
            errf(msg, msglen, "member %s: \"%s\" is not HOST:PORT%s%s",
                 peers[count].name, peers[count].address,
                 why != NULL ? ": " : "", why != NULL ? why : "");
            return -1;
        }
        count++;
        if (*p == '\0') {
            break;
        }
        p++;
    }
    if (check_members(peers, count, msg, msglen) != 0) {
        return -1;
    }
    *n = count;
    return 0;
}

static int parse_duration(const char *value, unsigned long long *out)
{
    size_t len = strlen(value);
    unsigned long long v, unit = 1;
    if (len > 0) {
        switch (value[len - 1]) {
            case 'd':
                unit = 86400;
                len--;
                break;
            case 'h':
                unit = 3600;
                len--;
                break;
            case 'm':
                unit = 60;
                len--;
                break;
            case 's': len--; break;
            default: break; /* plain seconds */
        }
    }
    if (!parse_digits(value, len, &v) || v > ULLONG_MAX / unit) {
        return -1;
    }
    *out = v * unit;
    return 0;
}

/* Set o's field of c from value; on error, msg says what is wrong with the
 * value (the caller adds where it came from). */
static int set_value(struct jd_config *c,
                     const struct opt *o,
                     const char *value,
                     char *msg,
                     size_t msglen)
{
    char *field = (char *)c + o->offset;
    unsigned long long v;
    switch (o->type) {
        case OPT_NAME:
            if (strlen(value) >= o->size) {
                return set_string(field, o->size, value, msg, msglen);
            }
            if (!name_is_valid(value, strlen(value))) {
                errf(msg, msglen, "\"%s\" is not 1 to 63 of a-z, 0-9 and -",
                     value);
                return -1;
            }
            return set_string(field, o->size, value, msg, msglen);
        case OPT_PATH:
            if (value[0] == '\0') {
                errf(msg, msglen, "must not be empty");
                return -1;
            }
            return set_string(field, o->size, value, msg, msglen);
        case OPT_PLUGIN: return set_string(field, o->size, value, msg, msglen);
        case OPT_ADDR:
        case OPT_ADDR_NONE:
            return set_address(field, o->size, value, o->type == OPT_ADDR_NONE,
                               msg, msglen);
        case OPT_BOOL: {
            static const char *const yes[] = {"true", "yes", "1"};
            static const char *const no[] = {"false", "no", "0"};
            size_t i;
            for (i = 0; i < 3; i++) {
                if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
                    *(bool *)field = strcmp(value, yes[i]) == 0;
                    return 0;
                }
            }
            errf(msg, msglen, "\"%s\" is not true, false, yes, no, 1 or 0",
                 value);
            return -1;
        }
        case OPT_CLUSTER:
            return parse_cluster(value, c->initial_cluster, &c->n_initial, msg,
                                 msglen);
        case OPT_MS:
        case OPT_COUNT:
            if (!parse_digits(value, strlen(value), &v)) {
                errf(msg, msglen, "\"%s\" is not a number%s", value,
                     o->type == OPT_MS ? " of milliseconds" : "");
                return -1;
            }
            if (v < o->min || v > o->max) {
                errf(msg, msglen, "%s is out of range (%u to %u%s)", value,
                     o->min, o->max, o->type == OPT_MS ? " ms" : "");
                return -1;
            }
            *(unsigned *)field = (unsigned)v;
            return 0;
        case OPT_DURATION:
            if (parse_duration(value, &v) != 0) {
                errf(msg, msglen,
                     "\"%s\" is not a duration (30d, 12h, 90m, 45s or "
                     "seconds)",
                     value);
                return -1;
            }
            if (v < o->min || v > o->max) {
                errf(msg, msglen, "%s is out of range (%u to %u seconds)",
                     value, o->min, o->max);
                return -1;
            }
            *(unsigned *)field = (unsigned)v;
            return 0;
        case OPT_LOG_LEVEL:
            if (strcmp(value, "debug") != 0 && strcmp(value, "info") != 0 &&
                strcmp(value, "warning") != 0 && strcmp(value, "error") != 0) {
                errf(msg, msglen, "\"%s\" is not debug, info, warning or error",
                     value);
                return -1;
            }
            return set_string(field, o->size, value, msg, msglen);
    }
    errf(msg, msglen, "internal error: option type %d", (int)o->type);
    return -1;
}

/* ---- the file ---- */

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v';
}

static const struct opt *opt_find(const char *key, size_t len)
{
    size_t i;
    for (i = 0; i < N_OPTS; i++) {
        if (strlen(opts[i].key) == len && memcmp(opts[i].key, key, len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

/* The value of a line, from just after the '=' to its end (exclusive), into
 * out (size MAX_LINE_BYTES, which the line fits in). */
static int line_value(const char *p,
                      const char *end,
                      char *out,
                      char *msg,
                      size_t msglen)
{
    const char *start;
    while (p < end && is_blank(*p)) {
        p++;
    }
    if (p < end && *p == '"') {
        size_t n = 0;
        for (p++;; p++) {
            if (p == end) {
                errf(msg, msglen, "missing closing quote");
                return -1;
            }
            if (*p == '"') {
                break;
            }
            if (*p == '\\') {
                if (p + 1 == end || (p[1] != '"' && p[1] != '\\')) {
                    errf(msg, msglen,
                         "unknown escape in quoted value (only \\\" and "
                         "\\\\ are allowed)");
                    return -1;
                }
                p++;
            }
            out[n++] = *p;
        }
        out[n] = '\0';
        p++;
        while (p < end && is_blank(*p)) {
            p++;
        }
        if (p < end && *p != '#') {
            errf(msg, msglen, "text after the closing quote");
            return -1;
        }
        return 0;
    }
    /* Unquoted: up to a '#' that follows whitespace. The whitespace after
     * '=' counts, so "key = # note" is an empty value. */
    start = p;
    for (; p < end; p++) {
        if (*p == '#' && is_blank(p[-1])) {
            break;
        }
    }
    while (p > start && is_blank(p[-1])) {
        p--;
    }
    memcpy(out, start, (size_t)(p - start));
    out[p - start] = '\0';
    return 0;
}

/* Parse the text of the config file, named path in messages, into c. */
static int parse_text(struct jd_config *c,
                      const char *path,
                      const char *text,
                      size_t len,
                      char *err,
                      size_t errlen)
{
    unsigned seen[N_OPTS] = {0}; /* line each key was set on */
    unsigned lineno = 0;
    const char *p = text, *text_end = text + len;
    char *value = malloc(MAX_LINE_BYTES);
    char msg[512];
    int rv = -1;
    if (value == NULL) {
        errf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    while (p < text_end) {
        const char *eol = memchr(p, '\n', (size_t)(text_end - p));
        const char *line, *end, *key_end;
        const struct opt *o;
        if (eol == NULL) {
            eol = text_end;
        }
        lineno++;
        line = p;
        end = eol;
        p = eol < text_end ? eol + 1 : eol;
        if ((size_t)(end - line) >= MAX_LINE_BYTES) {
            errf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
                 MAX_LINE_BYTES - 1);
            goto out;
        }
        if (memchr(line, '\0', (size_t)(end - line)) != NULL) {
            errf(err, errlen, "%s:%u: line contains a NUL byte", path, lineno);
            goto out;
        }
        while (line < end && is_blank(*line)) {
            line++;
        }
        if (line == end || *line == '#') {
            continue;
        }
        /* The key ends at '='; a comment before any '=' means there is
         * none. */
        for (key_end = line; key_end < end && *key_end != '='; key_end++) {
            if (*key_end == '#' && is_blank(key_end[-1])) {
                key_end = end;
                break;
            }
        }
        if (key_end == end) {
            errf(err, errlen, "%s:%u: expected \"key = value\"", path, lineno);
            goto out;
        }
        {
            const char *k_end = key_end;
            while (k_end > line && is_blank(k_end[-1])) {
                k_end--;
            }
            if (k_end == line) {
                errf(err, errlen, "%s:%u: missing key before '='", path,
                     lineno);
                goto out;
            }
            o = opt_find(line, (size_t)(k_end - line));
            if (o == NULL) {
                errf(err, errlen, "%s:%u: unknown key \"%.*s\"", path, lineno,
                     (int)(k_end - line), line);
                goto out;
            }
        }
        if (seen[o - opts] != 0) {
            errf(err, errlen,
                 "%s:%u: duplicate key \"%s\" (first set on line %u)", path,
                 lineno, o->key, seen[o - opts]);
            goto out;
        }
        seen[o - opts] = lineno;
        if (line_value(key_end + 1, end, value, msg, sizeof msg) != 0 ||
            set_value(c, o, value, msg, sizeof msg) != 0) {
            errf(err, errlen, "%s:%u: %s: %s", path, lineno, o->key, msg);
            goto out;
        }
    }
    rv = 0;
out:
    free(value);
    return rv;
}

/* Read path whole. A missing file is -ENOENT with nothing in err, so that
 * the caller decides whether that is an error. */
static int read_file(const char *path,
                     char **text,
                     size_t *len,
                     char *err,
                     size_t errlen)
{
    char *buf;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e != ENOENT) {
            errf(err, errlen, "open config file %s: %s", path, strerror(e));
        }
        return -e;
    }
    /* One byte more than allowed, to tell a full-size file from a larger
     * one (or /dev/zero) without reading it all. */
    buf = malloc(MAX_FILE_BYTES + 1);
    if (buf == NULL) {
        errf(err, errlen, "read config file %s: out of memory", path);
        (void)close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, MAX_FILE_BYTES + 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            errf(err, errlen, "read config file %s: %s", path, strerror(e));
            free(buf);
            (void)close(fd);
            return -e;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
        if (n > MAX_FILE_BYTES) {
            errf(err, errlen, "config file %s is larger than %d bytes", path,
                 MAX_FILE_BYTES);
            free(buf);
            (void)close(fd);
            return -EFBIG;
        }
    }
    /* Read-only: a failed close loses nothing. */
    (void)close(fd);
    *text = buf;
    *len = n;
    return 0;
}

/* ---- public ---- */

void jd_config_defaults(struct jd_config *c)
{
    char host[256];
    memset(c, 0, sizeof *c);
    if (gethostname(host, sizeof host) == 0) {
        size_t len;
        host[sizeof host - 1] = '\0';
        len = strcspn(host, ".");
        /* Host names are case-insensitive; node names are lowercase. */
        if (len < sizeof c->name) {
            size_t i;
            for (i = 0; i < len; i++) {
                c->name[i] = (char)tolower((unsigned char)host[i]);
            }
            c->name[len] = '\0';
        }
    }
    strcpy(c->data_dir, "/var/lib/jaco");
    strcpy(c->peer_address, "127.0.0.1:7400");
    strcpy(c->socket_path, "/run/jaco/jacod.sock");
    c->election_timeout_ms = 1000;
    c->heartbeat_timeout_ms = 100;
    c->snapshot_threshold = 8192;
    strcpy(c->log_level, "info");
    c->audit_max_events = 10000;
    c->audit_max_age_s = 30 * 86400;
    c->max_voters = 5;
    c->promote_after_ms = 10000;
    c->backup_interval_s = 3600;
    c->backup_keep = 24;
    c->isolation_check_s = 30;
    strcpy(c->isolation_ports, "20000-29999");
    strcpy(c->scheduler_plugin, JD_DEFAULT_SCHEDULER);
    c->restart_limit = 3;
    c->restart_backoff_ms = 1000;
    c->stop_timeout_ms = 10000;
    c->reschedule_after_s = 60;
}

int jd_config_parse(struct jd_config *c,
                    int argc,
                    char **argv,
                    char *err,
                    size_t errlen)
{
    struct option longopts[N_OPTS + 4];
    const char *flag_value[N_OPTS] = {NULL}; /* last value of each flag */
    const char *config_path = NULL;
    struct jd_config out;
    char *text = NULL;
    size_t i, len = 0;
    char msg[512];
    int saved_opterr = opterr;
    int rv = -1;

    for (i = 0; i < N_OPTS; i++) {
        longopts[i].name = opts[i].key;
        longopts[i].has_arg =
            opts[i].type == OPT_BOOL ? no_argument : required_argument;
        longopts[i].flag = NULL;
        longopts[i].val = OPT_BASE + (int)i;
    }
    longopts[N_OPTS] =
        (struct option){"config", required_argument, NULL, VAL_CONFIG};
    longopts[N_OPTS + 1] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[N_OPTS + 2] =
        (struct option){"version", no_argument, NULL, VAL_VERSION};
    longopts[N_OPTS + 3] = (struct option){NULL, 0, NULL, 0};

    /* Pass 1: collect the flags, so that they can be applied after the file
     * whatever their position. "+" stops at the first non-option instead of
     * permuting argv; ":" reports a missing value apart; opterr = 0 keeps
     * getopt quiet; optind = 0 restarts it from scratch (glibc). */
    opterr = 0;
    optind = 0;
    for (;;) {
        int before = optind == 0 ? 1 : optind;
        int idx = -1;
        int ch = getopt_long(argc, argv, "+:h", longopts, &idx);
        const char *arg = before < argc ? argv[before] : "";
        if (ch == -1) {
            break;
        }
        if (ch == '?' || ch == ':') {
            /* arg is the element getopt was looking at: optopt cannot tell
             * a long flag from a short one (it is the val of a long flag
             * given a value it does not take). */
            const char *bad = arg;
            if (strncmp(bad, "--", 2) != 0) {
                errf(err, errlen, "unknown flag -%c", optopt);
            } else if (ch == ':') {
                errf(err, errlen, "%s: missing value", bad);
            } else {
                size_t n = strcspn(bad, "=");
                int k;
                for (k = 0; longopts[k].name != NULL; k++) {
                    if (longopts[k].has_arg == no_argument &&
                        n == strlen(longopts[k].name) + 2 &&
                        strncmp(bad + 2, longopts[k].name, n - 2) == 0) {
                        break;
                    }
                }
                if (bad[n] == '=' && longopts[k].name != NULL) {
                    errf(err, errlen, "%.*s takes no value", (int)n, bad);
                } else {
                    errf(err, errlen, "unknown flag %.*s", (int)n, bad);
                }
            }
            goto out;
        }
        /* getopt_long takes unambiguous abbreviations ("--boot"); a script
         * using one would break when a new flag shares the prefix. */
        if (idx >= 0) {
            size_t n = strcspn(arg, "=");
            if (n != strlen(longopts[idx].name) + 2 ||
                strncmp(arg + 2, longopts[idx].name, n - 2) != 0) {
                errf(err, errlen, "unknown flag %.*s (did you mean --%s?)",
                     (int)n, arg, longopts[idx].name);
                goto out;
            }
        }
        switch (ch) {
            case 'h': rv = 1; goto out;
            case VAL_VERSION: rv = 2; goto out;
            case VAL_CONFIG:
                if (optarg[0] == '\0') {
                    errf(err, errlen, "--config: path must not be empty");
                    goto out;
                }
                config_path = optarg;
                break;
            default:
                flag_value[ch - OPT_BASE] =
                    opts[ch - OPT_BASE].type == OPT_BOOL ? "true" : optarg;
        }
    }
    if (optind < argc) {
        errf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        goto out;
    }

    jd_config_defaults(&out);
    {
        const char *path =
            config_path != NULL ? config_path : JD_CONFIG_DEFAULT_PATH;
        int r = read_file(path, &text, &len, err, errlen);
        if (r == -ENOENT && config_path == NULL) {
            /* No file at the default path: flags and defaults only. */
        } else if (r == -ENOENT) {
            errf(err, errlen, "open config file %s: %s", path,
                 strerror(ENOENT));
            goto out;
        } else if (r != 0) {
            goto out;
        } else {
            if (set_string(out.config_path, sizeof out.config_path, path, msg,
                           sizeof msg) != 0) {
                errf(err, errlen, "--config: %s", msg);
                goto out;
            }
            if (parse_text(&out, path, text, len, err, errlen) != 0) {
                goto out;
            }
        }
    }
    for (i = 0; i < N_OPTS; i++) {
        if (flag_value[i] != NULL &&
            set_value(&out, &opts[i], flag_value[i], msg, sizeof msg) != 0) {
            errf(err, errlen, "--%s: %s", opts[i].key, msg);
            goto out;
        }
    }
    if (jd_config_check(&out, err, errlen) != 0) {
        goto out;
    }
    *c = out;
    rv = 0;
out:
    free(text);
    opterr = saved_opterr;
    return rv;
}

void jd_config_usage(FILE *out, const char *prog)
{
    struct jd_config d;
    size_t i;
    jd_config_defaults(&d);
    fprintf(out,
            "usage: %s [-h] [--version] [--config PATH] [--bootstrap] "
            "[--KEY VALUE ...]\n"
            "\n"
            "Each --KEY flag overrides the KEY of the config file; the\n"
            "default is shown as a config line.\n"
            "\n"
            "  -h, --help\n"
            "      print this help and exit\n"
            "  --version\n"
            "      print the version and exit\n"
            "  --config PATH\n"
            "      config file; a missing default file is ignored\n"
            "      [default %s]\n",
            prog, JD_CONFIG_DEFAULT_PATH);
    for (i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        const char *field = (const char *)&d + o->offset;
        fprintf(out, "  --%s%s%s\n      %s\n      [%s = ", o->key,
                o->metavar != NULL ? " " : "",
                o->metavar != NULL ? o->metavar : "", o->help, o->key);
        switch (o->type) {
            case OPT_NAME: fprintf(out, "<host name up to its first .>"); break;
            case OPT_BOOL:
                fprintf(out, "%s", *(const bool *)field ? "true" : "false");
                break;
            case OPT_CLUSTER:
            case OPT_ADDR_NONE:
            case OPT_PLUGIN:
            case OPT_PATH:
            case OPT_ADDR:
            case OPT_LOG_LEVEL:
                if (o->type == OPT_CLUSTER || field[0] == '\0') {
                    fprintf(out, "\"\"");
                } else {
                    fprintf(out, "%s", field);
                }
                break;
            case OPT_MS:
            case OPT_COUNT: fprintf(out, "%u", *(const unsigned *)field); break;
            case OPT_DURATION: {
                unsigned s = *(const unsigned *)field;
                if (s != 0 && s % 86400 == 0) {
                    fprintf(out, "%ud", s / 86400);
                } else {
                    fprintf(out, "%u", s);
                }
                break;
            }
        }
        fprintf(out, "]\n");
    }
}

int jd_config_check(const struct jd_config *c, char *err, size_t errlen)
{
    char msg[512];
    unsigned i;
    size_t name_len = strnlen(c->name, sizeof c->name);
    if (!name_is_valid(c->name, name_len)) {
        errf(err, errlen,
             "name \"%.*s\" is not 1 to 63 of a-z, 0-9 and - (the default is "
             "the host name; set name or --name)",
             (int)name_len, c->name);
        return -1;
    }
    /* Raft needs several heartbeats per election timeout, or followers
     * start elections while the leader is healthy. */
    if ((unsigned long long)c->election_timeout_ms <
        2ULL * c->heartbeat_timeout_ms) {
        errf(err, errlen,
             "election-timeout (%u ms) must be at least twice "
             "heartbeat-timeout (%u ms)",
             c->election_timeout_ms, c->heartbeat_timeout_ms);
        return -1;
    }
    if (c->max_voters % 2 == 0) {
        errf(err, errlen, "max-voters must be odd, not %u", c->max_voters);
        return -1;
    }
    for (i = 0; c->zone[i] != '\0'; i++) {
        if (c->zone[i] <= ' ' || c->zone[i] > '~' || i >= 63) {
            errf(err, errlen,
                 "zone must be 1 to 63 printable characters "
                 "without spaces");
            return -1;
        }
    }
    if (c->n_initial == 0) {
        return 0;
    }
    /* Both would make two clusters: the bootstrapped one and the listed
     * one. */
    if (c->bootstrap) {
        errf(err, errlen, "bootstrap and initial-cluster cannot both be set");
        return -1;
    }
    if (check_members(c->initial_cluster, c->n_initial, msg, sizeof msg) != 0) {
        errf(err, errlen, "initial-cluster: %s", msg);
        return -1;
    }
    for (i = 0; i < c->n_initial; i++) {
        if (strcmp(c->initial_cluster[i].name, c->name) == 0) {
            break;
        }
    }
    if (i == c->n_initial) {
        errf(err, errlen,
             "initial-cluster does not include this node's name "
             "\"%s\"",
             c->name);
        return -1;
    }
    /* The other members will dial this address: it must be the one we
     * listen on. */
    if (strcmp(c->initial_cluster[i].address, c->peer_address) != 0) {
        errf(err, errlen,
             "initial-cluster gives %s the address %s, but peer-address is %s",
             c->name, c->initial_cluster[i].address, c->peer_address);
        return -1;
    }
    return 0;
}
