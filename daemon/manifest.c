/* manifest.c: see manifest.h. The YAML document is loaded whole with
 * libyaml (whose nodes carry their line), then walked: unknown keys, wrong
 * types and values out of range are errors, so a typo never passes for a
 * default. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "manifest.h"

/* Aliases make a small file a huge tree: the walk visits at most this many
 * nodes. */
#define MAX_VISITS 100000

struct walk {
    const char *name;
    yaml_document_t *doc;
    char *err;
    size_t size;
    unsigned visits;
};

static int fail(struct walk *w,
                const yaml_node_t *at,
                const char *field,
                const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct walk *w,
                const yaml_node_t *at,
                const char *field,
                const char *fmt,
                ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char *p;
    (void)snprintf(w->err, w->size, "%s:%lu: %s%s%s", w->name,
                   at != NULL ? (unsigned long)at->start_mark.line + 1 : 1UL,
                   field, field[0] != '\0' ? ": " : "", what);
    /* Keys and values quoted in it may hold anything: one line. */
    for (p = w->err; *p != '\0'; p++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f) {
            *p = '?';
        }
    }
    return -1;
}

static yaml_node_t *node_at(struct walk *w, int id)
{
    if (++w->visits > MAX_VISITS) {
        return NULL;
    }
    return yaml_document_get_node(w->doc, id);
}

static bool is_null(const yaml_node_t *n)
{
    const char *v;
    if (n->type != YAML_SCALAR_NODE ||
        n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static const char *kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a scalar";
}

/* A scalar's text, or NULL (with the error set) if n is not a scalar or
 * holds a NUL byte. */
static const char *scalar(struct walk *w, const yaml_node_t *n, const char *f)
{
    if (n->type != YAML_SCALAR_NODE) {
        fail(w, n, f, "expected a value, found %s", kind(n));
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        fail(w, n, f, "holds a NUL byte");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

/* Walk the pairs of mapping n, calling each(w, key, value, field, arg)
 * with field = prefix.key; stops at the first error. */
typedef int (*pair_fn)(struct walk *w,
                       const yaml_node_t *key_node,
                       const char *key,
                       yaml_node_t *value,
                       const char *field,
                       void *arg);

static int each_pair(struct walk *w,
                     yaml_node_t *n,
                     const char *prefix,
                     pair_fn each,
                     void *arg)
{
    yaml_node_pair_t *p;
    if (n->type != YAML_MAPPING_NODE) {
        return fail(w, n, prefix, "expected a mapping, found %s", kind(n));
    }
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(w, p->key), *v = node_at(w, p->value);
        yaml_node_pair_t *q;
        char field[512];
        const char *key;
        if (k == NULL || v == NULL) {
            return fail(w, n, prefix, "too many nodes (aliases?)");
        }
        if ((key = scalar(w, k, prefix)) == NULL) {
            return -1;
        }
        (void)snprintf(field, sizeof field, "%s%s%s", prefix,
                       prefix[0] != '\0' ? "." : "", key);
        for (q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *other = node_at(w, q->key);
            if (other != NULL && other->type == YAML_SCALAR_NODE &&
                strcmp((const char *)other->data.scalar.value, key) == 0) {
                return fail(w, k, field, "defined twice (first on line %lu)",
                            (unsigned long)other->start_mark.line + 1);
            }
        }
        if (each(w, k, key, v, field, arg) != 0) {
            return -1;
        }
    }
    return 0;
}

static int check(struct walk *w,
                 const yaml_node_t *at,
                 const char *field,
                 const char *why)
{
    return why == NULL ? 0 : fail(w, at, field, "%s", why);
}

/* An integer from lo to hi, written plainly (not quoted). */
static int integer(struct walk *w,
                   const yaml_node_t *n,
                   const char *field,
                   unsigned lo,
                   unsigned hi,
                   unsigned *out)
{
    const char *v = scalar(w, n, field);
    char *end;
    unsigned long x;
    if (v == NULL) {
        return -1;
    }
    errno = 0;
    x = strtoul(v, &end, 10);
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || v[0] < '0' ||
        v[0] > '9' || *end != '\0' || errno != 0 || x < lo || x > hi) {
        return fail(w, n, field,
                    "expected an integer from %u to %u, got \"%s\"", lo, hi, v);
    }
    *out = (unsigned)x;
    return 0;
}

static int dup_into(struct walk *w,
                    const yaml_node_t *n,
                    const char *field,
                    const char *v,
                    char **out)
{
    if (check(w, n, field, jd_check_string(v)) != 0) {
        return -1;
    }
    if ((*out = strdup(v)) == NULL) {
        return fail(w, n, field, "out of memory");
    }
    return 0;
}

static int command(struct walk *w,
                   yaml_node_t *n,
                   const char *field,
                   struct jd_service *s)
{
    yaml_node_item_t *it;
    if (n->type == YAML_SCALAR_NODE) {
        /* A string is a shell command line. */
        const char *v = scalar(w, n, field);
        if (v == NULL) {
            return -1;
        }
        if (v[0] == '\0') {
            return fail(w, n, field, "is empty");
        }
        if (dup_into(w, n, field, "/bin/sh", &s->args[0]) != 0) {
            return -1;
        }
        s->n_args = 1;
        if (dup_into(w, n, field, "-c", &s->args[1]) != 0) {
            return -1;
        }
        s->n_args = 2;
        if (dup_into(w, n, field, v, &s->args[2]) != 0) {
            return -1;
        }
        s->n_args = 3;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        return fail(w, n, field, "expected a list or a string, found %s",
                    kind(n));
    }
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *a = node_at(w, *it);
        const char *v;
        char f[560];
        (void)snprintf(f, sizeof f, "%s[%u]", field, s->n_args);
        if (a == NULL) {
            return fail(w, n, field, "too many nodes (aliases?)");
        }
        if (s->n_args == JD_MAX_ARGS) {
            return fail(w, a, field, "more than %d arguments", JD_MAX_ARGS);
        }
        if ((v = scalar(w, a, f)) == NULL ||
            dup_into(w, a, f, v, &s->args[s->n_args]) != 0) {
            return -1;
        }
        s->n_args++;
    }
    if (s->n_args == 0 || s->args[0][0] == '\0') {
        return fail(w, n, field, "needs at least the program to run");
    }
    return 0;
}

static int env_pair(struct walk *w,
                    const yaml_node_t *kn,
                    const char *key,
                    yaml_node_t *value,
                    const char *field,
                    void *arg)
{
    struct jd_service *s = arg;
    const char *v;
    if (s->n_env == JD_MAX_ENV) {
        return fail(w, kn, field, "more than %d variables", JD_MAX_ENV);
    }
    if (check(w, kn, field, jd_check_env_key(key)) != 0 ||
        (v = scalar(w, value, field)) == NULL ||
        dup_into(w, kn, field, key, &s->env_keys[s->n_env]) != 0) {
        return -1;
    }
    if (dup_into(w, value, field, v, &s->env_values[s->n_env]) != 0) {
        free(s->env_keys[s->n_env]);
        return -1;
    }
    s->n_env++;
    return 0;
}

static int ports(struct walk *w,
                 yaml_node_t *n,
                 const char *field,
                 struct jd_service *s)
{
    yaml_node_item_t *it;
    if (n->type != YAML_SEQUENCE_NODE) {
        return fail(w, n, field, "expected a list, found %s", kind(n));
    }
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *p = node_at(w, *it);
        const char *v;
        char f[560];
        unsigned k;
        (void)snprintf(f, sizeof f, "%s[%u]", field, s->n_ports);
        if (p == NULL) {
            return fail(w, n, field, "too many nodes (aliases?)");
        }
        if (s->n_ports == JD_MAX_PORTS) {
            return fail(w, p, field, "more than %d ports", JD_MAX_PORTS);
        }
        if ((v = scalar(w, p, f)) == NULL ||
            check(w, p, f, jd_parse_port(v, &s->ports[s->n_ports])) != 0) {
            return -1;
        }
        for (k = 0; k < s->n_ports; k++) {
            if (s->ports[k].port == s->ports[s->n_ports].port &&
                s->ports[k].proto == s->ports[s->n_ports].proto) {
                return fail(w, p, f, "%s listed twice", v);
            }
        }
        s->n_ports++;
    }
    return 0;
}

static int placement_pair(struct walk *w,
                          const yaml_node_t *kn,
                          const char *key,
                          yaml_node_t *value,
                          const char *field,
                          void *arg)
{
    struct jd_service *s = arg;
    yaml_node_item_t *it;
    if (strcmp(key, "hosts") != 0) {
        return fail(w, kn, field, "unknown key (placement has: hosts)");
    }
    if (value->type != YAML_SEQUENCE_NODE) {
        return fail(w, value, field, "expected a list of node names, found %s",
                    kind(value));
    }
    for (it = value->data.sequence.items.start;
         it < value->data.sequence.items.top; it++) {
        yaml_node_t *h = node_at(w, *it);
        const char *v;
        char f[560];
        unsigned k;
        (void)snprintf(f, sizeof f, "%s[%u]", field, s->n_hosts);
        if (h == NULL) {
            return fail(w, value, field, "too many nodes (aliases?)");
        }
        if (s->n_hosts == JD_MAX_PIN_HOSTS) {
            return fail(w, h, field, "more than %d hosts", JD_MAX_PIN_HOSTS);
        }
        if ((v = scalar(w, h, f)) == NULL) {
            return -1;
        }
        if (jd_check_name(v) != NULL) {
            return fail(w, h, f, "\"%s\": a node name %s", v, jd_check_name(v));
        }
        for (k = 0; k < s->n_hosts; k++) {
            if (strcmp(s->hosts[k], v) == 0) {
                return fail(w, h, f, "%s listed twice", v);
            }
        }
        (void)snprintf(s->hosts[s->n_hosts++], JD_DEP_NAME_MAX, "%s", v);
    }
    if (s->n_hosts == 0) {
        return fail(w, value, field,
                    "is empty (leave placement out to run on any host)");
    }
    return 0;
}

struct service_seen {
    struct jd_service *s;
    bool replicas, command;
};

static int service_pair(struct walk *w,
                        const yaml_node_t *kn,
                        const char *key,
                        yaml_node_t *value,
                        const char *field,
                        void *arg)
{
    struct service_seen *seen = arg;
    struct jd_service *s = seen->s;
    const char *v;
    if (strcmp(key, "replicas") == 0) {
        seen->replicas = true;
        return integer(w, value, field, 0, JD_MAX_REPLICAS, &s->replicas);
    }
    if (strcmp(key, "command") == 0) {
        seen->command = true;
        return command(w, value, field, s);
    }
    if (is_null(value) &&
        (strcmp(key, "env") == 0 || strcmp(key, "ports") == 0 ||
         strcmp(key, "placement") == 0)) {
        return 0; /* "env:" with nothing under it */
    }
    if (strcmp(key, "env") == 0) {
        return each_pair(w, value, field, env_pair, s);
    }
    if (strcmp(key, "ports") == 0) {
        return ports(w, value, field, s);
    }
    if (strcmp(key, "placement") == 0) {
        return each_pair(w, value, field, placement_pair, s);
    }
    if (strcmp(key, "workdir") == 0) {
        if ((v = scalar(w, value, field)) == NULL ||
            check(w, value, field, jd_check_workdir(v)) != 0) {
            return -1;
        }
        return dup_into(w, value, field, v, &s->workdir);
    }
    return fail(w, kn, field,
                "unknown key (a service has: replicas, command, env, ports, "
                "placement, workdir)");
}

static int services_pair(struct walk *w,
                         const yaml_node_t *kn,
                         const char *key,
                         yaml_node_t *value,
                         const char *field,
                         void *arg)
{
    struct jd_deployment *d = arg;
    struct service_seen seen;
    (void)kn;
    if (check(w, kn, field, jd_check_name(key)) != 0) {
        return -1;
    }
    memset(&seen, 0, sizeof seen);
    seen.s = &d->services[d->n_services++];
    (void)snprintf(seen.s->name, sizeof seen.s->name, "%s", key);
    if (each_pair(w, value, field, service_pair, &seen) != 0) {
        return -1;
    }
    if (!seen.command) {
        return fail(w, value, field, "no command");
    }
    if (!seen.replicas) {
        seen.s->replicas = 1;
    }
    return 0;
}

static int deployment_pair(struct walk *w,
                           const yaml_node_t *kn,
                           const char *key,
                           yaml_node_t *value,
                           const char *field,
                           void *arg)
{
    struct jd_deployment *d = arg;
    if (strcmp(key, "services") != 0) {
        return fail(w, kn, field, "unknown key (a deployment has: services)");
    }
    if (value->type != YAML_MAPPING_NODE) {
        return fail(w, value, field,
                    "expected a mapping of service names, found %s",
                    kind(value));
    }
    if (value->data.mapping.pairs.top - value->data.mapping.pairs.start == 0) {
        return fail(w, value, field, "no services");
    }
    if (value->data.mapping.pairs.top - value->data.mapping.pairs.start >
        JD_MAX_SERVICES) {
        return fail(w, value, field, "more than %d services", JD_MAX_SERVICES);
    }
    return each_pair(w, value, field, services_pair, d);
}

struct deps_out {
    struct jd_deployment **deps;
    unsigned n;
};

static int deployments_pair(struct walk *w,
                            const yaml_node_t *kn,
                            const char *key,
                            yaml_node_t *value,
                            const char *field,
                            void *arg)
{
    struct deps_out *o = arg;
    struct jd_deployment *d;
    char err[256];
    if (check(w, kn, field, jd_check_name(key)) != 0) {
        return -1;
    }
    if (o->n == JD_MAX_DEPLOYMENTS) {
        return fail(w, kn, field, "more than %d deployments in one file",
                    JD_MAX_DEPLOYMENTS);
    }
    if ((d = jd_deployment_new(JD_MAX_SERVICES)) == NULL) {
        return fail(w, kn, field, "out of memory");
    }
    d->n_services = 0; /* counted as they are read */
    (void)snprintf(d->name, sizeof d->name, "%s", key);
    o->deps[o->n++] = d;
    if (each_pair(w, value, field, deployment_pair, d) != 0) {
        return -1;
    }
    if (d->n_services == 0) {
        return fail(w, value, field, "no services");
    }
    /* What the walk did not check field by field. */
    if (jd_deployment_check(d, err, sizeof err) != 0) {
        return fail(w, value, field, "%s", err);
    }
    return 0;
}

static int top_pair(struct walk *w,
                    const yaml_node_t *kn,
                    const char *key,
                    yaml_node_t *value,
                    const char *field,
                    void *arg)
{
    if (strcmp(key, "deployments") != 0) {
        return fail(w, kn, field, "unknown key (a manifest has: deployments)");
    }
    if (value->type != YAML_MAPPING_NODE) {
        return fail(w, value, field,
                    "expected a mapping of deployment names, found %s",
                    kind(value));
    }
    return each_pair(w, value, field, deployments_pair, arg);
}

void jd_manifest_free(struct jd_deployment **deps, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        jd_deployment_free(deps[i]);
    }
    free(deps);
}

int jd_manifest_parse(const char *name,
                      const char *text,
                      size_t len,
                      struct jd_deployment ***out,
                      unsigned *n,
                      char *err,
                      size_t size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct deps_out o;
    struct walk w;
    int rv = -1;
    memset(&w, 0, sizeof w);
    w.name = name;
    w.err = err;
    w.size = size;
    w.doc = &doc;
    if (len > JD_MANIFEST_MAX_BYTES) {
        return fail(&w, NULL, "", "larger than %u bytes",
                    JD_MANIFEST_MAX_BYTES);
    }
    if (memchr(text, '\0', len) != NULL) {
        return fail(&w, NULL, "", "not a text file (it holds a NUL byte)");
    }
    o.n = 0;
    if ((o.deps = calloc(JD_MAX_DEPLOYMENTS, sizeof *o.deps)) == NULL) {
        return fail(&w, NULL, "", "out of memory");
    }
    if (!yaml_parser_initialize(&parser)) {
        free(o.deps);
        return fail(&w, NULL, "", "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        (void)snprintf(err, size, "%s:%lu: not valid YAML: %s%s%s", name,
                       (unsigned long)parser.problem_mark.line + 1,
                       parser.problem != NULL ? parser.problem : "error",
                       parser.context != NULL ? " " : "",
                       parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        free(o.deps);
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        fail(&w, NULL, "", "empty: a manifest has a deployments mapping");
    } else if (each_pair(&w, root, "", top_pair, &o) == 0) {
        if (o.n == 0) {
            fail(&w, root, "", "no deployments");
        } else {
            rv = 0;
        }
    }
    if (rv == 0) {
        /* One document only: a second is more likely a mistake. */
        yaml_document_t next;
        if (yaml_parser_load(&parser, &next)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2 != NULL) {
                fail(&w, r2, "",
                     "a second YAML document: put every "
                     "deployment under one deployments key");
                rv = -1;
            }
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rv != 0) {
        jd_manifest_free(o.deps, o.n);
        return -1;
    }
    *out = o.deps;
    *n = o.n;
    return 0;
}

int jd_manifest_load(const char *path,
                     struct jd_deployment ***out,
                     unsigned *n,
                     char *err,
                     size_t size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *buf;
    size_t len;
    int rv;
    if (f == NULL) {
        (void)snprintf(err, size, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((buf = malloc(JD_MANIFEST_MAX_BYTES + 1)) == NULL) {
        (void)snprintf(err, size, "%s: out of memory", path);
        if (f != stdin) {
            fclose(f);
        }
        return -1;
    }
    len = fread(buf, 1, JD_MANIFEST_MAX_BYTES + 1, f);
    if (ferror(f)) {
        (void)snprintf(err, size, "%s: read error: %s", path, strerror(errno));
        rv = -1;
    } else {
        rv = jd_manifest_parse(path, buf, len, out, n, err, size);
    }
    if (f != stdin) {
        fclose(f);
    }
    free(buf);
    return rv;
}
