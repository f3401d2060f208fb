/* mp.c: see mp.h. */
#include <string.h>

#include "mp.h"

void jd_mp_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void jd_mp_key(msgpack_packer *pk, const char *key)
{
    jd_mp_str(pk, key);
}

void jd_mp_kv_str(msgpack_packer *pk, const char *key, const char *value)
{
    jd_mp_str(pk, key);
    jd_mp_str(pk, value);
}

const msgpack_object *jd_mp_get(const msgpack_object *o, const char *key)
{
    size_t n = strlen(key);
    uint32_t i;
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0) {
            return &o->via.map.ptr[i].val;
        }
    }
    return NULL;
}

int jd_mp_copy_str(const msgpack_object *o, char *out, size_t size)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
        memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
        return -1;
    }
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return 0;
}

int jd_mp_u64(const msgpack_object *o, uint64_t *v)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return -1;
    }
    *v = o->via.u64;
    return 0;
}

int jd_mp_i64(const msgpack_object *o, int64_t *v)
{
    if (o != NULL && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    return -1;
}
