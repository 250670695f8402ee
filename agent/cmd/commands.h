/*
 * The agent's commands, one file per group in agent/cmd/: enroll, run,
 * help, status, tickets; the user's side of consent (docs/consent.md): attend,
 * pending, approve, deny, sessions, end, which talk to the running agent's
 * control socket; and diag. Each takes (argc, argv) with argv[0] the
 * command name and returns the exit status; agent/main.c holds the table.
 */
#ifndef TL_AGENT_COMMANDS_H
#define TL_AGENT_COMMANDS_H

/* Exit status of `help` when the request was saved but not yet delivered. */
#define TL_EXIT_QUEUED 75

int tl_agent_cmd_enroll(int argc, char **argv);    /* enroll.c */
int tl_agent_cmd_run(int argc, char **argv);       /* run.c */
int tl_agent_cmd_help(int argc, char **argv);      /* help.c */
int tl_agent_cmd_status(int argc, char **argv);    /* status.c */
int tl_agent_cmd_tickets(int argc, char **argv);   /* tickets.c */
int tl_agent_cmd_attend(int argc, char **argv);    /* attend.c */
int tl_agent_cmd_pending(int argc, char **argv);   /* grants.c */
int tl_agent_cmd_approve(int argc, char **argv);   /* grants.c */
int tl_agent_cmd_deny(int argc, char **argv);      /* grants.c */
int tl_agent_cmd_sessions(int argc, char **argv);  /* grants.c */
int tl_agent_cmd_end(int argc, char **argv);       /* grants.c */
int tl_agent_cmd_diag(int argc, char **argv);      /* diag.c */
int tl_agent_cmd_catalogue(int argc, char **argv); /* catalogue.c */
int tl_agent_cmd_config(int argc, char **argv);    /* config.c */

struct tl_settings;
/*
 * Reads agent.conf (config_path NULL: $TIERLINE_AGENT_CONFIG or the default)
 * into settings and makes its state_dir the default state directory. Non-zero:
 * the exit status, "tierline-agent COMMAND: FILE:LINE: reason" printed.
 */
int tl_agent_configure(const char *command, const char *config_path,
                       struct tl_settings *settings); /* config.c */

#endif
