/*
 * What a session keeps as evidence on its ticket (relay/sessions/sessions_int.h):
 * the name of an item and its record, and the terminal recording of a join
 * (relay/sessions/recording.h) from its opening with the channel to its copy
 * into the evidence store. Transcripts and diagnostics are made in
 * transcript.c and kept through here.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/text.h"
#include "relay/desk/timeline.h"
#include "relay/store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Evidence copied from a recording file in pieces of this size (worker). */
#define COPY_CHUNK (256u * 1024u)

/* ---- naming and adding evidence -------------------------------------------------------------- */

/* "20261123T190405Z", for file names */
static void stamp(int64_t ms, char out[24])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) == NULL || strftime(out, 24, "%Y%m%dT%H%M%SZ", &utc) == 0)
        snprintf(out, 24, "unknown");
}

/*
 * The name of the evidence the session produced (docs/technicians.md, "What
 * is kept"): the kind, what ran (clipped, only A-Z a-z 0-9 . _ -), when it
 * started, and the first 12 hex digits of the content's SHA-256. A ticket
 * holds each hash once, so two items on one ticket never share a name, even
 * from the same second. The record of the session's end names it too.
 * Worker thread, once the hash is known.
 */
void tl__session_name_evidence(struct sjob *job, const char *kind, const char *what,
                               const char *extension)
{
    struct session *s = job->session;
    char when[24], part[64] = "";
    stamp(s->started_ms, when);
    if (what != NULL)
        tl_text_name_part(part, sizeof part, what, 48, NULL);
    snprintf(s->evidence_name, sizeof s->evidence_name, "%s%s%s-%s-%.12s%s", kind,
             part[0] != '\0' ? "-" : "", part, when, s->evidence_hash, extension);
    size_t i;
    json_t *entry;
    json_array_foreach(job->records, i, entry) {
        const char *action = json_string_value(json_object_get(entry, "audit"));
        json_t *details = json_object_get(entry, "details");
        if (action != NULL && strcmp(action, "session.end") == 0 && json_is_object(details))
            json_object_set_new(details, "evidence_name", json_string(s->evidence_name));
    }
}

/* Records an evidence item on the ticket, with its timeline event and audit line. */
int tl__session_add_evidence(struct sjob *job, tl_job_ctx_t *ctx, const char *kind,
                             const char *action)
{
    struct session *s = job->session;
    int added = 0;
    int rc = tl_store_evidence_add(ctx->store, s->ticket_id, s->evidence_hash, kind,
                                   s->evidence_name, s->evidence_size, tl_wall_ms(), &added);
    if (rc != 0)
        return rc;
    json_t *details =
        json_pack("{s:s, s:s, s:s, s:I, s:s}", "sha256", s->evidence_hash, "kind", kind, "name",
                  s->evidence_name, "size", (json_int_t)s->evidence_size, "grant", s->grant);
    if (details == NULL)
        return TL_ENOMEM;
    tl_timeline_entry_t record = {
        .ticket_id = s->ticket_id,
        .time_ms = tl_wall_ms(),
        .actor = s->actor,
        .event = added ? "evidence.added" : NULL,
        .action = action,
        .details = details,
    };
    rc = tl_timeline_record(ctx, &record);
    json_decref(details);
    return rc;
}

/* ---- the recording of a join ----------------------------------------------------------------- */

void tl__session_recording_open(struct session *s)
{
    char when[24];
    stamp(s->started_ms, when);
    snprintf(s->recording_name, sizeof s->recording_name, "%s-%s-%s-%" PRIu32 ".cast.gz", s->ticket,
             s->grant, when, ++s->sessions->recording_serial);
    snprintf(s->recording_path, sizeof s->recording_path, "%s/%s", s->sessions->recordings_dir,
             s->recording_name);
    const tl_exec_pty_t *pty = s->exec ? tl_exec_pty(s->exec) : NULL;
    char title[160];
    snprintf(title, sizeof title, "%s %s %s %s", s->ticket, s->tech.name,
             s->observe ? "observe" : "shell", s->grant);
    tl_recording_info_t info = {
        .cols = pty && pty->cols ? pty->cols : 80,
        .rows = pty && pty->rows ? pty->rows : 24,
        .term = pty && pty->term[0] ? pty->term : NULL,
        .title = title,
        .start_ms = s->started_ms,
    };
    int err = 0;
    s->recording = tl_recording_open(s->sessions->loop, s->recording_path, &info, &err);
    if (s->recording == NULL)
        tl__session_set_end(s, "relay", "cannot record the session: %s", tl_strerror(err));
}

/* The finished recording file, copied into the evidence store (worker). */
static int work_recording(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    FILE *file = fopen(s->recording_path, "rb");
    if (file == NULL)
        return -errno;
    tl_evidence_writer_t *writer = NULL;
    uint8_t *chunk = malloc(COPY_CHUNK);
    int rc = chunk == NULL ? TL_ENOMEM : tl_evidence_writer_new(ctx->evidence, &writer);
    while (rc == 0) {
        size_t got = fread(chunk, 1, COPY_CHUNK, file);
        if (got == 0) {
            rc = ferror(file) ? TL_EIO : 0;
            break;
        }
        rc = tl_evidence_writer_write(writer, chunk, got);
        if (rc != 0)
            writer = NULL; /* already gone */
    }
    fclose(file);
    free(chunk);
    if (rc != 0) {
        tl_evidence_writer_abort(writer);
        return rc;
    }
    /* What is stored must be exactly what the recorder wrote and hashed. */
    rc = tl_evidence_writer_commit_expected(writer, s->recording_hash, s->recording_size,
                                            s->evidence_hash);
    if (rc != 0)
        return rc;
    s->evidence_size = s->recording_size;
    tl__session_name_evidence(job, "recording", s->observe ? "observe" : "shell", ".cast.gz");
    return tl__session_add_evidence(job, ctx, "recording", "session.recorded");
}

void tl__session_recording_done(void *data, int status, const char *sha256, uint64_t size)
{
    struct session *s = data;
    s->recording_pending = 0;
    s->recording_status = status;
    struct sjob *job = tl__sjob_new(s, status == 0 ? work_recording : NULL, tl__session_final_done);
    if (job == NULL) {
        s->recording_status = TL_ENOMEM;
        tl__session_final_done(s, NULL, TL_ENOMEM);
        return;
    }
    if (status == 0) {
        snprintf(s->recording_hash, sizeof s->recording_hash, "%s", sha256);
        s->recording_size = size;
    } else {
        tl_log_error("recording failed ticket=%s grant=%s reason=%s", s->ticket, s->grant,
                     tl_strerror(status));
    }
    json_t *details = tl__session_end_details(s);
    if (status == 0 && details != NULL)
        json_object_set_new(details, "recording", json_string(s->recording_hash));
    tl__sjob_record(job, tl__session_end_event(s), "session.end", details);
    tl__sjob_submit(s, job);
}
