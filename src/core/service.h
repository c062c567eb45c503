/* Service manager integration: the systemd notification protocol (sd_notify), spoken directly on
 * $NOTIFY_SOCKET so the gateway needs no libsystemd. READY when the gateway runs, STATUS lines for
 * the platform session, WATCHDOG keep-alives from the core loop (so a stuck loop gets the gateway
 * restarted), STOPPING on shutdown. Without $NOTIFY_SOCKET every call does nothing. */
#ifndef TBGW_CORE_SERVICE_H
#define TBGW_CORE_SERVICE_H

#include <uv.h>

/* Sends one notification (e.g. "READY=1\nSTATUS=..."); 0, or -1 without a socket or on error. */
int tbgw_service_notify(const char *msg);
/* READY=1 with a status line, and the watchdog timer on loop when $WATCHDOG_USEC asks for one
 * (keep-alive every half of it; $WATCHDOG_PID, when set, must be this process). */
void tbgw_service_ready(uv_loop_t *loop, const char *status);
void tbgw_service_status(const char *status);
void tbgw_service_stopping(void);
/* Closes the watchdog timer (before the loop is closed). */
void tbgw_service_close(void);

#endif
