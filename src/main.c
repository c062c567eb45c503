/* tbgw command line: parse arguments, load configuration, run the gateway, exit codes. */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tbgw/log.h>
#include <unistd.h>

#include "core/config.h"
#include "core/gateway.h"
#include "doctor/doctor.h"
#include "platform/provision.h"
#include "util/doc.h"
#include "util/log_config.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tbgw [-c PATH] [--check-config] [--version] [--help]\n"
               "       tbgw doctor [-c PATH] [--json]\n"
               "\n"
               "A ThingsBoard IoT Gateway reading the reference gateway's configuration files.\n"
               "\n"
               "  -c, --config PATH   tb_gateway.json or tb_gateway.yaml (default config/tb_gateway.json)\n"
               "      --check-config  validate the main file and every connector file it names;\n"
               "                      prints file:line:column: message per problem; exit 1 on errors\n"
               "  -v, --version       print the version\n"
               "  -h, --help          this text\n"
               "  doctor              check the configuration, credentials, platform, storage and\n"
               "                      connector peers; one line per check (tbgw doctor --help)\n"
               "\n"
               "Environment: TB_GW_HOST, TB_GW_PORT, TB_GW_ACCESS_TOKEN, ... override the configuration;\n"
               "TBGW_LOG_LEVEL sets the default log level (TRACE, DEBUG, INFO, WARNING, ERROR).\n");
}

/* The reference falls back to <name>.yaml when the .json file does not exist. */
static char *pick_config(const char *path) {
    if (access(path, F_OK) == 0) return strdup(path);
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".json") == 0) {
        char *y = malloc(n + 1);
        if (!y) return NULL;
        memcpy(y, path, n - 5);
        strcpy(y + n - 5, ".yaml");
        if (access(y, F_OK) == 0) return y;
        free(y);
    }
    return strdup(path);
}

static void load_logging(const tbgw_config *cfg) {
    char *p = tbgw_config_resolve(cfg, "logs.json");
    tbgw_err err;
    if (p && access(p, F_OK) == 0) {
        tbgw_doc *d = tbgw_doc_load(p, &err);
        if (d) {
            if (tbgw_log_configure(d->root, &err) != 0) {
                tbgw_doc_prefix_error(d, &err);
                fprintf(stderr, "warning: %s; logging to the console only\n", err.msg);
                tbgw_log_reset();
                tbgw_config_apply_log_levels(d->root);
            }
            tbgw_doc_free(d);
        } else {
            fprintf(stderr, "warning: %s\n", err.msg);
        }
    }
    free(p);
    const char *env = getenv("TBGW_LOG_LEVEL");
    if (env && tbgw_level_parse(env) >= 0) {
        int l = tbgw_level_parse(env);
        tbgw_log_set_level(NULL, l);
        const char *names[] = {"service", "tb_connection", "storage", "connector", "converter", "extension"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) tbgw_log_set_level(names[i], l);
    }
}

/* --check-config: logs.json is validated too (nothing is opened or created). */
static int check_logging(const tbgw_config *cfg, FILE *out) {
    char *p = tbgw_config_resolve(cfg, "logs.json");
    int errors = 0;
    if (p && access(p, F_OK) == 0) {
        tbgw_err err = {0, ""};
        tbgw_doc *d = tbgw_doc_load(p, &err);
        if (d && tbgw_log_check(d->root, &err) != 0) tbgw_doc_prefix_error(d, &err);
        if (!d || err.code) {
            fprintf(out, "%s\n", err.msg);
            errors++;
        }
        tbgw_doc_free(d);
    }
    free(p);
    return errors;
}

int main(int argc, char **argv) {
    /* Small footprint: the thread pool only runs platform connects and custom statistics commands; connector
     * threads allocate little, so a couple of malloc arenas are enough. */
    setenv("UV_THREADPOOL_SIZE", "2", 0);
    mallopt(M_ARENA_MAX, 2);
    if (argc > 1 && strcmp(argv[1], "doctor") == 0) return tbgw_doctor_main(argc - 1, argv + 1);
    const char *cfg_path = "config/tb_gateway.json";
    int check = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'v':
            printf("tbgw %s\n", TBGW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tbgw: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char *path = pick_config(cfg_path);
    tbgw_cfg_report rep = {0, 0, check ? stdout : stderr};
    tbgw_config *cfg = tbgw_config_load(path, &rep);
    if (check) {
        int errors = rep.errors;
        if (cfg)
            errors += tbgw_gateway_check_connectors(cfg, stdout, &rep.warnings) + check_logging(cfg, stdout);
        printf("%s: %d error(s), %d warning(s)\n", path, errors, rep.warnings);
        tbgw_config_free(cfg);
        free(path);
        return errors ? 1 : 0;
    }
    free(path);
    if (!cfg) {
        fprintf(stderr, "tbgw: configuration has %d error(s); not starting\n", rep.errors);
        return 1;
    }
    load_logging(cfg);
    tbgw_err perr = {0};
    if (tbgw_provision(cfg, &perr) != 0) {
        tbgw_logger *lg = tbgw_logger_get("tb_connection");
        TBGW_ERRORF(lg, "%s", perr.msg);
        fprintf(stderr, "tbgw: %s; not starting\n", perr.msg);
        tbgw_config_free(cfg);
        return 1;
    }
    tbgw_gateway *gw = tbgw_gateway_new(cfg, argv);
    if (!gw) return 1;
    int rc = tbgw_gateway_run(gw);
    tbgw_gateway_free(gw);
    return rc;
}
