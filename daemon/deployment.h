/* deployment.h: what a deployment is (jaco.yaml(5)): its services, each
 * with a replica count, a command, an environment, the ports a replica may
 * be reached on and an optional host placement; the limits and checks on
 * every field; and its msgpack form, which jaco sends to jacod and the
 * cluster state keeps. The YAML manifest parser (manifest.c) builds these
 * structs; every decoder of the msgpack form checks them again. */
#ifndef JD_DEPLOYMENT_H
#define JD_DEPLOYMENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JD_DEP_NAME_MAX 64 /* deployment, service and host names, with NUL */
#define JD_MAX_DEPLOYMENTS 128 /* in the cluster, and in one apply */
#define JD_MAX_SERVICES 32     /* per deployment */
#define JD_MAX_REPLICAS 64     /* per service */
#define JD_MAX_ARGS 64
#define JD_MAX_ENV 64
#define JD_MAX_PORTS 16
#define JD_MAX_PIN_HOSTS 16
#define JD_STR_MAX 1024     /* an argument, an env value, workdir, with NUL */
#define JD_ENV_KEY_MAX 64   /* with NUL */
#define JD_COMMAND_MAX 8192 /* all arguments together */

enum jd_proto { JD_PROTO_TCP = 6, JD_PROTO_UDP = 17 };

struct jd_port {
    uint16_t port;
    uint8_t proto; /* enum jd_proto */
};

struct jd_service {
    char name[JD_DEP_NAME_MAX];
    unsigned replicas;
    unsigned n_args;
    char *args[JD_MAX_ARGS]; /* malloc'd; args[0] is the program */
    unsigned n_env;
    char *env_keys[JD_MAX_ENV]; /* malloc'd */
    char *env_values[JD_MAX_ENV];
    unsigned n_ports;
    struct jd_port ports[JD_MAX_PORTS];
    unsigned n_hosts; /* 0: any READY host */
    char hosts[JD_MAX_PIN_HOSTS][JD_DEP_NAME_MAX];
    char *workdir; /* malloc'd absolute path, or NULL: "/" */
};

struct jd_deployment {
    char name[JD_DEP_NAME_MAX];
    uint64_t revision; /* 0 in a manifest; the cluster's otherwise */
    unsigned n_services;
    struct jd_service *services; /* calloc'd, n_services of them */
};

/* A deployment with room for n_services services, all zero (NULL when out
 * of memory or n_services is over JD_MAX_SERVICES). */
struct jd_deployment *jd_deployment_new(unsigned n_services);
void jd_deployment_free(struct jd_deployment *d);
/* A deep copy (NULL when out of memory). */
struct jd_deployment *jd_deployment_copy(const struct jd_deployment *d);
/* A copy of d holding only its service i (NULL when out of memory). */
struct jd_deployment *jd_deployment_copy_service(const struct jd_deployment *d,
                                                 unsigned i);

/* ---- the rules of each field; each returns NULL if s is fine, else what
 * is wrong with it ("must be 1 to 63 of a-z, 0-9 and '-'") ---- */
const char *jd_check_name(const char *s);    /* deployment, service, host */
const char *jd_check_env_key(const char *s); /* [A-Za-z_][A-Za-z0-9_]* */
const char *jd_check_string(const char *s);  /* args, values: < JD_STR_MAX */
const char *jd_check_workdir(const char *s); /* absolute, < JD_STR_MAX */
/* "8080", "8080/tcp" or "53/udp" into p. */
const char *jd_parse_port(const char *s, struct jd_port *p);
/* "8080/tcp" (out holds at least 16 bytes). */
void jd_format_port(const struct jd_port *p, char *out, size_t size);

/* Check a whole deployment: every field, no duplicate service, host or
 * port, the command's total size. 0, or -1 with the field and the problem
 * in err ("services.api.replicas: ..."). */
int jd_deployment_check(const struct jd_deployment *d, char *err, size_t size);

/* ---- msgpack ----
 * {name, revision, services: [{name, replicas, command: [..], env: {..},
 *  ports: ["8080/tcp"..], hosts: [..], workdir: STR|nil}]} */
void jd_deployment_pack(msgpack_packer *pk, const struct jd_deployment *d);
/* Decode and check o into a new deployment (*out, free with
 * jd_deployment_free). 0, or -1 with what is wrong in err. */
int jd_deployment_unpack(const msgpack_object *o,
                         struct jd_deployment **out,
                         char *err,
                         size_t size);

#endif
