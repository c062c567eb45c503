/* A wake-up descriptor: an eventfd that is readable from kick() until drain(). The connector host's
 * downlink descriptor is one; hosts in tests and benchmarks use the same calls. */
#ifndef TBGW_UTIL_WAKEFD_H
#define TBGW_UTIL_WAKEFD_H

/* A new non-blocking, close-on-exec eventfd, or -1 (errno set). */
int tbgw_wakefd_new(void);
/* Makes fd readable (any thread; async-signal-safe). */
void tbgw_wakefd_kick(int fd);
/* Makes fd unreadable again until the next kick. */
void tbgw_wakefd_drain(int fd);
/* Waits up to timeout_ms for fd to become readable (EINTR retried). 1 = readable, 0 = timed out. */
int tbgw_wakefd_wait(int fd, int timeout_ms);

#endif
