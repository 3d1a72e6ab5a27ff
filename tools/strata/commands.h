/* SPDX-License-Identifier: MIT */
/*
 * commands.h — the subcommands of the `strata` program. Each lives in its
 * own cmd_<name>.c and takes the arguments after its name (argv[0] is the
 * subcommand's name). Exit codes: 0 success, 1 failure, 2 bad usage/input.
 */
#ifndef STRATA_TOOL_COMMANDS_H
#define STRATA_TOOL_COMMANDS_H

int cmd_bench(int argc, char **argv);
int cmd_frag(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
