/* jaco.h: what jaco's verbs share across its files (jaco.c: talking to
 * jacod and printing; jaco_backup.c: backup and restore). */
#ifndef JACO_H
#define JACO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

extern bool jaco_json_output;        /* -o json */
extern const char *jaco_secret_file; /* --secret-file */
extern bool jaco_consistent;         /* --consistent */

struct reply {
    char code[64];
    char message[1024];
    const msgpack_object *result;
    msgpack_unpacked unpacked;
    char *buf;
};

/* A connection to jacod, authenticated over --server with --secret-file.
 * Exits with EXIT_UNREACHABLE when jacod cannot be reached. */
int jaco_connect(void);
/* Take opt (--socket, --server or --secret-file) with its value; false if
 * opt is none of those. */
bool jaco_set_connection(const char *opt, const char *value);
/* One request on fd and its reply; exits on transport errors. */
void jaco_call_on(int fd,
                  const char *op,
                  msgpack_sbuffer *args,
                  struct reply *r);
void jaco_reply_free(struct reply *r);
/* Print the reply's error (and a hint) and exit with EXIT_FAILED. */
void jaco_fail_reply(struct reply *r);
/* The same with hint instead of the code's own (NULL: the code's). */
void jaco_fail_reply_hint(struct reply *r, const char *hint);

void jaco_json_string(FILE *out, const char *p, size_t n);
void jaco_print_json(FILE *out, const msgpack_object *o);
const char *jaco_str_of(const msgpack_object *o, const char *key);
uint64_t jaco_u64_of(const msgpack_object *o, const char *key);
int64_t jaco_i64_of(const msgpack_object *o, const char *key);

/* "90s", "15m", "2h", "7d" or plain seconds, in ms; -1 if malformed. */
int64_t jaco_parse_duration_ms(const char *s);

/* jaco_deploy.c: apply, status and delete; argv[0] is the verb. */
int jaco_apply_cmd(int argc, char **argv);
int jaco_status_cmd(int argc, char **argv);
int jaco_delete_cmd(int argc, char **argv);

/* jaco_backup.c; argv[0] is the noun. */
int jaco_backup_cmd(int argc, char **argv);
int jaco_restore_cmd(int argc, char **argv);

#endif
