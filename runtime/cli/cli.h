/* cli: what the subcommands share — finding the bot folder to use when none
 * is given, and the usage-error convention (a clear message, exit 2). */
#ifndef PL_CLI_H
#define PL_CLI_H

#define PL_EXIT_USAGE 2

/* The default bot folder: the current directory when it holds bot.json,
 * else the folder of the parley binary (the repository root), else
 * PREFIX/share/parley/bot next to an installed binary. New string or NULL. */
char *pl_cli_default_bot(void);

/* The folder of parley's LuaLS definition files (---@meta, for editors), as
 * an absolute path: the repository's runtime/types beside the parley binary,
 * else PREFIX/share/parley/types beside an installed one (make install).
 * New string, or NULL when neither is there. */
char *pl_cli_types_dir(void);

/* Prints "parley CMD: message" and a hint to --help; returns PL_EXIT_USAGE. */
int pl_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int pl_cmd_new(int argc, char **argv);
/* parley serve --log-file (log_file.c): path opened to append takes the
 * place of stderr, where every log line goes; reopen opens it again by its
 * name (SIGHUP, after a rotation renamed it). On failure the log stays
 * where it was. pl_cli_log_file: the path, or NULL without --log-file. */
int pl_cli_log_file_open(const char *path, char **err);
int pl_cli_log_file_reopen(char **err);
const char *pl_cli_log_file(void);

int pl_cmd_serve(int argc, char **argv);
int pl_cmd_chat(int argc, char **argv);
int pl_cmd_test(int argc, char **argv);
int pl_cmd_check(int argc, char **argv);
int pl_cmd_replay(int argc, char **argv);
int pl_cmd_understand(int argc, char **argv);
int pl_cmd_backup(int argc, char **argv);

#endif
