/* config.h: jacod's settings, read from its command line and jacod.conf. */
#ifndef JD_CONFIG_H
#define JD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define JD_CONFIG_DEFAULT_PATH "/etc/jaco/jacod.conf"
#define JD_MAX_PEERS 16

/* One --initial-cluster member. */
struct jd_peer {
    char name[64];
    char address[128];
};

struct jd_config {
    char config_path[4096];   /* file read ("" if none) */
    char name[64];            /* this node's name; default: the host name
                                 (gethostname), cut at the first '.' */
    char data_dir[4096];      /* default "/var/lib/jaco" */
    char peer_address[128];   /* HOST:PORT raft listens on; default
                                 "127.0.0.1:7400" */
    char client_address[128]; /* HOST:PORT of the TCP client API; "" = no TCP
                                 listener (default) */
    char socket_path[4096];   /* unix socket; default "/run/jaco/jacod.sock" */
    bool bootstrap;           /* create a new single-node cluster if the data
                                 dir is empty */
    struct jd_peer initial_cluster[JD_MAX_PEERS]; /* NAME=HOST:PORT,... */
    unsigned n_initial;
    unsigned election_timeout_ms;  /* default 1000 */
    unsigned heartbeat_timeout_ms; /* default 100 */
    unsigned snapshot_threshold;   /* default 8192 */
    char log_level[16];            /* debug|info|warning|error; default
                                      "info" */
    char scheduler_plugin[4096];   /* path of a .so; "" none; default
                                      JD_DEFAULT_SCHEDULER */
    char isolation_plugin[4096];   /* path of a .so; "" default */
    unsigned audit_max_events;     /* default 10000 */
    unsigned audit_max_age_s;      /* default 30 days = 2592000 */
    char secret_file[4096];    /* cluster secret for initial-cluster; "" none */
    char zone[64];             /* failure zone label; "" none */
    unsigned max_voters;       /* odd, 1 to 9; default 5 */
    unsigned promote_after_ms; /* standby stable this long; default 10000 */
    unsigned dead_node_timeout_s; /* remove a node unreachable this long;
                                     0 (default): never */
    char backup_dir[4096];        /* "" (default): not a backup node */
    unsigned backup_interval_s;   /* default 3600 */
    unsigned backup_keep;         /* default 24 */
    unsigned isolation_check_s;   /* drift check interval; default 30 */
    char isolation_ports[64];     /* the port range the nftables plugin
                                     manages; default "20000-29999" */
    unsigned restart_limit;       /* failures in a row before a replica is
                                     failed; default 3 */
    unsigned restart_backoff_ms;  /* first restart delay; default 1000 */
    unsigned stop_timeout_ms;     /* SIGTERM to SIGKILL; default 10000 */
    unsigned reschedule_after_s;  /* an unreachable host's replicas move
                                     after this; default 60 */
};

/* The scheduler-plugin jacod loads unless told otherwise; when it is not
 * installed there, jacod runs without (and says so). */
#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/jaco"
#endif
#define JD_DEFAULT_SCHEDULER PKGLIBDIR "/jacod-scheduler-spread.so"

/* Fill c with the defaults listed above. The name is the host name up to its
 * first '.', lowercased; it is "" if the host name cannot be read or is too
 * long, which jd_config_check then rejects. */
void jd_config_defaults(struct jd_config *c);

/* Parse argv (getopt_long, long options only plus -h) and the config file.
 * The file is `--config PATH` if given, else JD_CONFIG_DEFAULT_PATH if it
 * exists (a missing default file is fine; a missing explicit one is an
 * error). Flags override the file, whatever their order on the command line;
 * a flag given twice keeps its last value. Flags must be spelled in full (no
 * abbreviations). The result is checked with jd_config_check.
 *
 * Returns 0 and fills c, 1 if --help or -h was given (the caller prints
 * jd_config_usage and exits 0), 2 if --version was given, or -1 with a
 * one-line message in err (size errlen) naming the file and line or the flag,
 * and what is wrong, e.g.
 *   "/etc/jaco/jacod.conf:7: unknown key \"electon-timeout\""
 *   "--peer-address: \"foo\" is not HOST:PORT"
 * c is written only when 0 is returned; --help and --version are acted on
 * where they appear, before the file is read. Nothing is printed. Uses
 * getopt_long's global state, so it is not thread-safe. */
int jd_config_parse(struct jd_config *c,
                    int argc,
                    char **argv,
                    char *err,
                    size_t errlen);

/* Write the --help text to out: every flag, its config key and its default. */
void jd_config_usage(FILE *out, const char *prog);

/* Check the constraints between fields (jd_config_parse calls it): every name
 * is 1 to 63 of [a-z0-9-], election-timeout >= 2 * heartbeat-timeout,
 * bootstrap and initial-cluster are not both set, initial-cluster names are
 * unique and include this node's name with peer-address as its address.
 * Returns 0, or -1 with a one-line message in err (size errlen). */
int jd_config_check(const struct jd_config *c, char *err, size_t errlen);

#endif
