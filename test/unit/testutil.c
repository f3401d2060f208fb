/* testutil.c: helpers shared by the unit test files (testutil.h). */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <check.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "jacoraft.h"
#include "testutil.h"

unsigned tu_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int remove_entry(const char *path,
                        const struct stat *st,
                        int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rm_rf(const char *dir)
{
    if (dir[0] != '\0') {
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

void tu_wait_leader(struct jr_node *node, unsigned ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000u;
    for (;;) {
        struct jr_status *st = NULL;
        int state;
        ck_assert_int_eq(jr_node_status(node, &st), 0);
        state = st->state;
        jr_status_free(st);
        if (state == JR_STATE_LEADER) {
            return;
        }
        ck_assert_msg(uv_hrtime() < deadline,
                      "no leader after %u ms (state %s)", ms,
                      jr_state_name(state));
        uv_sleep(5);
    }
}
