/*
 * devices: the enrolled machines as technicians see them over SSH (docs/technicians.md): host
 * name, id, whether it is connected now, when it was last seen, and how many of its tickets are
 * open. A vendor (tier 4) sees only the machines of tickets handed to it.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "relay/cmd/rows.h"
#include "relay/cmd/show.h"
#include "relay/desk/tickets.h"

#include <stdlib.h>
#include <string.h>

static int work_devices(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_rows_t tickets = {0};
    json_t *all = NULL, *listed = NULL;
    tl_ticket_filter_t filter = {-1, NULL, NULL};
    /* A vendor account sees the machines of the tickets bound to it (relay/desk/vendor.h). */
    int vendor = tl_role_ticket_bound(cmd->role);
    tl_ticket_grant_rows_t grants = {0};
    int64_t now = tl_wall_ms();
    int rc = tl_store_tickets_read(ctx->store, &filter, &tickets);
    if (rc == 0 && vendor)
        rc = tl_store_grants_read(ctx->store, cmd->tech.name, &grants);
    if (rc == 0)
        rc = tl_rows_devices(ctx->store, &all);
    if (rc == 0 && (listed = json_array()) == NULL)
        rc = TL_ENOMEM;
    size_t i;
    json_t *device;
    json_array_foreach(all, i, device) {
        if (rc != 0)
            break;
        json_int_t open = 0, handed = 0;
        const char *id = tl__cmd_member(device, "id");
        for (size_t k = 0; k < tickets.count; k++) {
            char device_id[TL_ID_TEXT];
            if (strcmp(tl_id_format(device_id, TL_ID_DEVICE, tickets.rows[k].device_id), id) != 0)
                continue;
            int bound = !vendor;
            for (size_t g = 0; g < grants.count && !bound; g++)
                bound = grants.rows[g].ticket_id == tickets.rows[k].id &&
                        grants.rows[g].expires > now;
            if (!bound)
                continue;
            handed++;
            open += tl_ticket_status_active(tickets.rows[k].status);
        }
        if (vendor && handed == 0)
            continue;
        json_t *item = json_pack("{s:O, s:O, s:O, s:O, s:I}", "id", json_object_get(device, "id"),
                                 "hostname", json_object_get(device, "hostname"), "online",
                                 json_object_get(device, "online"), "last_seen",
                                 json_object_get(device, "last_seen"), "open_tickets", open);
        if (item == NULL || json_array_append_new(listed, item) != 0)
            rc = TL_ENOMEM;
    }
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    } else if (cmd->json) {
        rc = tl__cmd_print_json(out, listed);
    } else {
        fprintf(out, "%-7s %-24s %-6s %-20s %s\n", "ID", "HOSTNAME", "ONLINE", "LAST SEEN",
                "OPEN TICKETS");
        json_array_foreach(listed, i, device) {
            char hostname[120], seen[TL_UTC_TEXT];
            tl_format_utc(json_integer_value(json_object_get(device, "last_seen")), seen);
            fprintf(out, "%-7s %s %-6s %-20s %" JSON_INTEGER_FORMAT "\n",
                    tl__cmd_member(device, "id"),
                    tl__cmd_cell(hostname, sizeof hostname, device, "hostname", 24),
                    json_is_true(json_object_get(device, "online")) ? "yes" : "no", seen,
                    json_integer_value(json_object_get(device, "open_tickets")));
        }
        if (json_array_size(listed) == 0)
            fprintf(out, "(no devices)\n");
    }
    json_decref(listed);
    json_decref(all);
    tl_ticket_rows_free(&tickets);
    tl_ticket_grant_rows_free(&grants);
    return rc;
}

const struct tl__command tl__cmd_devices = {
    .name = "devices",
    .usage = "devices [--json]",
    .summary = "the enrolled machines: online, last seen, open tickets",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){TL__CMD_JSON("a JSON array of objects: id, hostname, "
                                                     "online, last_seen, open_tickets"),
                                        {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_devices,
    .example = "devices\n",
};
