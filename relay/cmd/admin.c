/*
 * What every admin command does the same way (relay/cmd/admin.h): reading
 * its words with its spec, saying why it failed, writing its --help.
 */
#include "relay/cmd/admin_int.h"

#include "proto/err.h"
#include "proto/log.h"
#include "relay/cmd/show.h"
#include "relay/store/datadir.h"

int tl_admin_fail(const char *what, int rc)
{
    fprintf(stderr, TL_ADMIN_PROGRAM ": %s: %s\n", what, tl_strerror(rc));
    return TL_EXIT_FAILURE;
}

void tl_admin_help_write(FILE *out, const tl_admin_command_t *cmd)
{
    tl_cli_spec_help_write(out, TL_ADMIN_PROGRAM, cmd->usage, cmd->summary, cmd->args,
                           cmd->example);
}

int tl_admin_log_level(const char *word, void *out, const char **problem)
{
    enum tl_log_level level;
    if (tl_log_parse_level(word, &level) != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(enum tl_log_level *)out = level;
    return 0;
}

int tl__admin_open_store(const char *data, tl_store_t **store)
{
    char path[4096];
    int rc = tl_datadir_path(data, TL_DATADIR_DB, path, sizeof path);
    if (rc == 0)
        rc = tl_store_open(path, TL_STORE_OPEN_EXISTING, store);
    return rc;
}

int tl__admin_print_json(json_t *value)
{
    return tl__cmd_print_json(stdout, value) == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}
