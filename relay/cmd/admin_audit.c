/*
 * audit-verify: the audit log's hash chain checked from its first entry to its last
 * (relay/store/audit.h), and the log checked against its signed checkpoints
 * (relay/store/audit_anchors.h); audit pubkey and audit checkpoint: what an auditor keeps
 * (docs/audit-format.md).
 */
#include "relay/cmd/admin_int.h"

#include "proto/err.h"
#include "proto/keys.h"
#include "relay/store/audit.h"
#include "relay/store/audit_anchors.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_key.h"
#include "relay/store/audit_payloads.h"
#include "relay/store/datadir.h"
#include "relay/store/status.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct verify_args {
    const char *data;
    int json;
    const char *checkpoint;
    const char *key;
};

/* The key to check checkpoints with: --key, else the data directory's own (NULL if none). */
static int verifier_of(const struct verify_args *args, tl_note_verifier_t *verifier,
                       const tl_note_verifier_t **out)
{
    *out = NULL;
    if (args->key != NULL) {
        if (tl_note_vkey_parse(args->key, verifier) != 0) {
            fprintf(stderr, TL_ADMIN_PROGRAM " audit-verify: --key is not a verifier key "
                                             "(NAME+KEYID+KEY, as `audit pubkey` prints it)\n");
            return TL_EXIT_USAGE;
        }
        *out = verifier;
        return 0;
    }
    char key_path[4096], name[TL_NOTE_NAME_MAX + 1];
    int rc = tl_audit_checkpoints_signer(args->data, key_path, sizeof key_path, name);
    if (rc == 0)
        rc = tl_audit_key_verifier(key_path, name, verifier, NULL);
    if (rc == 0)
        *out = verifier;
    else if (rc != -ENOENT)
        fprintf(stderr, TL_ADMIN_PROGRAM " audit-verify: the audit key cannot be read: %s\n",
                tl_strerror(rc));
    return 0;
}

/* The unsigned entries: null, or where they are (and whether a serving relay excused them). */
static json_t *unsigned_json(const tl_audit_anchor_report_t *report, int serving)
{
    if (strcmp(report->category, "unsigned") != 0)
        return json_null();
    return json_pack("{s:I, s:I, s:b}", "first_entry", (json_int_t)report->first_entry,
                     "last_entry", (json_int_t)report->last_entry, "serving", serving);
}

static json_t *anchors_json(const tl_audit_anchor_report_t *report, int rc,
                            const char *const *files, int serving)
{
    json_t *bad = json_null();
    if (rc == TL_EVERIFY)
        bad = json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:s}", "file", files[report->file], "index",
                        (json_int_t)report->index, "size", (json_int_t)report->size, "category",
                        report->category, "first_entry", (json_int_t)report->first_entry,
                        "last_entry", (json_int_t)report->last_entry, "reason", report->reason);
    else if (rc != 0)
        bad = json_pack("{s:s, s:s}", "category", "unreadable", "reason", report->reason);
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:o}", "ok", rc == 0, "checked",
                     (json_int_t)report->checked, "log_entries", (json_int_t)report->log_entries,
                     "last_size", (json_int_t)report->last_size, "covered",
                     (json_int_t)report->covered, "unsigned", unsigned_json(report, serving), "bad",
                     bad);
}

static void anchors_print(const tl_audit_anchor_report_t *report, int rc, const char *const *files,
                          int serving)
{
    if (serving) {
        printf("audit checkpoints OK: %llu checked against %llu entries, the largest of size "
               "%llu; entries %llu..%llu are not signed yet by the relay serving this folder "
               "(audit verify over SSH signs them first)\n",
               (unsigned long long)report->checked, (unsigned long long)report->log_entries,
               (unsigned long long)report->last_size, (unsigned long long)report->first_entry,
               (unsigned long long)report->last_entry);
    } else if (rc == 0 && report->checked == 0) {
        printf("audit checkpoints: none to check\n");
    } else if (rc == 0) {
        printf(
            "audit checkpoints OK: %llu checked against %llu entries, the largest of size %llu\n",
            (unsigned long long)report->checked, (unsigned long long)report->log_entries,
            (unsigned long long)report->last_size);
    } else if (rc == TL_EVERIFY && report->index == 0) {
        fprintf(stderr, "audit checkpoints BROKEN: %s: %s\n", report->category, report->reason);
    } else if (rc == TL_EVERIFY) {
        fprintf(stderr, "audit checkpoints BROKEN at checkpoint %llu of %s (size %llu): %s: %s\n",
                (unsigned long long)report->index, files[report->file],
                (unsigned long long)report->size, report->category, report->reason);
    } else {
        fprintf(stderr, "audit checkpoints not checked: %s\n", report->reason);
    }
}

/* The payloads the log at log names, against the folder's evidence store (audit_payloads.h). */
static int verify_payloads(const struct verify_args *args, const char *log, json_t *verdict,
                           FILE *text)
{
    char dir[4096];
    struct stat st;
    tl_evidence_store_t *store = NULL;
    int rc = tl_datadir_path(args->data, TL_DATADIR_EVIDENCE, dir, sizeof dir);
    /* A folder without an evidence store holds no payload: any the log names is missing. */
    if (rc == 0 && stat(dir, &st) == 0)
        rc = tl_evidence_store_open(dir, NULL, &store);
    if (rc == 0)
        rc = tl_audit_payloads_verify(log, store, verdict, text);
    else
        fprintf(text, "payloads not checked: %s: %s\n", dir, tl_strerror(rc));
    tl_evidence_store_close(store);
    return rc;
}

static int cmd_audit_verify(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct verify_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    char path[4096], stored[4096];
    tl_note_verifier_t verifier_buf;
    const tl_note_verifier_t *verifier = NULL;
    if (tl_datadir_path(args.data, TL_DATADIR_AUDIT, path, sizeof path) != 0 ||
        tl_datadir_path(args.data, TL_DATADIR_AUDIT_CHECKPOINTS, stored, sizeof stored) != 0)
        return tl_admin_fail("audit-verify", TL_EINVAL);
    if ((status = verifier_of(&args, &verifier_buf, &verifier)) != 0)
        return status;
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    /* The stored checkpoints, and the auditor's own (which must exist). */
    const char *files[2] = {stored, args.checkpoint};
    const int optional[2] = {1, 0};
    tl_audit_anchor_report_t anchors;
    int anchors_rc =
        tl_audit_anchors_verify(path, files, optional, args.checkpoint ? 2 : 1, verifier, &anchors);
    /* While a relay serves the folder, the entries since its last checkpoint are its to sign:
     * only a stopped relay's log must be signed to its end (docs/audit-format.md §15). */
    int serving = anchors_rc == TL_EVERIFY && strcmp(anchors.category, "unsigned") == 0 &&
                  tl_status_serving(args.data) == 1;
    if (serving)
        anchors_rc = 0;
    int ok = rc == 0 && anchors_rc == 0;
    /* The payloads the log names, against the evidence store, tombstones counted. */
    json_t *payloads = json_object();
    char *words = NULL;
    size_t words_len = 0;
    FILE *text = open_memstream(&words, &words_len);
    int payloads_rc =
        payloads != NULL && text != NULL ? verify_payloads(&args, path, payloads, text) : TL_ENOMEM;
    if (text != NULL)
        fclose(text);
    ok = ok && payloads_rc == 0;
    if (args.json) {
        /* The verdict on stdout either way; the exit status says it too. */
        json_t *verdict = json_pack(
            "{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:s?, s:o}", "ok", ok, "verdict",
            rc == 0 && anchors_rc == 0           ? "ok"
            : rc == TL_EPROTO || anchors_rc != 0 ? "broken"
                                                 : "unreadable",
            "entries", (json_int_t)report.entries, "last_hash", report.last_hash, "bad_line",
            (json_int_t)report.bad_line, "bad_seq", (json_int_t)report.bad_seq,
            "partial_tail_bytes", (json_int_t)report.partial_tail_bytes, "reason",
            report.reason[0] != '\0' ? report.reason : NULL, "checkpoints",
            anchors_json(&anchors, anchors_rc, files, serving));
        if (verdict != NULL) {
            if (payloads_rc != 0 && rc == 0 && anchors_rc == 0)
                json_object_set_new(verdict, "verdict", json_string("broken"));
            json_object_set(verdict, "recordings", json_object_get(payloads, "recordings"));
            json_object_set(verdict, "payloads", json_object_get(payloads, "payloads"));
        }
        status = verdict != NULL ? tl__admin_print_json(verdict)
                                 : tl_admin_fail("audit-verify", TL_ENOMEM);
        json_decref(verdict);
    } else {
        tl_audit_report_print(&report, rc, rc == 0 ? stdout : stderr);
        anchors_print(&anchors, anchors_rc, files, serving);
        if (words != NULL)
            fputs(words, payloads_rc == 0 ? stdout : stderr);
    }
    free(words);
    json_decref(payloads);
    if (status != TL_EXIT_OK)
        return status;
    return ok ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

const tl_admin_command_t tl_admin_audit_verify = {
    .name = "audit-verify",
    .usage = "audit-verify [--data DIR] [--checkpoint FILE] [--key VKEY] [--json]",
    .summary = "verify the audit log's hash chain and its signed checkpoints",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct verify_args, "the relay's folder"),
                    {.name = "checkpoint",
                     .metavar = "FILE",
                     .help = "checkpoints kept outside the relay (`audit checkpoint` output), "
                             "checked after the stored ones",
                     .word = TL_CLI_AT(struct verify_args, checkpoint)},
                    {.name = "key",
                     .metavar = "VKEY",
                     .help = "the audit key to trust, as `audit pubkey` prints it (default: the "
                             "folder's own audit_key)",
                     .word = TL_CLI_AT(struct verify_args, key)},
                    TL__ADMIN_JSON(struct verify_args,
                                   "the verdict, an object: ok, verdict, entries, last_hash, "
                                   "bad_line, bad_seq, partial_tail_bytes, reason (null if it "
                                   "verified), checkpoints (ok, checked, log_entries, last_size, "
                                   "covered, unsigned: null or first_entry, last_entry, serving; "
                                   "bad: null or file, index, size, category, first_entry, "
                                   "last_entry, reason), recordings (ok, checked, pruned, "
                                   "bad: each index, seq, action, sha256, reason), payloads (the "
                                   "same, and still_present)"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_audit_verify,
    .example = "tierline-relay audit-verify --data /var/lib/tierline\n"
               "tierline-relay audit-verify --data /var/lib/tierline --checkpoint kept.note "
               "--key \"$(cat audit.vkey)\"\n",
};

/* ---- audit pubkey | checkpoint ---- */

struct audit_args {
    const char *data;
    int json;
    int verb;
};

static const char *const audit_verbs[] = {"pubkey", "checkpoint", NULL};

static int print_pubkey(const char *data, int json)
{
    char name[TL_NOTE_NAME_MAX + 1], vkey[TL_NOTE_VKEY_MAX], key_path[4096];
    EVP_PKEY *key = NULL;
    char *pem = NULL;
    uint8_t raw[TL_ED25519_KEY_LEN];
    char raw_b64[48];
    int status = TL_EXIT_FAILURE;
    int rc = tl_audit_checkpoints_signer(data, key_path, sizeof key_path, name);
    if (rc == 0)
        rc = tl_key_load(key_path, &key);
    if (rc == 0)
        rc = tl_note_vkey_format(name, key, vkey);
    if (rc == 0)
        rc = tl_audit_key_public_pem(key, &pem);
    if (rc == 0)
        rc = tl_key_raw_public(key, raw);
    if (rc != 0) {
        status = tl_admin_fail(rc == -ENOENT ? "audit pubkey: no audit key yet (serve creates it)"
                                             : "audit pubkey",
                               rc);
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)raw_b64, raw, sizeof raw);
    if (json) {
        json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "vkey", vkey, "public_key",
                                raw_b64, "pem", pem);
        status = out != NULL ? tl__admin_print_json(out) : tl_admin_fail("audit", TL_ENOMEM);
        json_decref(out);
    } else {
        printf("%s\n%s", vkey, pem);
        status = TL_EXIT_OK;
    }
out:
    free(pem);
    EVP_PKEY_free(key);
    return status;
}

static int print_checkpoint(const char *data, int json)
{
    char path[4096];
    char *note = NULL;
    size_t len = 0;
    int status = TL_EXIT_FAILURE;
    int rc = tl_datadir_path(data, TL_DATADIR_AUDIT_CHECKPOINTS, path, sizeof path);
    if (rc == 0)
        rc = tl_audit_checkpoints_last(path, &note, &len);
    if (rc == -ENOENT || (rc == 0 && note == NULL)) {
        fprintf(stderr, TL_ADMIN_PROGRAM " audit checkpoint: no checkpoint yet\n");
        goto out;
    }
    if (rc != 0) {
        status = tl_admin_fail("audit checkpoint", rc);
        goto out;
    }
    if (json) {
        json_t *details = NULL;
        if ((rc = tl_audit_checkpoint_details(note, len, &details)) != 0) {
            status = tl_admin_fail("audit checkpoint: the last one does not parse", rc);
            goto out;
        }
        json_object_set_new(details, "note", json_stringn(note, len));
        status = tl__admin_print_json(details);
        json_decref(details);
    } else {
        fwrite(note, 1, len, stdout);
        status = TL_EXIT_OK;
    }
out:
    free(note);
    return status;
}

static int cmd_audit(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct audit_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    return args.verb == 0 ? print_pubkey(args.data, args.json)
                          : print_checkpoint(args.data, args.json);
}

const tl_admin_command_t tl_admin_audit = {
    .name = "audit",
    .usage = "audit pubkey|checkpoint [--data DIR] [--json]",
    .summary = "print the audit key auditors keep (pubkey), or the latest signed checkpoint",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct audit_args, "the relay's folder"),
                    TL__ADMIN_JSON(struct audit_args,
                                   "pubkey: name, vkey, public_key (base64 of its 32 bytes), pem; "
                                   "checkpoint: origin, size, root (base64), signature, note"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "pubkey|checkpoint",
                                                   .kind = TL_CLI_WORD,
                                                   .words = audit_verbs,
                                                   .out = TL_CLI_AT(struct audit_args, verb)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_audit,
    .example = "tierline-relay audit pubkey --data /var/lib/tierline\n"
               "tierline-relay audit checkpoint --data /var/lib/tierline > kept.note\n",
};
