/* `tbgw doctor`: reaching the platform (DNS, TCP, TLS, MQTT) and checking certificate files. Every
 * step is bounded by the timeout; nothing here keeps a connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "doctor/doctor.h"

/* Resolves host within timeout_ms (getaddrinfo_a). 0 with *out, or an EAI_* code / EAI_AGAIN on timeout. */
static int resolve(const char *host, int port, int timeout_ms, struct addrinfo **out) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct gaicb req = {.ar_name = host, .ar_service = service, .ar_request = &hints};
    struct gaicb *list[1] = {&req};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc) return rc;
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    const struct gaicb *const wait_list[1] = {&req};
    gai_suspend(wait_list, 1, &ts);
    rc = gai_error(&req);
    if (rc == EAI_INPROGRESS) {
        gai_cancel(&req);
        return EAI_AGAIN;
    }
    if (rc == 0) *out = req.ar_result;
    return rc;
}

/* Non-blocking connect to the first address that answers; returns a blocking fd with send/receive
 * timeouts, or -errno. */
static int connect_any(const struct addrinfo *ai, int timeout_ms, char *addr, size_t addr_len) {
    int last = ECONNREFUSED;
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, (socklen_t)addr_len, NULL, 0, NI_NUMERICHOST);
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            rc = poll(&pf, 1, timeout_ms);
            if (rc == 0) {
                errno = ETIMEDOUT;
                rc = -1;
            } else if (rc > 0) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                errno = soerr;
                rc = soerr ? -1 : 0;
            }
        }
        if (rc == 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            return fd;
        }
        last = errno;
        close(fd);
    }
    return -last;
}

static const char *tcp_fix(int e) {
    if (e == ECONNREFUSED) return "start the server, or correct the port (nothing listens there)";
    if (e == ETIMEDOUT)
        return "a firewall drops the connection, or the host is down: check the route and firewall";
    return "check the host, the port and the network";
}

void dr_check_tcp(dr_report *r, const char *check, const char *what, const char *host, int port,
                  int timeout_ms) {
    struct addrinfo *ai = NULL;
    int rc = resolve(host, port, timeout_ms, &ai);
    if (rc) {
        dr_add(r, DR_FAIL, check, "correct the host name, or the DNS settings of this machine",
               "%s: cannot resolve \"%s\": %s", what, host,
               rc == EAI_AGAIN ? "no answer in time" : gai_strerror(rc));
        return;
    }
    char addr[64] = "";
    int fd = connect_any(ai, timeout_ms, addr, sizeof addr);
    freeaddrinfo(ai);
    if (fd < 0) {
        dr_add(r, DR_FAIL, check, tcp_fix(-fd), "%s: cannot connect to %s:%d (%s): %s", what, host, port,
               addr, strerror(-fd));
        return;
    }
    close(fd);
    dr_add(r, DR_OK, check, NULL, "%s: %s:%d accepts TCP connections", what, host, port);
}

/* ---- certificates ---- */

static X509 *read_cert(const char *path, char *why, size_t why_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (!x) {
        rewind(f);
        x = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    if (!x) snprintf(why, why_len, "%s is not a PEM or DER certificate", path);
    return x;
}

static void check_validity(dr_report *r, const char *check, const char *label, const char *path, X509 *x) {
    char subj[256];
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
    int before = X509_cmp_current_time(X509_get0_notBefore(x));
    int after = X509_cmp_current_time(X509_get0_notAfter(x));
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
    if (after <= 0)
        dr_add(r, DR_FAIL, check, "renew the certificate", "%s %s (%s) has expired", label, path, subj);
    else if (before > 0)
        dr_add(r, DR_FAIL, check, "check this machine's clock, or use a certificate valid now",
               "%s %s (%s) is not valid yet", label, path, subj);
    else if (days < 30)
        dr_add(r, DR_WARN, check, "renew the certificate soon", "%s %s (%s) expires in %d day(s)", label,
               path, subj, days);
    else
        dr_add(r, DR_OK, check, NULL, "%s %s (%s) is valid for %d more days", label, path, subj, days);
}

void dr_check_x509(dr_report *r, const char *check, const char *cert, const char *key, const char *ca) {
    char why[512];
    if (ca) {
        X509 *x = read_cert(ca, why, sizeof why);
        if (!x)
            dr_add(r, DR_FAIL, check, "point caCert at the CA certificate (PEM) of the server", "%s", why);
        else
            check_validity(r, check, "CA certificate", ca, x);
        X509_free(x);
    }
    if (!cert) return;
    X509 *x = read_cert(cert, why, sizeof why);
    if (!x) {
        dr_add(r, DR_FAIL, check, "point cert at the client certificate (PEM)", "%s", why);
        return;
    }
    check_validity(r, check, "client certificate", cert, x);
    if (key) {
        FILE *f = fopen(key, "r");
        EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f) fclose(f);
        if (!f)
            dr_add(r, DR_FAIL, check, "make the key file readable by the gateway's user",
                   "cannot read %s: %s", key, strerror(errno));
        else if (!pk)
            dr_add(r, DR_FAIL, check, "point privateKey at the unencrypted PEM key of the certificate",
                   "%s is not a PEM private key (or it is encrypted)", key);
        else if (X509_check_private_key(x, pk) != 1)
            dr_add(r, DR_FAIL, check, "use the key the certificate was issued for",
                   "the private key %s does not match the certificate %s", key, cert);
        else
            dr_add(r, DR_OK, check, NULL, "the private key %s matches the certificate", key);
        EVP_PKEY_free(pk);
        ERR_clear_error();
    }
    X509_free(x);
}

/* ---- TLS and MQTT ---- */

static SSL *tls_handshake(dr_report *r, const dr_platform *p, int fd, SSL_CTX **ctx_out) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    *ctx_out = ctx;
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (p->ca) {
        if (SSL_CTX_load_verify_locations(ctx, p->ca, NULL) != 1) {
            dr_add(r, DR_FAIL, "platform.tls", "point caCert at a PEM CA certificate",
                   "cannot load the CA certificate %s", p->ca);
            return NULL;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (p->cert && p->key &&
        (SSL_CTX_use_certificate_chain_file(ctx, p->cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, p->key, SSL_FILETYPE_PEM) != 1)) {
        dr_add(r, DR_FAIL, "platform.tls", "see the credentials checks above",
               "cannot use the client certificate %s with key %s", p->cert, p->key);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, p->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, p->host);
    if (!p->insecure) SSL_set1_host(ssl, p->host);
    if (SSL_connect(ssl) != 1) {
        long vr = SSL_get_verify_result(ssl);
        char detail[256];
        if (vr != X509_V_OK)
            snprintf(detail, sizeof detail, "server certificate: %s", X509_verify_cert_error_string(vr));
        else
            ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
        const char *fix = vr == X509_V_ERR_HOSTNAME_MISMATCH
                              ? "connect by the name the certificate was issued for (or set insecure: true)"
                          : vr != X509_V_OK ? "set caCert to the CA that signed the server's certificate"
                                            : "check that the port speaks TLS (8883) and the TLS version";
        dr_add(r, DR_FAIL, "platform.tls", fix, "TLS handshake with %s:%d failed: %s", p->host, p->port,
               detail);
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    X509 *peer = SSL_get1_peer_certificate(ssl);
    int days = 0, secs = 0;
    if (peer) ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(peer));
    const char *verified = p->insecure ? "not verified (insecure)" : "verified for this host name";
    if (peer && days < 30)
        dr_add(r, DR_WARN, "platform.tls", "renew the server certificate",
               "TLS with %s:%d: %s, server certificate %s; it expires in %d day(s)", p->host, p->port,
               SSL_get_version(ssl), verified, days);
    else
        dr_add(r, DR_OK, "platform.tls", NULL, "TLS with %s:%d: %s, server certificate %s", p->host, p->port,
               SSL_get_version(ssl), verified);
    X509_free(peer);
    return ssl;
}

static size_t put_str(unsigned char *b, size_t o, const char *s) {
    size_t n = strlen(s);
    b[o++] = (unsigned char)(n >> 8);
    b[o++] = (unsigned char)n;
    memcpy(b + o, s, n);
    return o + n;
}

static const char *connack_text(int rc, const char **fix) {
    static const char *const text[] = {
        "accepted",           "unacceptable protocol version", "client identifier rejected",
        "server unavailable", "bad user name or password",     "not authorised"};
    static const char *const fixes[] = {
        NULL,
        "the server does not speak MQTT 3.1.1: check the port",
        "set another clientId",
        "the platform is not ready: check ThingsBoard's MQTT transport",
        "correct the credentials: the access token (or username/password) of the "
        "gateway device as ThingsBoard shows it",
        "correct the credentials: ThingsBoard knows no gateway device with them"};
    if (rc >= 0 && rc <= 5) {
        *fix = fixes[rc];
        return text[rc];
    }
    *fix = "check the server";
    return "unknown reason";
}

/* One MQTT 3.1.1 CONNECT with the configured credentials and a client id of its own (so a running
 * gateway's session is not taken over), then DISCONNECT. */
static void mqtt_probe(dr_report *r, const dr_platform *p, int fd, SSL *ssl) {
    unsigned char b[2048];
    char cid[64];
    snprintf(cid, sizeof cid, "tbgw-doctor-%d", (int)getpid());
    const char *user = p->token ? p->token : p->username;
    const char *client = p->client_id && !p->token ? p->client_id : cid;
    size_t need =
        12 + strlen(client) + (user ? strlen(user) + 2 : 0) + (p->password ? strlen(p->password) + 2 : 0);
    if (need > sizeof b - 8) {
        dr_add(r, DR_FAIL, "platform.mqtt", "shorten the credentials", "credentials too long to check");
        return;
    }
    size_t o = 0;
    unsigned char var[sizeof b];
    o = put_str(var, o, "MQTT");
    var[o++] = 4;
    var[o++] = (unsigned char)(0x02 | (user ? 0x80 : 0) | (user && p->password ? 0x40 : 0));
    var[o++] = 0;
    var[o++] = 30;
    o = put_str(var, o, client);
    if (user) o = put_str(var, o, user);
    if (user && p->password) o = put_str(var, o, p->password);
    size_t h = 0;
    b[h++] = 0x10;
    size_t rem = o;
    do {
        unsigned char d = rem % 128;
        rem /= 128;
        b[h++] = (unsigned char)(d | (rem ? 0x80 : 0));
    } while (rem);
    memcpy(b + h, var, o);
    size_t total = h + o;
    int w = ssl ? SSL_write(ssl, b, (int)total) : (int)send(fd, b, total, MSG_NOSIGNAL);
    unsigned char ack[4];
    int got = 0;
    while (w == (int)total && got < 4) {
        int n = ssl ? SSL_read(ssl, ack + got, 4 - got) : (int)recv(fd, ack + got, (size_t)(4 - got), 0);
        if (n <= 0) break;
        got += n;
    }
    if (got < 4 || ack[0] != 0x20) {
        dr_add(r, DR_FAIL, "platform.mqtt",
               "check that the port is ThingsBoard's MQTT port (1883, 8883 with TLS)",
               "%s:%d did not answer an MQTT CONNECT%s", p->host, p->port,
               got ? " with a CONNACK" : " (connection closed or no answer in time)");
        return;
    }
    const char *fix;
    const char *text = connack_text(ack[3], &fix);
    if (ack[3] == 0) {
        dr_add(r, DR_OK, "platform.mqtt", NULL,
               "MQTT CONNECT to %s:%d with the configured credentials: accepted", p->host, p->port);
        unsigned char disc[2] = {0xE0, 0};
        if (ssl)
            SSL_write(ssl, disc, 2);
        else
            send(fd, disc, 2, MSG_NOSIGNAL);
    } else {
        dr_add(r, DR_FAIL, "platform.mqtt", fix, "MQTT CONNECT to %s:%d refused: %s (CONNACK code %d)",
               p->host, p->port, text, ack[3]);
    }
}

void dr_check_platform(dr_report *r, const dr_platform *p) {
    struct addrinfo *ai = NULL;
    int rc = resolve(p->host, p->port, p->timeout_ms, &ai);
    if (rc) {
        dr_add(r, DR_FAIL, "platform.dns", "correct thingsboard.host, or this machine's DNS settings",
               "cannot resolve \"%s\": %s", p->host,
               rc == EAI_AGAIN ? "no answer in time" : gai_strerror(rc));
        return;
    }
    char addr[64] = "";
    int fd = connect_any(ai, p->timeout_ms, addr, sizeof addr);
    dr_add(r, DR_OK, "platform.dns", NULL, "%s resolves to %s", p->host, addr[0] ? addr : "an address");
    freeaddrinfo(ai);
    if (fd < 0) {
        dr_add(r, DR_FAIL, "platform.tcp", tcp_fix(-fd), "cannot connect to %s:%d: %s", p->host, p->port,
               strerror(-fd));
        return;
    }
    dr_add(r, DR_OK, "platform.tcp", NULL, "%s:%d accepts TCP connections", p->host, p->port);
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    if (p->tls) {
        ssl = tls_handshake(r, p, fd, &ctx);
        if (!ssl) {
            SSL_CTX_free(ctx);
            close(fd);
            return;
        }
    }
    mqtt_probe(r, p, fd, ssl);
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
}
