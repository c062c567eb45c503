/* Starts the node-opcua test server (tests/peers/opcua_server.js) for C tests. Header-only: the
 * functions are static so each test executable gets its own copy. */
#ifndef TBGW_TEST_OPCUA_PEER_H
#define TBGW_TEST_OPCUA_PEER_H

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct opcua_peer {
    pid_t pid;
    int port;
    char url[64];
    char log[128]; /* the server's output */
} opcua_peer;

static int peer_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Returns the peers directory when node and node-opcua are installed, else NULL. */
static const char *peer_dir(void) {
    static char dir[1024];
    const char *src = getenv("TBGW_SOURCE_DIR");
    if (!src) return NULL;
    snprintf(dir, sizeof dir, "%s/tests/peers", src);
    char mod[1100];
    snprintf(mod, sizeof mod, "%s/node_modules/node-opcua", dir);
    if (access(mod, F_OK) != 0) return NULL;
    if (system("node --version >/dev/null 2>&1") != 0) return NULL;
    return dir;
}

/* Starts the server on port (0 = a free one) with optional extra args; waits for READY. */
static int peer_start_pki(opcua_peer *p, int port, const char *user, const char *many, const char *pki);

__attribute__((unused)) static int peer_start(opcua_peer *p, int port, const char *user, const char *many) {
    return peer_start_pki(p, port, user, many, NULL);
}

/* Extra server arguments (e.g. "--late", "3"), set before peer_start. */
static const char *peer_extra[2];

/* Makes a CA and a server and a client certificate signed by it in dir (openssl CLI). */
__attribute__((unused)) static int peer_make_pki(const char *dir) {
    char cmd[4096];
    snprintf(
        cmd, sizeof cmd,
        "set -e; cd '%s'; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj '/CN=tbgw test "
        "CA' "
        "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'; "
        "for n in server:urn:tbgw:test-server client:urn:tbgw:client; do name=${n%%%%:*}; uri=${n#*:}; "
        "openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj /CN=$name; "
        "printf 'subjectAltName=URI:%%s,DNS:localhost,IP:127.0.0.1\\nkeyUsage=critical,digitalSignature,"
        "nonRepudiation,keyEncipherment,dataEncipherment\\nextendedKeyUsage=serverAuth,clientAuth\\n"
        "basicConstraints=CA:FALSE\\n' $uri > $name.ext; "
        "openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $name.pem -days 30 "
        "-extfile $name.ext; cat ca.pem >> $name.pem; done",
        dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int peer_start_pki(opcua_peer *p, int port, const char *user, const char *many, const char *pki) {
    const char *dir = peer_dir();
    if (!dir) return -1;
    p->port = port ? port : peer_free_port();
    snprintf(p->url, sizeof p->url, "opc.tcp://127.0.0.1:%d/", p->port);
    char logpath[128];
    snprintf(logpath, sizeof logpath, "/tmp/tbgw-opcua-peer-%d-%d.log", (int)getpid(), p->port);
    snprintf(p->log, sizeof p->log, "%s", logpath);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        setpgid(0, 0);
        char portstr[16], script[1100];
        snprintf(portstr, sizeof portstr, "%d", p->port);
        snprintf(script, sizeof script, "%s/opcua_server.js", dir);
        const char *argv[12] = {"node", "--security-revert=CVE-2023-46809", script, portstr, NULL};
        int k = 4;
        if (pki) argv[k++] = "--pki", argv[k++] = pki;
        if (peer_extra[0]) argv[k++] = peer_extra[0], argv[k++] = peer_extra[1];
        if (user) argv[k++] = "--user", argv[k++] = user;
        if (many) argv[k++] = "--many", argv[k++] = many;
        execvp("node", (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    int ready = 0;
    for (int waited = 0; waited < 60000 && !ready; waited += 100) {
        usleep(100000);
        FILE *f = fopen(logpath, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "READY", 5) == 0) ready = 1;
        if (f) fclose(f);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
    }
    if (!ready) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        p->pid = 0;
        return -1;
    }
    return 0;
}

static void peer_stop(opcua_peer *p) {
    if (p->pid <= 0) return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    if (!getenv("TBGW_KEEP_PEER_LOG")) unlink(p->log);
}

#endif
