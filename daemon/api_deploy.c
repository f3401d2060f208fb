/* api_deploy.c: the client API's deployment operations.
 *
 *   deploy.apply  {deployments: [...], dry_run?}  create or replace
 *                 deployments, each at its next revision: -> {revisions:
 *                 {NAME: N}} (dry_run: checked, nothing written)
 *   deploy.delete {name}                          stop and forget one
 *   deploy.status {deployment?, service?, consistent?}
 *                 -> {deployments: [...], nodes: [...]}
 *
 * Writes need the local socket or an authenticated TCP connection, like
 * every write; status is a read (this node's copy unless consistent). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mp.h"
#include "server.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void op_apply(const struct jd_ctx *ctx,
                     const struct jd_client *client,
                     const struct jd_request *req,
                     msgpack_sbuffer *reply)
{
    const msgpack_object *a = jd_mp_get(req->args, "deployments");
    const msgpack_object *dry = jd_mp_get(req->args, "dry_run");
    struct jd_deployment *deps[JD_MAX_DEPLOYMENTS];
    char err[512], detail[1024], *cmd, *p;
    unsigned i, k, n = 0;
    msgpack_packer pk;
    size_t len;
    bool ok;
    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY ||
        a->via.array.size == 0 || a->via.array.size > JD_MAX_DEPLOYMENTS) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"deployments\" must be an array of 1 to %d "
                       "deployments",
                       JD_MAX_DEPLOYMENTS);
        return;
    }
    for (i = 0; i < a->via.array.size; i++) {
        if (jd_deployment_unpack(&a->via.array.ptr[i], &deps[n], err,
                                 sizeof err) != 0) {
            jd_reply_error(reply, JD_CODE_INVALID, "deployment %u: %s", i + 1,
                           err);
            goto out;
        }
        n++;
        for (k = 0; k + 1 < n; k++) {
            if (strcmp(deps[k]->name, deps[n - 1]->name) == 0) {
                jd_reply_error(reply, JD_CODE_INVALID,
                               "deployment %s given twice", deps[k]->name);
                goto out;
            }
        }
    }
    if (dry != NULL && dry->type == MSGPACK_OBJECT_BOOLEAN &&
        dry->via.boolean) {
        jd_reply_ok(reply, &pk);
        msgpack_pack_map(&pk, 1);
        jd_mp_key(&pk, "revisions");
        msgpack_pack_map(&pk, 0);
        goto out;
    }
    if (jd_cmd_deploy_apply(deps, n, client->who, now_ms(), &cmd, &len) != 0) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        goto out;
    }
    ok = jd_api_submit(ctx, cmd, len, reply, detail, sizeof detail);
    free(cmd);
    if (!ok) {
        goto out;
    }
    /* detail: "web=3 db=1", in the order given. */
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 1);
    jd_mp_key(&pk, "revisions");
    msgpack_pack_map(&pk, n);
    for (p = strtok(detail, " "), i = 0; i < n; i++) {
        char *eq = p != NULL ? strchr(p, '=') : NULL;
        jd_mp_key(&pk, deps[i]->name);
        msgpack_pack_uint64(&pk, eq != NULL ? strtoull(eq + 1, NULL, 10) : 0);
        p = p != NULL ? strtok(NULL, " ") : NULL;
    }
out:
    for (i = 0; i < n; i++) {
        jd_deployment_free(deps[i]);
    }
}

static void op_delete(const struct jd_ctx *ctx,
                      const struct jd_client *client,
                      const struct jd_request *req,
                      msgpack_sbuffer *reply)
{
    char name[JD_DEP_NAME_MAX], *cmd;
    msgpack_packer pk;
    size_t len;
    bool ok;
    if (!jd_api_write_allowed(ctx, client, reply)) {
        return;
    }
    if (jd_mp_copy_str(jd_mp_get(req->args, "name"), name, sizeof name) != 0 ||
        jd_check_name(name) != NULL) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"name\" is not a deployment name");
        return;
    }
    if (jd_cmd_deploy_delete(name, client->who, now_ms(), &cmd, &len) != 0) {
        jd_reply_error(reply, JD_CODE_INTERNAL, "out of memory");
        return;
    }
    ok = jd_api_submit(ctx, cmd, len, reply, NULL, 0);
    free(cmd);
    if (ok) {
        jd_reply_ok(reply, &pk);
        msgpack_pack_nil(&pk);
    }
}

static void op_status(const struct jd_ctx *ctx,
                      const struct jd_request *req,
                      msgpack_sbuffer *reply)
{
    char dep[JD_DEP_NAME_MAX] = "", svc[JD_DEP_NAME_MAX] = "";
    const msgpack_object *d = jd_mp_get(req->args, "deployment");
    const msgpack_object *s = jd_mp_get(req->args, "service");
    msgpack_sbuffer body;
    msgpack_packer pk, bpk;
    bool found;
    if ((d != NULL && jd_mp_copy_str(d, dep, sizeof dep) != 0) ||
        (s != NULL &&
         (jd_mp_copy_str(s, svc, sizeof svc) != 0 || dep[0] == '\0'))) {
        jd_reply_error(reply, JD_CODE_INVALID,
                       "\"deployment\" and \"service\" must be names (a "
                       "service only with its deployment)");
        return;
    }
    if (!jd_api_barrier_if_asked(ctx, req, reply)) {
        return;
    }
    /* Packed aside first: a missing deployment is an error reply. */
    msgpack_sbuffer_init(&body);
    msgpack_packer_init(&bpk, &body, msgpack_sbuffer_write);
    found =
        jd_state_pack_deployments(ctx->state, &bpk, dep[0] != '\0' ? dep : NULL,
                                  svc[0] != '\0' ? svc : NULL);
    if (!found) {
        msgpack_sbuffer_destroy(&body);
        if (svc[0] != '\0') {
            jd_reply_error(reply, JD_CODE_NOT_FOUND,
                           "no service %s in deployment %s", svc, dep);
        } else {
            jd_reply_error(reply, JD_CODE_NOT_FOUND,
                           "no deployment named \"%s\"", dep);
        }
        return;
    }
    jd_reply_ok(reply, &pk);
    msgpack_pack_map(&pk, 2);
    jd_mp_key(&pk, "deployments");
    /* pk packs into reply: the packed value goes in as it is. */
    (void)msgpack_sbuffer_write(reply, body.data, body.size);
    msgpack_sbuffer_destroy(&body);
    jd_mp_key(&pk, "nodes");
    jd_state_pack_nodes(ctx->state, &pk);
}

bool jd_api_deploy(const struct jd_ctx *ctx,
                   const struct jd_client *client,
                   const struct jd_request *req,
                   msgpack_sbuffer *reply)
{
    if (strcmp(req->op, "deploy.apply") == 0) {
        op_apply(ctx, client, req, reply);
    } else if (strcmp(req->op, "deploy.delete") == 0) {
        op_delete(ctx, client, req, reply);
    } else if (strcmp(req->op, "deploy.status") == 0) {
        op_status(ctx, req, reply);
    } else {
        return false;
    }
    return true;
}
