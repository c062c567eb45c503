/* Loading optional modules (see module.h). */
#include "util/module.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TBGW_MODULE_DIR
#define TBGW_MODULE_DIR "/usr/lib/tbgw/modules"
#endif

/* Tries dir/name.so; appends what went wrong to why. */
static void *try_dir(const char *dir, const char *name, const char *sym, char *why, size_t why_len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    size_t used = strlen(why);
    if (access(path, F_OK) != 0) {
        snprintf(why + used, why_len - used, "%s%s (absent)", used ? ", " : "", path);
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why + used, why_len - used, "%s%s (%s)", used ? ", " : "", path, dlerror());
        return NULL;
    }
    void *p = dlsym(h, sym);
    if (!p) {
        snprintf(why + used, why_len - used, "%s%s (no symbol %s)", used ? ", " : "", path, sym);
        dlclose(h);
    }
    return p;
}

int tbgw_exe_sibling(const char *sub, char *out, size_t out_len) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return -1;
    *slash = 0;
    int w = snprintf(out, out_len, "%s/%s", exe, sub);
    return w < 0 || (size_t)w >= out_len ? -1 : 0;
}

void *tbgw_module_symbol(const char *name, const char *sym, tbgw_err *err) {
    char why[2048] = "";
    void *p = NULL;
    const char *env = getenv("TBGW_MODULE_PATH");
    char *copy = env ? strdup(env) : NULL, *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !p; d = strtok_r(NULL, ":", &save))
        p = try_dir(d, name, sym, why, sizeof why);
    free(copy);
    char dir[4096];
    if (!p && tbgw_exe_sibling("modules", dir, sizeof dir) == 0) p = try_dir(dir, name, sym, why, sizeof why);
    if (!p) p = try_dir(TBGW_MODULE_DIR, name, sym, why, sizeof why);
    if (!p) tbgw_err_set(err, TBGW_ENOENT, "cannot load module %s: tried %s", name, why);
    return p;
}
