/* The drover CLI's subcommands. Each takes the arguments after its own name (argv[0] is the
 * subcommand) and returns the exit status: 0 success, 1 failure, 2 usage error. */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

/* validate -f FILE|DIR|- [-f ...] [-R] [-o json|yaml] */
int drv_cli_validate(int argc, char **argv);

#endif
