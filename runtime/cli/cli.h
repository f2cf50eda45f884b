/* cli: what the subcommands share — finding the bot folder to use when none
 * is given, and the usage-error convention (a clear message, exit 2). */
#ifndef PL_CLI_H
#define PL_CLI_H

#define PL_EXIT_USAGE 2

/* The default bot folder: the current directory when it holds bot.json,
 * else the folder of the parley binary (the repository root), else
 * PREFIX/share/parley/bot next to an installed binary. New string or NULL. */
char *pl_cli_default_bot(void);

/* Prints "parley CMD: message" and a hint to --help; returns PL_EXIT_USAGE. */
int pl_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int pl_cmd_serve(int argc, char **argv);
int pl_cmd_chat(int argc, char **argv);
int pl_cmd_test(int argc, char **argv);
int pl_cmd_check(int argc, char **argv);
int pl_cmd_backup(int argc, char **argv);

#endif
