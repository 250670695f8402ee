/*
 * A technician's "sftp" subsystem channel (docs/protocol.md §7.16): the
 * exec's input feeds the SFTP server (relay/sessions/sftp_server.h), its
 * replies go out on the exec's stdout, and flow control holds both ways: the
 * server's input is taken only while it is not blocked, and its replies are
 * written only while the exec's buffer is under TL_EXEC_HIGH_WATER.
 *
 * The root lists the active tickets the technician may act on (read on the
 * storage worker, as a session's lookup does). The machines are not reached
 * yet: every request on a ticket's machine is answered FAILURE saying so.
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "relay/desk/tickets.h"
#include "relay/desk/vendor.h"
#include "relay/store/store.h"
#include "relay/sessions/sessions_int.h"
#include "relay/sessions/sftp_server.h"

#include <stdlib.h>

/* Replies handed to the exec per write. */
#define WRITE_CHUNK (256u * 1024u)

static const char NOT_SERVED[] = "files on machines are not served by this relay yet";

struct files {
    tl_sessions_t *sessions;
    tl_exec_t *exec;
    tl_technician_t tech;
    int jobs; /* storage jobs in flight: the files are freed after the last */
    int gone; /* the client went away (on_abort) or the channel finished */
    tl_sftp_server_t *server;
    int held;     /* on_input took less than offered: resume once the server takes more */
    int eof;      /* the client's EOF: the channel ends once the replies are out */
    int finished; /* tl_exec_finish() called: freed when the callback returns */
};

static void answer_not_served(void *ctx, uint32_t op)
{
    struct files *files = ctx;
    tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, NOT_SERVED);
}

/* The root's listing, read on the worker: "T-42" directories, at most the server's limit. */
struct list_job {
    tl_job_t job;
    struct files *files;
    uint32_t op;
    size_t count;
    char names[TL_SFTP_SERVER_MAX_ENTRIES][24];
    int over; /* more tickets than a listing holds */
    tl_sftp_entry_t entries[TL_SFTP_SERVER_MAX_ENTRIES];
};

static void files_settle(struct files *files);

static int list_job_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct list_job *job = (struct list_job *)base;
    const tl_technician_t *tech = &job->files->tech;
    int role = tl_role_parse(tech->role);
    int64_t now = tl_wall_ms();
    tl_ticket_rows_t rows = {0};
    int rc = tl_store_tickets_read(ctx->store, NULL, &rows);
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
        const tl_ticket_row_t *row = &rows.rows[i];
        if (!tl_ticket_status_active(row->status) ||
            tl_vendor_ticket_access(ctx->store, role, tech->name, row->id, now, NULL) != 0)
            continue;
        if (job->count == TL_SFTP_SERVER_MAX_ENTRIES) {
            job->over = 1;
            break;
        }
        tl_format(job->names[job->count++], sizeof job->names[0], "T-%lld", (long long)row->id);
    }
    tl_ticket_rows_free(&rows);
    return rc;
}

static void list_job_done(tl_job_t *base, int status)
{
    struct list_job *job = (struct list_job *)base;
    struct files *files = job->files;
    files->jobs--;
    if (!files->gone) {
        if (status != 0) {
            tl_sftp_server_answer_status(files->server, job->op, TL_SFTP_FAILURE,
                                         tl_strerror(status));
        } else {
            for (size_t i = 0; i < job->count; i++)
                job->entries[i] = (tl_sftp_entry_t){
                    .name = job->names[i],
                    .attrs = {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555},
                };
            if (job->over)
                tl_log_warn("sftp tickets listing cut tech=%s at=%u", files->tech.name,
                            TL_SFTP_SERVER_MAX_ENTRIES);
            tl_sftp_server_answer_entries(files->server, job->op, job->entries, job->count);
        }
    }
    free(job);
    files_settle(files);
}

static void b_list_tickets(void *ctx, uint32_t op)
{
    struct files *files = ctx;
    struct list_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, "out of memory");
        return;
    }
    job->job.run = list_job_run;
    job->job.done = list_job_done;
    job->files = files;
    job->op = op;
    files->jobs++;
    tl_worker_submit(files->sessions->worker, &job->job);
}

static void b_stat(void *ctx, uint32_t op, const tl_sftp_vpath_t *path, int follow)
{
    answer_not_served(ctx, op);
}

static void b_list(void *ctx, uint32_t op, const tl_sftp_vpath_t *path)
{
    answer_not_served(ctx, op);
}

static void b_open_read(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path)
{
    answer_not_served(ctx, op);
}

static void b_open_write(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path,
                         uint32_t mode)
{
    answer_not_served(ctx, op);
}

static void b_read(void *ctx, uint32_t op, uint32_t file, uint32_t len)
{
    answer_not_served(ctx, op);
}

static void b_write(void *ctx, uint32_t op, uint32_t file, const uint8_t *data, size_t len)
{
    answer_not_served(ctx, op);
}

static void b_close(void *ctx, uint32_t op, uint32_t file, int aborted)
{
    answer_not_served(ctx, op);
}

static const tl_sftp_backend_t backend = {
    .list_tickets = b_list_tickets,
    .stat = b_stat,
    .list = b_list,
    .open_read = b_open_read,
    .open_write = b_open_write,
    .read = b_read,
    .write = b_write,
    .close = b_close,
};

static void files_free(struct files *files)
{
    tl_sftp_server_free(files->server);
    free(files);
}

/* Ends the channel once: status 0 after the client's EOF, 1 when the stream was broken. */
static void files_finish(struct files *files, int status)
{
    if (files->finished)
        return;
    files->finished = 1;
    tl_exec_finish(files->exec, status);
}

/* Moves queued replies to the exec while it is under its high-water mark. */
static void files_flush(struct files *files)
{
    size_t len = 0;
    const uint8_t *out = tl_sftp_server_output(files->server, &len);
    while (len > 0 && !files->finished && tl_exec_buffered(files->exec) < TL_EXEC_HIGH_WATER) {
        size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK;
        if (tl_exec_write(files->exec, TL_EXEC_STDOUT, out, n) != 0) {
            files_finish(files, 1);
            return;
        }
        tl_sftp_server_consume(files->server, n);
        out = tl_sftp_server_output(files->server, &len);
    }
    const char *failed = tl_sftp_server_failed(files->server);
    if (failed != NULL && !files->finished) {
        tl_log_info("sftp ended tech=%s reason=\"%s\"", files->tech.name, failed);
        files_finish(files, 1);
    }
}

/*
 * At the end of each callback and job: sends what an answer queued, resumes held input, ends the
 * channel after EOF, and frees the files once nothing refers to them.
 */
static void files_settle(struct files *files)
{
    if (!files->gone) {
        files_flush(files);
        if (files->held && !files->finished && !tl_sftp_server_blocked(files->server)) {
            files->held = 0;
            tl_exec_resume_input(files->exec);
        }
        size_t queued = 0;
        tl_sftp_server_output(files->server, &queued);
        if (files->eof && queued == 0 && files->jobs == 0)
            files_finish(files, 0);
        if (files->finished) {
            /* The front end calls nothing more once finished (exec.h); forget it all the same. */
            tl_exec_set_callbacks(files->exec, NULL, NULL);
            files->gone = 1;
        }
    }
    if (files->gone && files->jobs == 0)
        files_free(files);
}

static size_t on_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct files *files = data;
    size_t taken = tl_sftp_server_input(files->server, bytes, len);
    files_flush(files);
    if (files->finished)
        taken = len;
    files->held = taken < len;
    files_settle(files); /* resumes input held back by what has been answered since */
    return taken;
}

static void on_drain(tl_exec_t *exec, void *data)
{
    files_settle(data);
}

static void on_input_eof(tl_exec_t *exec, void *data)
{
    struct files *files = data;
    files->eof = 1;
    files_settle(files);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct files *files = data;
    files->gone = 1;
    files_settle(files);
}

static const tl_exec_callbacks_t files_callbacks = {
    .on_drain = on_drain,
    .on_abort = on_abort,
    .on_input = on_input,
    .on_input_eof = on_input_eof,
};

void tl_sessions_files_start(tl_sessions_t *sessions, tl_exec_t *exec)
{
    struct files *files = calloc(1, sizeof *files);
    tl_sftp_server_limits_t limits = {0};
    if (files != NULL)
        files->server = tl_sftp_server_new(&backend, files, &limits);
    if (files == NULL || files->server == NULL) {
        free(files);
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(exec, 1);
        return;
    }
    files->sessions = sessions;
    files->exec = exec;
    files->tech = *tl_exec_technician(exec);
    tl_exec_set_callbacks(exec, &files_callbacks, files);
    tl_log_info("sftp started tech=%s", tl_exec_technician(exec)->name);
}
