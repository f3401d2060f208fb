/* mpbound.h: a bounds check for untrusted msgpack input, shared by the
 * library's decoders and jacod's client protocol. */
#ifndef JR_MPBOUND_H
#define JR_MPBOUND_H

#include <stdbool.h>
#include <stddef.h>

/* True when buf holds exactly one well-formed msgpack value whose every
 * declared length and element count fits in buf. Run it before
 * msgpack_unpack_next on anything that came from outside. */
bool jr__msgpack_bounded(const char *buf, size_t len);

#endif
