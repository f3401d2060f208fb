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
