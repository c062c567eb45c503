/* Remote shell (see shell.h). */
#include "core/shell.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

struct tbgw_shell {
    tbgw_logger *log;
    char cwd[PATH_MAX];
    pid_t pid; /* running command, 0 = none */
    int fd;    /* its merged stdout/stderr, -1 = closed */
    int exited;
    int cd_done; /* the last command was a "cd": report done once */
};

int tbgw_shell_is_method(const char *m) {
    return strcmp(m, "getTermInfo") == 0 || strcmp(m, "sendCommand") == 0 ||
           strcmp(m, "getCommandStatus") == 0 || strcmp(m, "terminateCommand") == 0;
}

tbgw_shell *tbgw_shell_new(tbgw_logger *log) {
    tbgw_shell *sh = calloc(1, sizeof *sh);
    if (!sh) return NULL;
    sh->log = log;
    sh->fd = -1;
    if (!getcwd(sh->cwd, sizeof sh->cwd)) snprintf(sh->cwd, sizeof sh->cwd, "/");
    return sh;
}

static void reap(tbgw_shell *sh, int force) {
    if (!sh->pid) return;
    if (force) kill(-sh->pid, SIGKILL);
    if (waitpid(sh->pid, NULL, force ? 0 : WNOHANG) == sh->pid || force) sh->exited = 1;
}

static void finish(tbgw_shell *sh) {
    if (sh->fd >= 0) close(sh->fd);
    sh->fd = -1;
    sh->pid = 0;
    sh->exited = 0;
}

static int terminate(tbgw_shell *sh) {
    if (!sh->pid) return 0;
    kill(-sh->pid, SIGTERM);
    for (int i = 0; i < 50 && !sh->exited; i++) {
        reap(sh, 0);
        if (!sh->exited) usleep(10000);
    }
    if (!sh->exited) reap(sh, 1);
    finish(sh);
    return 1;
}

static json_t *term_info(tbgw_shell *sh) {
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    return json_pack("{s:s,s:s,s:s}", "platform", u.sysname, "release", u.release, "cwd", sh->cwd);
}

static int change_dir(tbgw_shell *sh, const char *arg) {
    char want[PATH_MAX * 2], real[PATH_MAX];
    if (!arg || !*arg) arg = getenv("HOME") ? getenv("HOME") : "/";
    if (arg[0] == '/')
        snprintf(want, sizeof want, "%s", arg);
    else
        snprintf(want, sizeof want, "%s/%s", sh->cwd, arg);
    if (!realpath(want, real)) return -1;
    snprintf(sh->cwd, sizeof sh->cwd, "%s", real);
    return 0;
}

static int spawn(tbgw_shell *sh, const char *cmd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        if (chdir(sh->cwd) != 0) _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    sh->pid = pid;
    sh->fd = p[0];
    sh->exited = 0;
    return 0;
}

static json_t *send_command(tbgw_shell *sh, const json_t *params) {
    const char *cmd = json_string_value(json_object_get(params, "command"));
    const char *cwd = json_string_value(json_object_get(params, "cwd"));
    if (!cmd) return json_pack("{s:b,s:s}", "ok", 0, "error", "params.command: expected a string");
    if (cwd && change_dir(sh, cwd) != 0)
        return json_pack("{s:b,s:s}", "ok", 0, "error", "params.cwd: no such folder");
    while (*cmd == ' ' || *cmd == '\t') cmd++;
    if (!*cmd) return json_pack("{s:b}", "ok", 0);
    if (terminate(sh)) TBGW_DEBUGF(sh->log, "remote shell: previous command terminated");
    sh->cd_done = 0;
    size_t w = strcspn(cmd, " \t");
    if ((w == 4 && strncmp(cmd, "quit", 4) == 0) || (w == 4 && strncmp(cmd, "exit", 4) == 0))
        return json_pack("{s:b}", "ok", 1);
    if (w == 2 && strncmp(cmd, "cd", 2) == 0) {
        const char *arg = cmd + 2;
        while (*arg == ' ' || *arg == '\t') arg++;
        if (change_dir(sh, arg) != 0) return json_pack("{s:b,s:s}", "ok", 0, "error", "cd: no such folder");
        sh->cd_done = 1;
        return json_pack("{s:b}", "ok", 1);
    }
    TBGW_INFOF(sh->log, "remote shell: running \"%s\" in %s", cmd, sh->cwd);
    if (spawn(sh, cmd) != 0) return json_pack("{s:b,s:s}", "ok", 0, "error", strerror(errno));
    return json_pack("{s:b}", "ok", 1);
}

static json_t *command_status(tbgw_shell *sh) {
    char buf[TBGW_SHELL_CHUNK + 1];
    size_t n = 0;
    int eof = sh->fd < 0;
    while (!eof && n < TBGW_SHELL_CHUNK) {
        ssize_t r = read(sh->fd, buf + n, TBGW_SHELL_CHUNK - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0)
            eof = 1;
        else if (errno != EINTR)
            break;
    }
    buf[n] = 0;
    /* keep the text valid UTF-8-ish for JSON: cut an incomplete trailing sequence */
    while (n && ((unsigned char)buf[n - 1] & 0xC0) == 0x80 && n > 1 && ((unsigned char)buf[n - 2] & 0x80)) {
        if (((unsigned char)buf[n - 2] & 0xC0) == 0xC0) break;
        n--;
    }
    reap(sh, 0);
    int done = !sh->pid ? 1 : (sh->exited && eof);
    if (sh->cd_done) done = 1;
    json_t *out = json_stringn_nocheck(buf, n);
    json_t *r = json_pack("{s:[{s:o,s:s}],s:s,s:b}", "data", "stdout", out ? out : json_string(""), "stderr",
                          "", "cwd", sh->cwd, "done", done);
    if (done && sh->pid) finish(sh);
    sh->cd_done = 0;
    return r;
}

json_t *tbgw_shell_call(tbgw_shell *sh, const char *method, const json_t *params) {
    if (strcmp(method, "getTermInfo") == 0) return term_info(sh);
    if (strcmp(method, "sendCommand") == 0) return send_command(sh, params);
    if (strcmp(method, "getCommandStatus") == 0) return command_status(sh);
    if (terminate(sh)) return json_pack("{s:b}", "ok", 1);
    return json_pack("{s:b,s:s}", "ok", 0, "error", "Process for termination not found.");
}

void tbgw_shell_free(tbgw_shell *sh) {
    if (!sh) return;
    terminate(sh);
    free(sh);
}
