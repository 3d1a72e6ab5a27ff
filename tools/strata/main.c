/* SPDX-License-Identifier: MIT */
/*
 * main.c — the `strata` command: dispatches to one subcommand per file.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "strata/defs.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"bench", cmd_bench, "compare allocators on a suite of workloads (table, chart)"},
    {"frag", cmd_frag, "diagnose this machine's memory fragmentation from /proc"},
    {"run", cmd_run, "run a program on strata's malloc, stats at exit"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: strata COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'strata COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("strata %s\n", strata_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "strata: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
