/* fuzz_jointoken.c: libFuzzer target for the join token decoder
 * (jointoken.c), which reads what an operator pastes and what a joining
 * node presents. A token that parses must survive a re-encoding intact.
 * fuzz-sources: lib/jointoken.c lib/mpbound.c lib/error.c lib/datadir.c */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jointoken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_token(const struct jr__join_token *a,
                       const struct jr__join_token *b)
{
    unsigned i;
    if (strcmp(a->cluster_id, b->cluster_id) != 0 ||
        a->n_addresses != b->n_addresses || a->expires_ms != b->expires_ms ||
        memcmp(a->nonce, b->nonce, sizeof a->nonce) != 0) {
        return false;
    }
    for (i = 0; i < a->n_addresses; i++) {
        if (strcmp(a->addresses[i], b->addresses[i]) != 0) {
            return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The secret the seed corpus was made with: 32 bytes of 0x01. */
    static const unsigned char secret[JR__SECRET_LEN] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    };
    static char again[JR__TOKEN_TEXT_SIZE];
    char errmsg[JR_ERRMSG_SIZE];
    struct jr__join_token t, u;
    char *text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (jr__token_parse(text, &t, errmsg) == 0) {
        if (jr__token_encode(&t, secret, again, sizeof again, errmsg) != 0 ||
            jr__token_parse(again, &u, errmsg) != 0 || !same_token(&t, &u)) {
            abort();
        }
    }
    (void)jr__token_verify(text, secret, "00112233445566778899aabbccddeeff", 0,
                           &t, errmsg);
    free(text);
    return 0;
}
