/* The MQTT session to ThingsBoard on the core's libuv loop (libmosquitto in external-loop mode).
 * Connects off-loop (DNS, TCP), reconnects forever with capped full-jitter backoff, explains every
 * refused or failed connection. */
#ifndef TBGW_PLATFORM_TB_CLIENT_H
#define TBGW_PLATFORM_TB_CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "core/config.h"

typedef struct tb_client tb_client;

typedef struct tb_client_cbs {
    void (*on_ready)(void *ud);                 /* CONNACK accepted and subscriptions sent */
    void (*on_lost)(void *ud, const char *why); /* session ended (in-flight publishes are void) */
    void (*on_message)(void *ud, const char *topic, const void *payload, size_t len);
    void (*on_publish)(void *ud, int mid); /* PUBACK (QoS 1) or written (QoS 0) */
} tb_client_cbs;

tb_client *tb_client_new(uv_loop_t *loop, const tbgw_config *cfg, const tb_client_cbs *cbs, void *ud);
void tb_client_start(tb_client *c);
/* Returns 0 and the message id, or a negative TBGW_E* (not connected, too large, ...). */
int tb_client_publish(tb_client *c, const char *topic, const void *payload, size_t len, int qos, int *mid);
/* Sends what the socket holds back now (after a latency-critical publish: RPC replies, requests). */
void tb_client_push(tb_client *c);
int tb_client_is_connected(const tb_client *c);
/* Server limits from CONNACK (0 = none). */
int tb_client_server_max_packet(const tb_client *c);
int tb_client_server_receive_max(const tb_client *c);
/* Bytes queued in libmosquitto not yet written (approximation: messages in flight). */
void tb_client_stop(tb_client *c); /* disconnects and releases; the loop must run to finish closing */
void tb_client_free(tb_client *c);
/* Human explanation of a CONNACK reason code. */
const char *tb_client_connack_text(int rc, int v5);
#endif
