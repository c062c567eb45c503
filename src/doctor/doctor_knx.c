/* `tbgw doctor` for the KNX connector: asks the configured KNXnet/IP gateway for its description
 * (DESCRIPTION_REQUEST over UDP), or searches when no address is configured; TCP tunnelling checks the
 * TCP port; routing only names the group (its traffic shows in the connector). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "doctor/doctor.h"
#include "doctor/doctor_knx.h"
#include "proto/knx/knx_frame.h"
#include "util/time.h"

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static int num(const json_t *o, const char *k, int dflt) {
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

/* Sends req to ip:port and waits up to ms for a frame of service want; 1 = got it (parsed into f). */
static int ask(uint32_t ip, uint16_t port, uint16_t service, uint16_t want, int ms, knx_frame *f, char *peer,
               size_t peer_cap) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip)};
    struct sockaddr_in me = {.sin_family = AF_INET};
    socklen_t sl = sizeof me;
    int tmp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* which local address faces the peer */
    if (tmp >= 0 && connect(tmp, (struct sockaddr *)&sa, sizeof sa) == 0)
        getsockname(tmp, (struct sockaddr *)&me, &sl);
    if (tmp >= 0) close(tmp);
    me.sin_port = 0;
    bind(s, (struct sockaddr *)&me, sizeof me);
    sl = sizeof me;
    getsockname(s, (struct sockaddr *)&me, &sl);
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &me.sin_addr, sizeof me.sin_addr);
    knx_hpai h = {KNX_HPAI_UDP, ntohl(me.sin_addr.s_addr), ntohs(me.sin_port)};
    uint8_t buf[KNX_MAX_FRAME];
    int n = service == KNX_SEARCH_REQ ? knx_enc_search_req(buf, sizeof buf, &h)
                                      : knx_enc_description_req(buf, sizeof buf, &h);
    int got = 0;
    if (n > 0 && sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&sa, sizeof sa) == n) {
        int64_t end = tbgw_mono_ms() + ms;
        for (int64_t now = tbgw_mono_ms(); !got && now < end; now = tbgw_mono_ms()) {
            struct pollfd pfd = {.fd = s, .events = POLLIN};
            if (poll(&pfd, 1, (int)(end - now)) <= 0) break;
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t r = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (r > 0 && knx_frame_parse(buf, (size_t)r, f) == 0 && f->service == want) {
                got = 1;
                uint32_t pip = f->hpai.ip ? f->hpai.ip : ntohl(from.sin_addr.s_addr);
                struct in_addr a = {htonl(pip)};
                char ipb[32];
                inet_ntop(AF_INET, &a, ipb, sizeof ipb);
                snprintf(peer, peer_cap, "%s", ipb);
            }
        }
    }
    close(s);
    return got;
}

void dr_check_knx(dr_report *r, const char *check, const char *name, const json_t *client) {
    const char *type = str(client, "type");
    const char *gw = str(client, "gatewayIP");
    if (!gw) gw = str(client, "gatewayIp");
    int port = num(client, "gatewayPort", KNX_DEFAULT_PORT);
    char what[300], peer[32] = "";
    knx_frame f;
    if (type && !strcasecmp(type, "ROUTING")) {
        const char *g = str(client, "multicastGroup");
        dr_add(r, DR_OK, check, NULL, "\"%s\": routing on %s:%d; its traffic shows in the connector's log",
               name, g ? g : KNX_DEFAULT_MCAST, num(client, "multicastPort", KNX_DEFAULT_PORT));
        return;
    }
    if (type && !strcasecmp(type, "TUNNELING_TCP") && gw) {
        snprintf(what, sizeof what, "\"%s\" KNXnet/IP gateway", name);
        dr_check_tcp(r, check, what, gw, port, 3000);
        return;
    }
    struct in_addr a;
    if (!gw) {
        const char *g = str(client, "multicastGroup");
        int mport = num(client, "multicastPort", KNX_DEFAULT_PORT);
        if (inet_pton(AF_INET, g ? g : KNX_DEFAULT_MCAST, &a) != 1) return; /* --check-config reports it */
        if (ask(ntohl(a.s_addr), (uint16_t)mport, KNX_SEARCH_REQ, KNX_SEARCH_RES, 3000, &f, peer,
                sizeof peer))
            dr_add(r, DR_OK, check, NULL, "\"%s\": no gatewayIP; the search found \"%s\" at %s:%u", name,
                   f.name, peer, (unsigned)f.hpai.port);
        else
            dr_add(r, DR_FAIL, check,
                   "set client.gatewayIP, or check that a KNXnet/IP gateway is on this network",
                   "\"%s\": no gatewayIP and no KNXnet/IP gateway answered a search on %s:%d within 3 s",
                   name, g ? g : KNX_DEFAULT_MCAST, mport);
        return;
    }
    if (inet_pton(AF_INET, gw, &a) != 1) return;
    if (ask(ntohl(a.s_addr), (uint16_t)port, KNX_DESCRIPTION_REQ, KNX_DESCRIPTION_RES, 3000, &f, peer,
            sizeof peer)) {
        char ia[16];
        knx_ia_format(f.dev_ia, ia, sizeof ia);
        dr_add(r, DR_OK, check, NULL, "\"%s\": KNXnet/IP gateway \"%s\" (%s) answers at %s:%d", name, f.name,
               ia, gw, port);
    } else
        dr_add(r, DR_FAIL, check, "check client.gatewayIP/gatewayPort and that the gateway is on",
               "\"%s\": no KNXnet/IP gateway answered a DESCRIPTION_REQUEST at %s:%d within 3 s", name, gw,
               port);
}
