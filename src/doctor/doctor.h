/* `tbgw doctor`: checks a configuration against the machine and the network it will run on and
 * prints one line per check (ok / warn / fail, the cause, the fix). See docs/DEPLOYMENT.md. */
#ifndef TBGW_DOCTOR_H
#define TBGW_DOCTOR_H

#include <stddef.h>

typedef enum { DR_OK = 0, DR_WARN, DR_FAIL } dr_status;

/* The list of results a run collects. */
typedef struct dr_report dr_report;

/* Adds one result: check is a short name ("platform.tcp"), msg the cause in plain words, fix what to
 * do (NULL when nothing). */
void dr_add(dr_report *r, dr_status st, const char *check, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The platform connection as configured. */
typedef struct dr_platform {
    const char *host;
    int port;
    int tls, insecure;
    const char *ca, *cert, *key;
    const char *token, *client_id, *username, *password;
    int timeout_ms;
} dr_platform;

/* doctor_net.c: DNS, TCP, TLS and an MQTT CONNECT with the configured credentials. */
void dr_check_platform(dr_report *r, const dr_platform *p);
/* TCP connect to host:port within timeout_ms; what names the peer in messages. */
void dr_check_tcp(dr_report *r, const char *check, const char *what, const char *host, int port,
                  int timeout_ms);
/* Certificate / key files: readable, PEM, validity, the key matching the certificate. */
void dr_check_x509(dr_report *r, const char *check, const char *cert, const char *key, const char *ca);

/* `tbgw doctor [-c PATH] [--json]`; returns the exit code (1 when a check failed). */
int tbgw_doctor_main(int argc, char **argv);

#endif
