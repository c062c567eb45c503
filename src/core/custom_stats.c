#include "core/custom_stats.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/time.h"

extern char **environ;

json_t *tbgw_custom_stats_load(const char *path, tbgw_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        tbgw_err_set(err, TBGW_EINVAL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    if (!json_is_array(j)) {
        tbgw_err_set(err, TBGW_EINVAL,
                     "%s: expected a list of {\"command\",\"timeout\",\"attributeOnGateway\"}", path);
        goto fail;
    }
    json_array_foreach(j, i, e) {
        json_t *cmd = json_object_get(e, "command");
        json_t *key = json_object_get(e, "attributeOnGateway");
        json_t *to = json_object_get(e, "timeout");
        int ok_cmd = json_is_string(cmd) || (json_is_array(cmd) && json_array_size(cmd) > 0);
        for (size_t k = 0; json_is_array(cmd) && k < json_array_size(cmd); k++)
            if (!json_is_string(json_array_get(cmd, k))) ok_cmd = 0;
        if (!ok_cmd || !json_is_string(key) || (to && !json_is_number(to))) {
            tbgw_err_set(
                err, TBGW_EINVAL,
                "%s: [%zu]: needs \"command\" (string or list of strings), \"attributeOnGateway\" (string) "
                "and a numeric \"timeout\"",
                path, i);
            goto fail;
        }
        json_array_append(out, e);
    }
    json_decref(j);
    return out;
fail:
    json_decref(j);
    json_decref(out);
    return NULL;
}

/* Runs one command with a deadline; 0 and its stdout in out, or -1. */
static int run_one(const json_t *cmd, int64_t timeout_ms, tbgw_buf *out) {
    const char *argv[64];
    size_t n = 0;
    if (json_is_string(cmd)) {
        argv[n++] = "/bin/sh";
        argv[n++] = "-c";
        argv[n++] = json_string_value(cmd);
    } else {
        for (size_t k = 0; k < json_array_size(cmd) && n < 63; k++)
            argv[n++] = json_string_value(json_array_get(cmd, k));
    }
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", 0, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    int64_t deadline = tbgw_mono_ms() + timeout_ms;
    char chunk[1024];
    int timed_out = 0;
    for (;;) {
        int64_t left = deadline - tbgw_mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t r = read(fds[0], chunk, sizeof chunk);
        if (r <= 0) break;
        if (out->len < 65536) tbgw_buf_append(out, chunk, (size_t)r);
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? -1 : 0;
}

json_t *tbgw_custom_stats_run(const json_t *commands) {
    json_t *res = json_object();
    tbgw_logger *lg = tbgw_logger_get("service");
    size_t i;
    json_t *e;
    json_array_foreach(commands, i, e) {
        const char *key = json_string_value(json_object_get(e, "attributeOnGateway"));
        json_t *to = json_object_get(e, "timeout");
        int64_t timeout_ms = to ? (int64_t)(json_number_value(to) * 1000) : 10000;
        tbgw_buf b;
        tbgw_buf_init(&b);
        if (run_one(json_object_get(e, "command"), timeout_ms > 0 ? timeout_ms : 1, &b) != 0) {
            TBGW_WARNF(lg, "custom statistics command for \"%s\" failed or timed out", key);
            tbgw_buf_free(&b);
            continue;
        }
        const char *s = tbgw_buf_cstr(&b);
        while (b.len && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == ' ' || b.p[b.len - 1] == '\r'))
            b.p[--b.len] = 0;
        char *end;
        double d = strtod(s, &end);
        if (*s && !*end)
            json_object_set_new(res, key, json_real(d));
        else
            json_object_set_new(res, key, json_string(s));
        tbgw_buf_free(&b);
    }
    return res;
}
