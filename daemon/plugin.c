/* plugin.c: loads a scheduler or isolation plugin with dlopen and checks
 * it against the ABI in jacod_plugin.h before using anything of it. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <jacoraft.h>

#include "plugin.h"

/* The plugin struct of ABI 1 as first published: a plugin may be bigger
 * (newer), never smaller. */
#define PLUGIN_V1_SIZE                    \
    (offsetof(struct jacod_plugin, ops) + \
     sizeof(((struct jacod_plugin *)0)->ops))

static const char *kind_name(uint32_t kind)
{
    return kind == JACOD_PLUGIN_SCHEDULER   ? "scheduler"
           : kind == JACOD_PLUGIN_ISOLATION ? "isolation"
                                            : "unknown";
}

int jd_plugin_load(struct jd_plugin *pl,
                   const char *path,
                   enum jacod_plugin_kind kind,
                   const struct jacod_host *host,
                   const char *conf,
                   char *err,
                   size_t errlen)
{
    jacod_plugin_entry_fn entry;
    const struct jacod_plugin *p;
    int rv;
    memset(pl, 0, sizeof *pl);
    (void)snprintf(pl->path, sizeof pl->path, "%s", path);
    pl->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (pl->handle == NULL) {
        (void)snprintf(err, errlen, "%s plugin %s: cannot load: %s",
                       kind_name(kind), path, dlerror());
        return -1;
    }
    *(void **)&entry = dlsym(pl->handle, JACOD_PLUGIN_ENTRY);
    if (entry == NULL) {
        (void)snprintf(err, errlen,
                       "%s plugin %s: no %s symbol: not a jacod plugin",
                       kind_name(kind), path, JACOD_PLUGIN_ENTRY);
        goto fail;
    }
    p = entry(host);
    if (p == NULL) {
        (void)snprintf(err, errlen, "%s plugin %s: %s returned nothing",
                       kind_name(kind), path, JACOD_PLUGIN_ENTRY);
        goto fail;
    }
    if (p->abi != JACOD_PLUGIN_ABI) {
        (void)snprintf(err, errlen,
                       "%s plugin %s: built for plugin ABI %u, this jacod "
                       "has ABI %d: rebuild it against this jacod's "
                       "jacod_plugin.h",
                       kind_name(kind), path, p->abi, JACOD_PLUGIN_ABI);
        goto fail;
    }
    if (p->size < PLUGIN_V1_SIZE) {
        (void)snprintf(err, errlen,
                       "%s plugin %s: its plugin struct is %u bytes, ABI %d "
                       "needs at least %zu: it is damaged or not built "
                       "against jacod_plugin.h",
                       kind_name(kind), path, p->size, JACOD_PLUGIN_ABI,
                       (size_t)PLUGIN_V1_SIZE);
        goto fail;
    }
    if (p->kind != (uint32_t)kind) {
        (void)snprintf(err, errlen,
                       "%s plugin %s is a %s plugin (kind %u): check the "
                       "config key it is given to",
                       kind_name(kind), path, kind_name(p->kind), p->kind);
        goto fail;
    }
    if (p->name == NULL || p->start == NULL || p->stop == NULL) {
        (void)snprintf(err, errlen,
                       "%s plugin %s: no name, start or stop function",
                       kind_name(kind), path);
        goto fail;
    }
    rv = p->start(host, conf, &pl->state);
    if (rv != 0) {
        (void)snprintf(err, errlen, "%s plugin %s (%s): start failed: %s",
                       kind_name(kind), path, p->name, jr_strerror(rv));
        goto fail;
    }
    pl->p = p;
    return 0;
fail:
    dlclose(pl->handle);
    pl->handle = NULL;
    return -1;
}

const struct jacod_iso_ops *jd_plugin_iso_ops(const struct jd_plugin *pl)
{
    const struct jacod_iso_ops *ops;
    if (pl->p == NULL || pl->p->kind != JACOD_PLUGIN_ISOLATION) {
        return NULL;
    }
    ops = pl->p->ops;
    if (ops == NULL || ops->size < offsetof(struct jacod_iso_ops, self_test) +
                                       sizeof ops->self_test) {
        return NULL;
    }
    return ops;
}

const struct jacod_sched_ops *jd_plugin_sched_ops(const struct jd_plugin *pl)
{
    if (pl->p == NULL || pl->p->kind != JACOD_PLUGIN_SCHEDULER) {
        return NULL;
    }
    return pl->p->ops;
}

void jd_plugin_unload(struct jd_plugin *pl)
{
    if (pl->p != NULL) {
        pl->p->stop(pl->state);
        pl->p = NULL;
    }
    if (pl->handle != NULL) {
        dlclose(pl->handle);
        pl->handle = NULL;
    }
}
