/* fuzz_config.c: libFuzzer target for jacod's config file parser
 * (daemon/config.c), which reads the file an operator wrote: each input is
 * written to a file in memory and parsed as `jacod --config FILE` would
 * parse it. A refusal is one terminated line that names the file and a line
 * of it, or is one of jd_config_check's messages about settings taken
 * together; what parses passes jd_config_check and keeps every value in
 * its documented range.
 * fuzz-sources: daemon/config.c */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The file every input is written to: a memfd, which goes with the
 * process however it ends (a crash too), named by its /proc/self/fd path. */
static char path[64];
static int file_fd = -1;

static void file_write(const void *buf, size_t len)
{
    const char *p = buf;
    off_t at = 0;
    if (file_fd < 0) {
        file_fd = memfd_create("jaco-fuzz-config", MFD_CLOEXEC);
        if (file_fd < 0) {
            abort();
        }
        (void)snprintf(path, sizeof path, "/proc/self/fd/%d", file_fd);
    }
    if (ftruncate(file_fd, 0) != 0) {
        abort();
    }
    while (len > 0) {
        ssize_t n = pwrite(file_fd, p, len, at);
        if (n <= 0) {
            abort();
        }
        p += n;
        at += n;
        len -= (size_t)n;
    }
}

/* What jd_config_check says (config.h): settings together, no one line. */
static bool is_check_message(const char *msg)
{
    static const char *const starts[] = {
        "name \"",
        "election-timeout (",
        "max-voters must be odd",
        "zone must be",
        "bootstrap and initial-cluster cannot both be set",
        "initial-cluster: ",
        "initial-cluster does not include this node's name",
        "initial-cluster gives ",
    };
    size_t i;
    for (i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        if (strncmp(msg, starts[i], strlen(starts[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* "PATH:LINE: " with LINE one of the input's lines. */
static bool names_file_and_line(const char *msg,
                                const uint8_t *data,
                                size_t size)
{
    size_t n = strlen(path), lines = 1, i;
    unsigned long line;
    char *end;
    if (strncmp(msg, path, n) != 0 || msg[n] != ':' || msg[n + 1] < '1' ||
        msg[n + 1] > '9') {
        return false;
    }
    line = strtoul(msg + n + 1, &end, 10);
    for (i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    return end[0] == ':' && end[1] == ' ' && line <= lines;
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_config(const struct jd_config *c)
{
    char err[512];
    unsigned i;
    if (jd_config_check(c, err, sizeof err) != 0 ||
        strcmp(c->config_path, path) != 0 ||
        !terminated(c->data_dir, sizeof c->data_dir) ||
        c->data_dir[0] == '\0' ||
        !terminated(c->socket_path, sizeof c->socket_path) ||
        c->socket_path[0] == '\0' ||
        !terminated(c->peer_address, sizeof c->peer_address) ||
        !terminated(c->client_address, sizeof c->client_address) ||
        !terminated(c->scheduler_plugin, sizeof c->scheduler_plugin) ||
        !terminated(c->isolation_plugin, sizeof c->isolation_plugin) ||
        !terminated(c->secret_file, sizeof c->secret_file) ||
        !terminated(c->backup_dir, sizeof c->backup_dir) ||
        !terminated(c->isolation_ports, sizeof c->isolation_ports) ||
        c->n_initial > JD_MAX_PEERS || c->election_timeout_ms < 10 ||
        c->election_timeout_ms > 600000 || c->heartbeat_timeout_ms < 10 ||
        c->snapshot_threshold < 16 || c->audit_max_events < 1 ||
        c->audit_max_age_s < 1 || c->max_voters < 1 || c->max_voters > 9 ||
        c->backup_interval_s < 1 || c->backup_keep < 1 ||
        c->isolation_check_s < 1 || c->restart_limit < 1 ||
        c->restart_limit > 100 || c->restart_backoff_ms < 10 ||
        c->reschedule_after_s < 1) {
        abort();
    }
    if (strcmp(c->log_level, "debug") != 0 &&
        strcmp(c->log_level, "info") != 0 &&
        strcmp(c->log_level, "warning") != 0 &&
        strcmp(c->log_level, "error") != 0) {
        abort();
    }
    for (i = 0; i < c->n_initial; i++) {
        if (!terminated(c->initial_cluster[i].name,
                        sizeof c->initial_cluster[i].name) ||
            !terminated(c->initial_cluster[i].address,
                        sizeof c->initial_cluster[i].address) ||
            strchr(c->initial_cluster[i].address, ':') == NULL) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jd_config c;
    static char prog[] = "jacod", flag[] = "--config";
    char *argv[] = {prog, flag, path, NULL};
    char err[512];
    size_t len;
    int rv;
    file_write(data, size);
    memset(err, 0, sizeof err);
    /* getopt_long keeps its place between calls: start it afresh. */
    optind = 0;
    rv = jd_config_parse(&c, 3, argv, err, sizeof err);
    if (rv == 0) {
        check_config(&c);
        return 0;
    }
    len = strnlen(err, sizeof err);
    if (rv != -1 || len == 0 || len == sizeof err ||
        strchr(err, '\n') != NULL ||
        (!names_file_and_line(err, data, size) && !is_check_message(err))) {
        abort();
    }
    return 0;
}
