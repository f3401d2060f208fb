/* error.c: the error table, its lookups, and translation from raft, libuv
 * and errno codes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "jr_internal.h"

struct error_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct error_entry error_table[] = {{JR_OK, "JR_OK", "success"},
#define ERROR_ROW(name, value, text) {value, #name, text},
                                                 JR_ERRORS(ERROR_ROW)
#undef ERROR_ROW
};

/* Wire and CLI names, kept beside the table: a new code needs one here. */
static const char *slug_of(int code)
{
    switch (code) {
        case JR_OK: return "ok";
        case JR_ENOMEM: return "no_memory";
        case JR_EINVAL: return "invalid_argument";
        case JR_ENOLEADER: return "no_leader";
        case JR_EQUORUMLOST: return "quorum_lost";
        case JR_ETIMEDOUT: return "timeout";
        case JR_ELEADERSHIPLOST: return "leadership_lost";
        case JR_ECANCELED: return "canceled";
        case JR_ELOCKED: return "locked";
        case JR_EIO: return "io_error";
        case JR_ENOSPACE: return "no_space";
        case JR_ECORRUPT: return "corrupt";
        case JR_EPROTO: return "protocol_error";
        case JR_EMISMATCH: return "identity_mismatch";
        case JR_ESTATE: return "wrong_state";
        case JR_ENOTFOUND: return "not_found";
        case JR_ETOOBIG: return "too_big";
        case JR_EAPPLY: return "apply_failed";
        case JR_ESNAPSHOT: return "snapshot_failed";
        case JR_EBUSY: return "busy";
        case JR_ECONNECT: return "connect_failed";
        case JR_EDEADLK: return "deadlock";
        case JR_EVERSION: return "unsupported_version";
        case JR_ENOTEMPTY: return "not_empty";
        default: return "unknown_error";
    }
}

static const struct error_entry *lookup(int code)
{
    size_t i;
    for (i = 0; i < sizeof error_table / sizeof error_table[0]; i++) {
        if (error_table[i].code == code) {
            return &error_table[i];
        }
    }
    return NULL;
}

const char *jr_strerror(int code)
{
    const struct error_entry *e = lookup(code);
    return e != NULL ? e->text : "unknown error";
}

const char *jr_err_name(int code)
{
    const struct error_entry *e = lookup(code);
    return e != NULL ? e->name : "JR_EUNKNOWN";
}

const char *jr_err_slug(int code)
{
    return slug_of(code);
}

void jr__errf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Truncation of a diagnostic is acceptable; it stays terminated. */
    (void)vsnprintf(buf, JR_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

int jr__error_set(struct jr_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL) {
        err->code = code;
        va_start(ap, fmt);
        (void)vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int jr__err_from_raft(int rv)
{
    switch (rv) {
        case 0: return 0;
        case RAFT_NOMEM: return JR_ENOMEM;
        case RAFT_BADID:
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_BADROLE:
        case RAFT_INVALID:
        case RAFT_NAMETOOLONG: return JR_EINVAL;
        case RAFT_MALFORMED: return JR_EPROTO;
        case RAFT_NOTLEADER: return JR_ENOLEADER;
        case RAFT_LEADERSHIPLOST: return JR_ELEADERSHIPLOST;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED: return JR_ECANCELED;
        case RAFT_CANTBOOTSTRAP:
        case RAFT_CANTCHANGE: return JR_ESTATE;
        case RAFT_CORRUPT: return JR_ECORRUPT;
        case RAFT_TOOBIG: return JR_ETOOBIG;
        case RAFT_NOCONNECTION: return JR_ECONNECT;
        case RAFT_BUSY: return JR_EBUSY;
        case RAFT_NOTFOUND: return JR_ENOTFOUND;
        case RAFT_NOSPACE: return JR_ENOSPACE;
        case RAFT_UNAUTHORIZED: return JR_EMISMATCH;
        default: return JR_EIO;
    }
}

int jr__err_from_errno(int e)
{
    switch (e) {
        case 0: return 0;
        case ENOMEM: return JR_ENOMEM;
        case ENOSPC:
        case EDQUOT: return JR_ENOSPACE;
        case ENOENT: return JR_ENOTFOUND;
        case EINVAL: return JR_EINVAL;
        case ETIMEDOUT: return JR_ETIMEDOUT;
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH: return JR_ECONNECT;
        case EWOULDBLOCK: return JR_ELOCKED;
        default: return JR_EIO;
    }
}

int jr__err_from_uv(int rv)
{
    return rv < 0 ? jr__err_from_errno(-rv) : 0;
}
