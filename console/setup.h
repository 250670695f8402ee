/*
 * tierline setup (docs/technicians.md "The console"): the console's own command that
 * writes its config file.
 */
#ifndef TL_CONSOLE_SETUP_H
#define TL_CONSOLE_SETUP_H

/* Its usage line, without the program's name. */
extern const char tl_setup_usage[];

/*
 * Runs `setup` with argv[0] the command's name, writing the file at
 * config_path (keeping its comments and other keys). The exit status, after
 * saying what went wrong.
 */
int tl_setup_run(const char *config_path, int argc, char **argv);

#endif
