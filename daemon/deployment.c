/* deployment.c: see deployment.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deployment.h"
#include "mp.h"

struct jd_deployment *jd_deployment_new(unsigned n_services)
{
    struct jd_deployment *d;
    if (n_services > JD_MAX_SERVICES) {
        return NULL;
    }
    if ((d = calloc(1, sizeof *d)) == NULL) {
        return NULL;
    }
    d->services = calloc(n_services > 0 ? n_services : 1, sizeof *d->services);
    if (d->services == NULL) {
        free(d);
        return NULL;
    }
    d->n_services = n_services;
    return d;
}

static void service_clear(struct jd_service *s)
{
    unsigned i;
    for (i = 0; i < s->n_args; i++) {
        free(s->args[i]);
    }
    for (i = 0; i < s->n_env; i++) {
        free(s->env_keys[i]);
        free(s->env_values[i]);
    }
    free(s->workdir);
}

void jd_deployment_free(struct jd_deployment *d)
{
    unsigned i;
    if (d == NULL) {
        return;
    }
    for (i = 0; i < d->n_services; i++) {
        service_clear(&d->services[i]);
    }
    free(d->services);
    free(d);
}

static int service_copy(struct jd_service *to, const struct jd_service *from)
{
    unsigned i;
    *to = *from;
    to->n_args = 0;
    to->n_env = 0;
    to->workdir = NULL;
    for (i = 0; i < from->n_args; i++) {
        if ((to->args[i] = strdup(from->args[i])) == NULL) {
            return -1;
        }
        to->n_args++;
    }
    for (i = 0; i < from->n_env; i++) {
        to->env_keys[i] = strdup(from->env_keys[i]);
        to->env_values[i] = strdup(from->env_values[i]);
        to->n_env++;
        if (to->env_keys[i] == NULL || to->env_values[i] == NULL) {
            return -1;
        }
    }
    if (from->workdir != NULL &&
        (to->workdir = strdup(from->workdir)) == NULL) {
        return -1;
    }
    return 0;
}

struct jd_deployment *jd_deployment_copy(const struct jd_deployment *d)
{
    struct jd_deployment *c = jd_deployment_new(d->n_services);
    unsigned i;
    if (c == NULL) {
        return NULL;
    }
    memcpy(c->name, d->name, sizeof c->name);
    c->revision = d->revision;
    for (i = 0; i < d->n_services; i++) {
        if (service_copy(&c->services[i], &d->services[i]) != 0) {
            c->n_services = i + 1; /* free what was copied of it too */
            jd_deployment_free(c);
            return NULL;
        }
    }
    return c;
}

struct jd_deployment *jd_deployment_copy_service(const struct jd_deployment *d,
                                                 unsigned i)
{
    struct jd_deployment *c = jd_deployment_new(1);
    if (c == NULL) {
        return NULL;
    }
    memcpy(c->name, d->name, sizeof c->name);
    c->revision = d->revision;
    if (service_copy(&c->services[0], &d->services[i]) != 0) {
        jd_deployment_free(c);
        return NULL;
    }
    return c;
}

/* ---- field rules ---- */

const char *jd_check_name(const char *s)
{
    size_t i, n = strlen(s);
    if (n == 0 || n >= JD_DEP_NAME_MAX || s[0] == '-') {
        return "must be 1 to 63 of a-z, 0-9 and '-', not starting with '-'";
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-')) {
            return "must be 1 to 63 of a-z, 0-9 and '-', not starting with "
                   "'-'";
        }
    }
    return NULL;
}

const char *jd_check_env_key(const char *s)
{
    size_t i, n = strlen(s);
    static const char *bad =
        "must be 1 to 63 of A-Z, a-z, 0-9 and '_', not starting with a "
        "digit";
    if (n == 0 || n >= JD_ENV_KEY_MAX || (s[0] >= '0' && s[0] <= '9')) {
        return bad;
    }
    if (strncmp(s, "JACO_", 5) == 0) {
        return "is reserved: jacod sets the JACO_ variables of a replica";
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_')) {
            return bad;
        }
    }
    return NULL;
}

const char *jd_check_string(const char *s)
{
    return strlen(s) < JD_STR_MAX ? NULL : "is longer than 1023 bytes";
}

const char *jd_check_workdir(const char *s)
{
    if (s[0] != '/') {
        return "must be an absolute path";
    }
    return jd_check_string(s);
}

const char *jd_parse_port(const char *s, struct jd_port *p)
{
    static const char *bad =
        "must be a port from 1 to 65535, optionally followed by /tcp or /udp";
    unsigned long v = 0;
    const char *q = s;
    if (*q < '0' || *q > '9') {
        return bad;
    }
    while (*q >= '0' && *q <= '9') {
        v = v * 10 + (unsigned long)(*q - '0');
        if (v > 65535) {
            return bad;
        }
        q++;
    }
    if (v == 0) {
        return bad;
    }
    if (*q == '\0' || strcmp(q, "/tcp") == 0) {
        p->proto = JD_PROTO_TCP;
    } else if (strcmp(q, "/udp") == 0) {
        p->proto = JD_PROTO_UDP;
    } else {
        return bad;
    }
    p->port = (uint16_t)v;
    return NULL;
}

void jd_format_port(const struct jd_port *p, char *out, size_t size)
{
    (void)snprintf(out, size, "%u/%s", (unsigned)p->port,
                   p->proto == JD_PROTO_UDP ? "udp" : "tcp");
}

int jd_deployment_check(const struct jd_deployment *d, char *err, size_t size)
{
    const char *why;
    unsigned i, j, k;
    if ((why = jd_check_name(d->name)) != NULL) {
        (void)snprintf(err, size, "name \"%s\": %s", d->name, why);
        return -1;
    }
    if (d->n_services == 0 || d->n_services > JD_MAX_SERVICES) {
        (void)snprintf(err, size, "services: need 1 to %d services",
                       JD_MAX_SERVICES);
        return -1;
    }
    for (i = 0; i < d->n_services; i++) {
        const struct jd_service *s = &d->services[i];
        size_t total = 0;
        if ((why = jd_check_name(s->name)) != NULL) {
            (void)snprintf(err, size, "services: name \"%s\": %s", s->name,
                           why);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (strcmp(d->services[j].name, s->name) == 0) {
                (void)snprintf(err, size, "services.%s: defined twice",
                               s->name);
                return -1;
            }
        }
        if (s->replicas > JD_MAX_REPLICAS) {
            (void)snprintf(err, size,
                           "services.%s.replicas: must be from 0 to %d",
                           s->name, JD_MAX_REPLICAS);
            return -1;
        }
        if (s->n_args == 0 || s->n_args > JD_MAX_ARGS ||
            s->args[0][0] == '\0') {
            (void)snprintf(err, size,
                           "services.%s.command: need a program and at "
                           "most %d arguments",
                           s->name, JD_MAX_ARGS - 1);
            return -1;
        }
        for (j = 0; j < s->n_args; j++) {
            if ((why = jd_check_string(s->args[j])) != NULL) {
                (void)snprintf(err, size, "services.%s.command[%u]: %s",
                               s->name, j, why);
                return -1;
            }
            total += strlen(s->args[j]) + 1;
        }
        if (total > JD_COMMAND_MAX) {
            (void)snprintf(err, size,
                           "services.%s.command: longer than %d bytes in "
                           "all",
                           s->name, JD_COMMAND_MAX);
            return -1;
        }
        if (s->n_env > JD_MAX_ENV) {
            (void)snprintf(err, size, "services.%s.env: more than %d entries",
                           s->name, JD_MAX_ENV);
            return -1;
        }
        for (j = 0; j < s->n_env; j++) {
            if ((why = jd_check_env_key(s->env_keys[j])) != NULL ||
                (why = jd_check_string(s->env_values[j])) != NULL) {
                (void)snprintf(err, size, "services.%s.env.%s: %s", s->name,
                               s->env_keys[j], why);
                return -1;
            }
            for (k = 0; k < j; k++) {
                if (strcmp(s->env_keys[k], s->env_keys[j]) == 0) {
                    (void)snprintf(err, size,
                                   "services.%s.env.%s: defined twice", s->name,
                                   s->env_keys[j]);
                    return -1;
                }
            }
        }
        if (s->n_ports > JD_MAX_PORTS) {
            (void)snprintf(err, size, "services.%s.ports: more than %d",
                           s->name, JD_MAX_PORTS);
            return -1;
        }
        for (j = 0; j < s->n_ports; j++) {
            if (s->ports[j].port == 0 || (s->ports[j].proto != JD_PROTO_TCP &&
                                          s->ports[j].proto != JD_PROTO_UDP)) {
                (void)snprintf(err, size, "services.%s.ports[%u]: bad port",
                               s->name, j);
                return -1;
            }
            for (k = 0; k < j; k++) {
                if (s->ports[k].port == s->ports[j].port &&
                    s->ports[k].proto == s->ports[j].proto) {
                    (void)snprintf(err, size,
                                   "services.%s.ports[%u]: %u listed twice",
                                   s->name, j, (unsigned)s->ports[j].port);
                    return -1;
                }
            }
        }
        if (s->n_hosts > JD_MAX_PIN_HOSTS) {
            (void)snprintf(err, size,
                           "services.%s.placement.hosts: more than %d", s->name,
                           JD_MAX_PIN_HOSTS);
            return -1;
        }
        for (j = 0; j < s->n_hosts; j++) {
            if ((why = jd_check_name(s->hosts[j])) != NULL) {
                (void)snprintf(err, size,
                               "services.%s.placement.hosts[%u] \"%s\": %s",
                               s->name, j, s->hosts[j], why);
                return -1;
            }
            for (k = 0; k < j; k++) {
                if (strcmp(s->hosts[k], s->hosts[j]) == 0) {
                    (void)snprintf(err, size,
                                   "services.%s.placement.hosts: %s listed "
                                   "twice",
                                   s->name, s->hosts[j]);
                    return -1;
                }
            }
        }
        if (s->workdir != NULL && (why = jd_check_workdir(s->workdir))) {
            (void)snprintf(err, size, "services.%s.workdir: %s", s->name, why);
            return -1;
        }
    }
    return 0;
}

/* ---- msgpack ---- */

static void pack_service(msgpack_packer *pk, const struct jd_service *s)
{
    unsigned i;
    char port[16];
    msgpack_pack_map(pk, 7);
    jd_mp_kv_str(pk, "name", s->name);
    jd_mp_key(pk, "replicas");
    msgpack_pack_unsigned_int(pk, s->replicas);
    jd_mp_key(pk, "command");
    msgpack_pack_array(pk, s->n_args);
    for (i = 0; i < s->n_args; i++) {
        jd_mp_str(pk, s->args[i]);
    }
    jd_mp_key(pk, "env");
    msgpack_pack_map(pk, s->n_env);
    for (i = 0; i < s->n_env; i++) {
        jd_mp_kv_str(pk, s->env_keys[i], s->env_values[i]);
    }
    jd_mp_key(pk, "ports");
    msgpack_pack_array(pk, s->n_ports);
    for (i = 0; i < s->n_ports; i++) {
        jd_format_port(&s->ports[i], port, sizeof port);
        jd_mp_str(pk, port);
    }
    jd_mp_key(pk, "hosts");
    msgpack_pack_array(pk, s->n_hosts);
    for (i = 0; i < s->n_hosts; i++) {
        jd_mp_str(pk, s->hosts[i]);
    }
    jd_mp_key(pk, "workdir");
    if (s->workdir != NULL) {
        jd_mp_str(pk, s->workdir);
    } else {
        msgpack_pack_nil(pk);
    }
}

void jd_deployment_pack(msgpack_packer *pk, const struct jd_deployment *d)
{
    unsigned i;
    msgpack_pack_map(pk, 3);
    jd_mp_kv_str(pk, "name", d->name);
    jd_mp_key(pk, "revision");
    msgpack_pack_uint64(pk, d->revision);
    jd_mp_key(pk, "services");
    msgpack_pack_array(pk, d->n_services);
    for (i = 0; i < d->n_services; i++) {
        pack_service(pk, &d->services[i]);
    }
}

/* A string of o into a new malloc'd copy (*out), or -1. */
static int dup_str(const msgpack_object *o, char **out)
{
    char buf[JD_STR_MAX];
    if (jd_mp_copy_str(o, buf, sizeof buf) != 0) {
        return -1;
    }
    return (*out = strdup(buf)) != NULL ? 0 : -1;
}

static const msgpack_object *array_of(const msgpack_object *o,
                                      const char *key,
                                      unsigned max)
{
    const msgpack_object *a = jd_mp_get(o, key);
    return a != NULL && a->type == MSGPACK_OBJECT_ARRAY &&
                   a->via.array.size <= max
               ? a
               : NULL;
}

static int unpack_service(const msgpack_object *o,
                          struct jd_service *s,
                          char *err,
                          size_t size)
{
    const msgpack_object *cmd = array_of(o, "command", JD_MAX_ARGS);
    const msgpack_object *ports = array_of(o, "ports", JD_MAX_PORTS);
    const msgpack_object *hosts = array_of(o, "hosts", JD_MAX_PIN_HOSTS);
    const msgpack_object *env = jd_mp_get(o, "env");
    const msgpack_object *wd = jd_mp_get(o, "workdir");
    uint64_t replicas;
    char buf[32];
    unsigned i;
    if (jd_mp_copy_str(jd_mp_get(o, "name"), s->name, sizeof s->name) != 0 ||
        jd_mp_u64(jd_mp_get(o, "replicas"), &replicas) != 0 ||
        replicas > JD_MAX_REPLICAS || cmd == NULL || ports == NULL ||
        hosts == NULL || env == NULL || env->type != MSGPACK_OBJECT_MAP ||
        env->via.map.size > JD_MAX_ENV || wd == NULL) {
        (void)snprintf(err, size, "malformed service");
        return -1;
    }
    s->replicas = (unsigned)replicas;
    for (i = 0; i < cmd->via.array.size; i++) {
        if (dup_str(&cmd->via.array.ptr[i], &s->args[i]) != 0) {
            (void)snprintf(err, size, "services.%s.command[%u]: not a string",
                           s->name, i);
            return -1;
        }
        s->n_args++;
    }
    for (i = 0; i < env->via.map.size; i++) {
        int a = dup_str(&env->via.map.ptr[i].key, &s->env_keys[i]);
        int b = dup_str(&env->via.map.ptr[i].val, &s->env_values[i]);
        s->n_env++;
        if (a != 0 || b != 0) {
            (void)snprintf(err, size, "services.%s.env: not strings", s->name);
            return -1;
        }
    }
    for (i = 0; i < ports->via.array.size; i++) {
        if (jd_mp_copy_str(&ports->via.array.ptr[i], buf, sizeof buf) != 0 ||
            jd_parse_port(buf, &s->ports[i]) != NULL) {
            (void)snprintf(err, size, "services.%s.ports[%u]: bad port",
                           s->name, i);
            return -1;
        }
        s->n_ports++;
    }
    for (i = 0; i < hosts->via.array.size; i++) {
        if (jd_mp_copy_str(&hosts->via.array.ptr[i], s->hosts[i],
                           sizeof s->hosts[i]) != 0) {
            (void)snprintf(err, size,
                           "services.%s.placement.hosts[%u]: not a name",
                           s->name, i);
            return -1;
        }
        s->n_hosts++;
    }
    if (wd->type != MSGPACK_OBJECT_NIL && dup_str(wd, &s->workdir) != 0) {
        (void)snprintf(err, size, "services.%s.workdir: not a string", s->name);
        return -1;
    }
    return 0;
}

int jd_deployment_unpack(const msgpack_object *o,
                         struct jd_deployment **out,
                         char *err,
                         size_t size)
{
    const msgpack_object *svcs = array_of(o, "services", JD_MAX_SERVICES);
    struct jd_deployment *d;
    char name[JD_DEP_NAME_MAX];
    uint64_t revision;
    unsigned i;
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP ||
        jd_mp_copy_str(jd_mp_get(o, "name"), name, sizeof name) != 0 ||
        jd_mp_u64(jd_mp_get(o, "revision"), &revision) != 0 || svcs == NULL) {
        (void)snprintf(err, size, "malformed deployment");
        return -1;
    }
    if ((d = jd_deployment_new(svcs->via.array.size)) == NULL) {
        (void)snprintf(err, size, "out of memory");
        return -1;
    }
    memcpy(d->name, name, sizeof name);
    d->revision = revision;
    for (i = 0; i < d->n_services; i++) {
        if (unpack_service(&svcs->via.array.ptr[i], &d->services[i], err,
                           size) != 0) {
            jd_deployment_free(d);
            return -1;
        }
    }
    if (jd_deployment_check(d, err, size) != 0) {
        jd_deployment_free(d);
        return -1;
    }
    *out = d;
    return 0;
}
