/* tbgw command line. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--version") == 0) {
            printf("tbgw %s\n", TBGW_VERSION);
            return 0;
        }
    fprintf(stderr, "usage: tbgw [-c tb_gateway.json] [--check-config] [--version] [--help]\n");
    return 2;
}
