/* server.h: jacod's client API: the unix socket and TCP listeners
 * (server.c) and the request handlers (api.c), which run on libuv's thread
 * pool so that a write waiting for a quorum never holds up the daemon's
 * loop. */
#ifndef JD_SERVER_H
#define JD_SERVER_H

#include <jacoraft.h>
#include <msgpack.h>
#include <stdbool.h>
#include <uv.h>

#include "proto.h"
#include "state.h"

/* What every handler may use; read-only after start. */
struct jd_ctx {
    struct jr_node *node;
    struct jd_state *state;
    const char *name;     /* this node's */
    const char *data_dir; /* jacod's data directory */
};

/* Who sent a request, for the audit log and for permissions. */
struct jd_client {
    bool local; /* on the unix socket (permissions checked by the kernel) */
    char who[96];
    /* TCP: the client proved the cluster secret (auth.challenge, then
     * auth.response); until then only those two are answered. */
    bool authenticated;
    bool challenged;
    unsigned char cn[32], sn[32];
};

/* api.c: answer one decoded request (any thread but the library's loop). */
void jd_api_handle(const struct jd_ctx *ctx,
                   struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply);

/* api.c's helpers, for the api_*.c files. */
/* The library's error rv as the reply (its slug is the code). */
void jd_api_reply_jr(msgpack_sbuffer *reply, int rv, const char *message);
/* A write needs the local socket or an authenticated connection, and a
 * member node; false with the reply set otherwise. */
bool jd_api_write_allowed(const struct jd_ctx *ctx,
                          const struct jd_client *client,
                          msgpack_sbuffer *reply);
/* A read barrier when the request asks "consistent"; false with the
 * reply set if it failed. */
bool jd_api_barrier_if_asked(const struct jd_ctx *ctx,
                             const struct jd_request *req,
                             msgpack_sbuffer *reply);
/* Apply a state command and wait for it: true if the state machine took
 * it (its "ok: DETAIL" in detail, if given); false with the reply set to
 * the library's or the state machine's error. */
bool jd_api_submit(const struct jd_ctx *ctx,
                   const char *cmd,
                   size_t len,
                   msgpack_sbuffer *reply,
                   char *detail,
                   size_t detail_size);

/* api_deploy.c: deploy.apply, deploy.delete and deploy.status; false if
 * req is not one. */
bool jd_api_deploy(const struct jd_ctx *ctx,
                   const struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply);

/* api_backup.c: the backup.* operations; false if req is not one. */
bool jd_api_backup(const struct jd_ctx *ctx,
                   const struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply);

/* Remove what a jacod that died mid-transfer left in
 * <data-dir>/backup-transfer/ (at start, before serving). */
void jd_api_backup_cleanup(const char *data_dir);

struct jd_server;

/* Listen on socket_path (created mode 0600, its directory 0755 if missing;
 * a stale socket is replaced, a live one is an error) and, if
 * tcp_address is not empty, on that HOST:PORT. Returns NULL with a message
 * in err. */
struct jd_server *jd_server_start(uv_loop_t *loop,
                                  const struct jd_ctx *ctx,
                                  const char *socket_path,
                                  const char *tcp_address,
                                  char *err,
                                  size_t errlen);
/* Tell watchers of a change (any thread). */
void jd_server_notify(struct jd_server *srv, uint64_t index, const char *type);
/* Stop listening, close every connection; the loop then runs dry. */
void jd_server_stop(struct jd_server *srv);

#endif
