/*
 * web: a one-time link that signs the technician in to the web view (docs/web.md "Signing
 * in"). The link is on the record before it works: the job writes web.link, and only once that
 * entry is durable is the token added to the relay's table (relay/net/web_auth.h) and printed.
 * When the audit log cannot be written, no link exists (fail closed).
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "relay/net/web_auth.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct web_link {
    tl_job_t job;
    struct cmd *cmd;
    char token[TL_WEB_TOKEN_TEXT];
    int64_t made_ms;
    uint32_t valid_ms;
};

static int run_link(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct web_link *link = (struct web_link *)job;
    char actor[96];
    tl__cmd_actor(link->cmd, actor);
    json_t *details = json_pack("{s:s, s:I}", "role", link->cmd->tech.role, "expires",
                                (json_int_t)(link->made_ms + link->valid_ms));
    int rc = details != NULL ? tl_worker_audit(ctx, actor, "web.link", "", details) : TL_ENOMEM;
    json_decref(details);
    return rc;
}

static void print_json(tl_exec_t *exec, const char *base, const char *token, uint32_t seconds)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/signin?token=%s", base, token);
    json_t *answer = json_pack("{s:s, s:i}", "url", url, "valid_seconds", (int)seconds);
    char *text = answer != NULL ? json_dumps(answer, JSON_INDENT(2)) : NULL;
    if (text != NULL)
        tl_exec_printf(exec, TL_EXEC_STDOUT, "%s\n", text);
    if (text != NULL)
        OPENSSL_cleanse(text, strlen(text));
    free(text);
    json_decref(answer);
    OPENSSL_cleanse(url, sizeof url);
}

static void link_done(tl_job_t *job, int status)
{
    struct web_link *link = (struct web_link *)job;
    struct cmd *cmd = link->cmd;
    const tl_commands_ctx_t *ctx = cmd->ctx;
    int rc = status;
    if (rc == 0) /* the web view may have stopped meanwhile */
        rc = ctx->web != NULL
                 ? tl_web_auth_link_add(ctx->web, link->token, &cmd->tech, link->made_ms)
                 : TL_ECLOSED;
    if (cmd->exec != NULL) {
        uint32_t seconds = link->valid_ms / 1000;
        if (rc != 0)
            tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: no link: %s\n", tl_strerror(rc));
        else if (cmd->json)
            print_json(cmd->exec, ctx->web_url, link->token, seconds);
        else
            tl_exec_printf(cmd->exec, TL_EXEC_STDOUT,
                           "%s/signin?token=%s\nOpen it within %u seconds; it works once.\n",
                           ctx->web_url, link->token, seconds);
        tl_exec_finish(cmd->exec, rc == 0 ? 0 : 1);
    }
    OPENSSL_cleanse(link->token, sizeof link->token);
    free(link);
    tl__cmd_free(cmd);
}

static void on_abort_link(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    (void)exec;
    cmd->exec = NULL; /* the job's done sees it */
}

static const tl_exec_callbacks_t link_callbacks = {.on_abort = on_abort_link};

static void start_link(struct cmd *cmd)
{
    struct web_link *link = NULL;
    int rc = TL_EDISABLED;
    if (cmd->ctx->web == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR,
                       "tierline: the web view is off on this relay (serve --web-listen)\n");
        goto fail;
    }
    rc = TL_ENOMEM;
    if ((link = calloc(1, sizeof *link)) == NULL)
        goto fail;
    if ((rc = tl_web_auth_token(link->token)) != 0)
        goto fail;
    link->cmd = cmd;
    link->made_ms = tl_wall_ms();
    link->valid_ms = tl_web_auth_link_ms(cmd->ctx->web);
    link->job.run = run_link;
    link->job.done = link_done;
    tl_exec_set_callbacks(cmd->exec, &link_callbacks, cmd);
    tl_worker_submit(cmd->ctx->worker, &link->job);
    return;
fail:
    if (rc != TL_EDISABLED)
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: no link: %s\n", tl_strerror(rc));
    tl_exec_finish(cmd->exec, 1);
    free(link);
    tl__cmd_free(cmd);
}

const struct tl__command tl__cmd_web = {
    .name = "web",
    .usage = "web [--json]",
    .summary = "a one-time link that signs you in to the web view",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: url, valid_seconds"), {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .start = start_link,
    .example = "web\n",
};
