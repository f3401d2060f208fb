/* fuzz_frame.c: libFuzzer target for the decoders of frames a peer can
 * send: library RPCs (codec.c) and raft messages (raftmsg.c).
 * fuzz-sources: lib/codec.c lib/raftmsg.c lib/error.c lib/mpbound.c */
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "jr_internal.h"
#include "raftmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[JR_ERRMSG_SIZE];
    const char *buf = (const char *)data;
    if (jr__raftmsg_is(buf, size)) {
        struct raft_message m;
        if (jr__raftmsg_decode(buf, size, &m, errmsg) == 0) {
            jr__raftmsg_release(&m);
        }
    } else {
        struct jr__msg m;
        if (jr__msg_decode(buf, size, &m, errmsg) == 0) {
            jr__msg_free(&m);
        }
    }
    return 0;
}
