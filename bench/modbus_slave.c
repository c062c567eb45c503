/* A Modbus slave built on libmodbus (a peer independent of tbgw's own stack), for integration tests,
 * the demo and benchmarks.
 *
 *   bench_modbus_slave tcp PORT [options]      TCP (any unit id), many clients
 *   bench_modbus_slave rtu DEVICE BAUD [opts]  RTU on a serial line (e.g. one end of a socat pty pair)
 * options: -u UNIT  -h ADDR=V[,ADDR=V..] holding  -i ... input  -c ... coils  -d ... discrete inputs
 *          -s FILE  after every write, dump holding registers and coils 0..199 as JSON to FILE
 *          -a 1     animate: holding registers 0 and 1 drift once a second (a demo sensor)
 * Runs until SIGTERM/SIGINT. Prints "ready" on stdout when listening. */
#include <errno.h>
#include <modbus.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NREG 10000

static volatile sig_atomic_t stop_flag;

static void on_signal(int s) {
    (void)s;
    stop_flag = 1;
}

static void preset(const char *spec, uint16_t *regs, uint8_t *bits) {
    char *dup = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        long a = strtol(tok, NULL, 0), v = strtol(eq + 1, NULL, 0);
        if (a < 0 || a >= NREG) continue;
        if (regs) regs[a] = (uint16_t)v;
        if (bits) bits[a] = v ? 1 : 0;
    }
    free(dup);
}

static void dump_state(const char *path, const modbus_mapping_t *m) {
    if (!path) return;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "{\"hr\":[");
    for (int i = 0; i < 200; i++) fprintf(f, "%s%u", i ? "," : "", m->tab_registers[i]);
    fprintf(f, "],\"co\":[");
    for (int i = 0; i < 200; i++) fprintf(f, "%s%u", i ? "," : "", m->tab_bits[i]);
    fprintf(f, "]}\n");
    fclose(f);
    rename(tmp, path);
}

static int is_write(const uint8_t *q, int hdr) {
    uint8_t fc = q[hdr];
    return fc == 5 || fc == 6 || fc == 15 || fc == 16;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(
            stderr,
            "usage: %s tcp PORT | rtu DEVICE BAUD [-u unit] [-h a=v,..] [-i ..] [-c ..] [-d ..] [-s file]\n",
            argv[0]);
        return 2;
    }
    int rtu = !strcmp(argv[1], "rtu");
    int argi = rtu ? 4 : 3;
    modbus_t *ctx =
        rtu ? modbus_new_rtu(argv[2], atoi(argv[3]), 'N', 8, 1) : modbus_new_tcp("127.0.0.1", atoi(argv[2]));
    if (!ctx) return 1;
    modbus_mapping_t *m = modbus_mapping_new(NREG, NREG, NREG, NREG);
    const char *state = NULL;
    int unit = 1, animate = 0;
    for (int i = argi; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-u")) unit = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "-h")) preset(argv[i + 1], m->tab_registers, NULL);
        if (!strcmp(argv[i], "-i")) preset(argv[i + 1], m->tab_input_registers, NULL);
        if (!strcmp(argv[i], "-c")) preset(argv[i + 1], NULL, m->tab_bits);
        if (!strcmp(argv[i], "-d")) preset(argv[i + 1], NULL, m->tab_input_bits);
        if (!strcmp(argv[i], "-s")) state = argv[i + 1];
        if (!strcmp(argv[i], "-a")) animate = atoi(argv[i + 1]);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    dump_state(state, m);
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    int hdr = modbus_get_header_length(ctx);
    if (rtu) {
        modbus_set_slave(ctx, unit);
        if (modbus_connect(ctx) < 0) {
            fprintf(stderr, "open %s: %s\n", argv[2], modbus_strerror(errno));
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        while (!stop_flag) {
            int n = modbus_receive(ctx, q);
            if (n > 0) {
                modbus_reply(ctx, q, n, m);
                if (is_write(q, hdr)) dump_state(state, m);
            }
        }
    } else {
        int lfd = modbus_tcp_listen(ctx, 64);
        if (lfd < 0) {
            fprintf(stderr, "listen: %s\n", modbus_strerror(errno));
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        fd_set all;
        FD_ZERO(&all);
        FD_SET(lfd, &all);
        int maxfd = lfd;
        time_t last = time(NULL);
        while (!stop_flag) {
            if (animate && time(NULL) != last) {
                last = time(NULL);
                m->tab_registers[0] = (uint16_t)(200 + (last % 60 < 30 ? last % 30 : 30 - last % 30));
                m->tab_registers[1] = (uint16_t)(400 + last % 17);
            }
            fd_set rd = all;
            struct timeval tv = {0, 100000};
            if (select(maxfd + 1, &rd, NULL, NULL, &tv) <= 0) continue;
            for (int fd = 0; fd <= maxfd; fd++) {
                if (!FD_ISSET(fd, &rd)) continue;
                if (fd == lfd) {
                    int c = accept(lfd, NULL, NULL);
                    if (c >= 0 && c < FD_SETSIZE) {
                        FD_SET(c, &all);
                        if (c > maxfd) maxfd = c;
                    } else if (c >= 0) {
                        close(c);
                    }
                    continue;
                }
                modbus_set_socket(ctx, fd);
                int n = modbus_receive(ctx, q);
                if (n > 0) {
                    modbus_reply(ctx, q, n, m);
                    if (is_write(q, hdr)) dump_state(state, m);
                } else if (n < 0) {
                    close(fd);
                    FD_CLR(fd, &all);
                }
            }
        }
        close(lfd);
    }
    modbus_mapping_free(m);
    modbus_close(ctx);
    modbus_free(ctx);
    return 0;
}
