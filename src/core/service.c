/* sd_notify without libsystemd: a datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ("@..." is
 * an abstract socket). */
#include "core/service.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uv_timer_t wd_timer;
static int wd_active;

int tbgw_service_notify(const char *msg) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) return -1;
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
    return w < 0 ? -1 : 0;
}

static void on_watchdog(uv_timer_t *t) {
    (void)t;
    tbgw_service_notify("WATCHDOG=1");
}

void tbgw_service_ready(uv_loop_t *loop, const char *status) {
    char msg[512];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
    if (tbgw_service_notify(msg) != 0) return;
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    long long us = usec ? atoll(usec) : 0;
    if (us <= 0 || (pid && atoi(pid) != (int)getpid()) || wd_active) return;
    uint64_t period = (uint64_t)(us / 2000);
    if (period < 1) period = 1;
    uv_timer_init(loop, &wd_timer);
    uv_timer_start(&wd_timer, on_watchdog, period, period);
    uv_unref((uv_handle_t *)&wd_timer); /* the keep-alive alone does not keep the loop running */
    wd_active = 1;
}

void tbgw_service_status(const char *status) {
    char msg[512];
    snprintf(msg, sizeof msg, "STATUS=%s", status);
    tbgw_service_notify(msg);
}

void tbgw_service_stopping(void) {
    tbgw_service_notify("STOPPING=1\nSTATUS=stopping");
}

void tbgw_service_close(void) {
    if (!wd_active) return;
    uv_timer_stop(&wd_timer);
    if (!uv_is_closing((uv_handle_t *)&wd_timer)) uv_close((uv_handle_t *)&wd_timer, NULL);
    wd_active = 0;
}
