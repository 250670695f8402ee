/*
 * The agent commands that talk to the relay: enroll, run, help, status.
 * Each takes (argc, argv) with argv[0] the command name and returns the
 * exit status; agent/main.c holds the table.
 */
#ifndef TL_AGENT_COMMANDS_H
#define TL_AGENT_COMMANDS_H

/* Exit status of `help` when the request was saved but not yet delivered. */
#define TL_EXIT_QUEUED 75

int tl_agent_cmd_enroll(int argc, char **argv);
int tl_agent_cmd_run(int argc, char **argv);
int tl_agent_cmd_help(int argc, char **argv);
int tl_agent_cmd_status(int argc, char **argv);

#endif
