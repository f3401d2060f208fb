/* mp.h: small msgpack-c helpers for jacod's commands, snapshots and client
 * protocol: packing strings and map keys, and reading typed fields of maps
 * (every reader rejects the wrong type and, for strings, what does not fit). */
#ifndef JD_MP_H
#define JD_MP_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

void jd_mp_str(msgpack_packer *pk, const char *s);
void jd_mp_key(msgpack_packer *pk, const char *key);
void jd_mp_kv_str(msgpack_packer *pk, const char *key, const char *value);

/* The value of key in map o, or NULL (also when o is NULL or not a map). */
const msgpack_object *jd_mp_get(const msgpack_object *o, const char *key);
/* 0, or -1 if o is NULL, of another type, or (strings) size bytes or more
 * long or holding a NUL. */
int jd_mp_copy_str(const msgpack_object *o, char *out, size_t size);
int jd_mp_u64(const msgpack_object *o, uint64_t *v);
int jd_mp_i64(const msgpack_object *o, int64_t *v);

#endif
