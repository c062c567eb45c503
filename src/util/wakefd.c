#include "util/wakefd.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/time.h"

int tbgw_wakefd_new(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void tbgw_wakefd_kick(int fd) {
    uint64_t one = 1;
    ssize_t w;
    do w = write(fd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
}

void tbgw_wakefd_drain(int fd) {
    uint64_t v;
    ssize_t r;
    do r = read(fd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
}

int tbgw_wakefd_wait(int fd, int timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int64_t end = tbgw_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int left = (int)(end - tbgw_mono_ms());
        int n = poll(&pfd, 1, left > 0 ? left : 0);
        if (n > 0) return 1;
        if (n == 0 || errno != EINTR) return 0;
    }
}
