/*
 * The audit log: chaining, reopening, several writers, tamper detection, crash
 * repair and bad input.
 */
#include "tl_test.h"

#include "relay/store/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tl-audit-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/audit.log", fx->dir);
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* The whole file, NUL-terminated; *len_out (if given) is its size. */
static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)len + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
    data[len] = '\0';
    fclose(f);
    if (len_out)
        *len_out = (size_t)len;
    return data;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Appends count ordinary entries one by one. */
static void append_entries(tl_audit_t *audit, int count)
{
    for (int i = 0; i < count; i++) {
        json_t *details = json_pack("{s:s,s:i}", "note", "agent connected", "n", i);
        uint64_t seq = 0;
        TL_ASSERT_OK(tl_audit_append(audit, "relay", "agent.connect", "D-7", details, &seq));
        assert_int_equal(seq, tl_audit_last_seq(audit));
        json_decref(details);
    }
}

static void make_log(const char *path, int count)
{
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(path, &audit));
    append_entries(audit, count);
    tl_audit_close(audit);
}

/* Lines of a file as separately allocated strings without their newlines. */
struct lines {
    size_t count;
    char *line[512];
};

static void split_lines(const char *path, struct lines *out)
{
    char *data = read_file(path, NULL);
    out->count = 0;
    for (char *start = data, *newline; (newline = strchr(start, '\n')); start = newline + 1) {
        assert_true(out->count < 512);
        out->line[out->count++] = strndup(start, (size_t)(newline - start));
    }
    free(data);
}

static void join_lines(const char *path, struct lines *in)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < in->count; i++) {
        fputs(in->line[i], f);
        fputc('\n', f);
        free(in->line[i]);
    }
    fclose(f);
    in->count = 0;
}

/* Verifies and checks the verdict names the expected line, seq and category. */
static void expect_broken(const char *path, uint64_t line, uint64_t seq, const char *category)
{
    tl_audit_report_t report;
    TL_ASSERT_RC(TL_EPROTO, tl_audit_verify(path, &report));
    if (report.bad_line != line || report.bad_seq != seq ||
        strncmp(report.reason, category, strlen(category)) != 0)
        fail_msg("expected line %llu seq %llu %s, got line %llu seq %llu: %s",
                 (unsigned long long)line, (unsigned long long)seq, category,
                 (unsigned long long)report.bad_line, (unsigned long long)report.bad_seq,
                 report.reason);
    assert_int_equal(report.entries, line - 1);
}

static void expect_valid(const char *path, uint64_t entries)
{
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    if (rc != 0)
        fail_msg("verify failed at line %llu: %s", (unsigned long long)report.bad_line,
                 report.reason);
    assert_int_equal(report.entries, entries);
}

#define EXAMPLE_AGENT "SHA256:Jm8QK1lK0bM1cYkq3wEoV0DHRPWZ0jp7h8x2Cq1yFmo"
#define EXAMPLE_HASH1 "a06d15214683142df10f6838bddc075e37a2089ad0c686e24e7b0e5862da0fd9"
#define EXAMPLE_HASH2 "442290e80d7e0fe66750c35a4f0fa48894b8de5ac335b770b0effa82fa8d1d83"

/* docs/audit-format.md §9 quotes these two lines; the code must produce exactly them. */
static void test_documented_example_lines(void **state)
{
    (void)state;
    char *line;
    size_t len;
    json_t *details =
        json_pack("{s:s,s:s}", "agent", EXAMPLE_AGENT, "hostname", "caf\xc3\xa9-laptop");
    TL_ASSERT_OK(tl_audit_format_line(
        1, "2026-11-23T19:04:05.123Z", "relay", "enroll.ok", "D-7", details,
        "0000000000000000000000000000000000000000000000000000000000000000", &line, &len));
    assert_string_equal(
        line, "{\"seq\":1,\"time\":\"2026-11-23T19:04:05.123Z\",\"actor\":\"relay\",\"action\":"
              "\"enroll.ok\",\"subject\":\"D-7\",\"details\":{\"agent\":\"" EXAMPLE_AGENT
              "\",\"hostname\":\"caf\\u00E9-laptop\"},\"prev\":"
              "\"0000000000000000000000000000000000000000000000000000000000000000\",\"hash\":"
              "\"" EXAMPLE_HASH1 "\"}\n");
    assert_int_equal(len, strlen(line));
    free(line);
    json_decref(details);

    details = json_pack("{s:i,s:s}", "tier", 1, "title", "printer won't print");
    TL_ASSERT_OK(tl_audit_format_line(2, "2026-11-23T19:04:06.007Z", "agent:" EXAMPLE_AGENT,
                                      "ticket.create", "T-42", details, EXAMPLE_HASH1, &line,
                                      &len));
    assert_string_equal(
        line, "{\"seq\":2,\"time\":\"2026-11-23T19:04:06.007Z\",\"actor\":\"agent:" EXAMPLE_AGENT
              "\",\"action\":\"ticket.create\",\"subject\":"
              "\"T-42\",\"details\":{\"tier\":1,\"title\":\"printer won't "
              "print\"},\"prev\":\"" EXAMPLE_HASH1 "\",\"hash\":\"" EXAMPLE_HASH2 "\"}\n");
    free(line);
    json_decref(details);
}

static void test_appends_number_and_chain_entries(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    assert_int_equal(tl_audit_last_seq(audit), 0);
    assert_string_equal(tl_audit_last_hash(audit),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    append_entries(audit, 3);
    assert_int_equal(tl_audit_last_seq(audit), 3);
    char last_hash[TL_AUDIT_HASH_HEX];
    memcpy(last_hash, tl_audit_last_hash(audit), sizeof last_hash);
    tl_audit_close(audit);

    struct lines lines;
    split_lines(fx->path, &lines);
    assert_int_equal(lines.count, 3);
    for (size_t i = 0; i < 3; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "{\"seq\":%zu,\"time\":\"", i + 1);
        assert_memory_equal(lines.line[i], prefix, strlen(prefix));
        if (i > 0) {
            /* prev of line i is the hash at the end of line i-1. */
            const char *prev = strstr(lines.line[i], "\"prev\":\"") + 8;
            const char *hash = lines.line[i - 1] + strlen(lines.line[i - 1]) - 66;
            assert_memory_equal(prev, hash, 64);
        }
    }
    assert_memory_equal(lines.line[2] + strlen(lines.line[2]) - 66, last_hash, 64);
    join_lines(fx->path, &lines);
    expect_valid(fx->path, 3);
}

static void test_reopen_continues_the_chain(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 120);
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    assert_int_equal(tl_audit_last_seq(audit), 120);
    append_entries(audit, 80);
    assert_int_equal(tl_audit_last_seq(audit), 200);
    tl_audit_close(audit);
    expect_valid(fx->path, 200);
}

static void test_batch_appends_all_or_nothing(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    tl_audit_entry_t batch[10];
    for (int i = 0; i < 10; i++)
        batch[i] = (tl_audit_entry_t){
            .actor = "tech:alice", .action = "ticket.create", .subject = "T-42", .details = NULL};
    TL_ASSERT_OK(tl_audit_append_batch(audit, batch, 10));
    for (int i = 0; i < 10; i++)
        assert_int_equal(batch[i].seq, (uint64_t)i + 1);

    /* One bad entry in the middle: none of the batch is written. */
    off_t before = file_size(fx->path);
    batch[4].action = "Not An Action";
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append_batch(audit, batch, 10));
    assert_int_equal(file_size(fx->path), before);
    assert_int_equal(tl_audit_last_seq(audit), 10);
    TL_ASSERT_OK(tl_audit_append_batch(audit, batch, 0));
    tl_audit_close(audit);
    expect_valid(fx->path, 10);
}

static void test_empty_log_verifies(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->path, "", 0);
    tl_audit_report_t report;
    TL_ASSERT_OK(tl_audit_verify(fx->path, &report));
    assert_int_equal(report.entries, 0);
    assert_string_equal(report.last_hash,
                        "0000000000000000000000000000000000000000000000000000000000000000");
}

static void test_changed_details_byte_names_its_seq(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 30);
    struct lines lines;
    split_lines(fx->path, &lines);
    char *note = strstr(lines.line[11], "agent connected");
    note[0] = 'A'; /* still valid JSON: only the hash can tell */
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 12, 12, "bad-hash");
}

static void test_deleted_line_names_the_seq_after_the_gap(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 30);
    struct lines lines;
    split_lines(fx->path, &lines);
    free(lines.line[11]);
    memmove(&lines.line[11], &lines.line[12], (lines.count - 12) * sizeof lines.line[0]);
    lines.count--;
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 12, 13, "bad-seq");
}

static void test_swapped_lines_detected(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 30);
    struct lines lines;
    split_lines(fx->path, &lines);
    char *moved = lines.line[19];
    lines.line[19] = lines.line[20];
    lines.line[20] = moved;
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 20, 21, "bad-seq");
}

static void test_truncated_hash_detected(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 30);
    struct lines lines;
    split_lines(fx->path, &lines);
    size_t len = strlen(lines.line[6]);
    strcpy(lines.line[6] + len - 12, "\"}");
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 7, 7, "no-hash-suffix");
}

static void test_edited_prev_detected(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 30);
    struct lines lines;
    split_lines(fx->path, &lines);
    char *prev = strstr(lines.line[24], "\"prev\":\"") + 8;
    prev[10] = prev[10] == 'f' ? 'e' : 'f';
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 25, 25, "bad-prev");
}

static void test_first_line_must_start_the_chain(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 5);
    struct lines lines;
    split_lines(fx->path, &lines);
    free(lines.line[0]);
    memmove(&lines.line[0], &lines.line[1], 4 * sizeof lines.line[0]);
    lines.count--;
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 1, 2, "bad-seq");
}

static void test_not_json_reports_line_and_readable_seq(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 10);
    struct lines lines;
    split_lines(fx->path, &lines);
    char *details = strstr(lines.line[3], "\"details\":{") + 10;
    *details = '['; /* unbalanced: not JSON any more */
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 4, 4, "bad-json");
}

static void test_garbage_line_reports_line_number(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 10);
    struct lines lines;
    split_lines(fx->path, &lines);
    free(lines.line[5]);
    lines.line[5] = strdup("garbage");
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 6, 0, "no-hash-suffix");
}

static void test_overlong_line_fails_verification(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 3);
    size_t len;
    char *data = read_file(fx->path, &len);
    size_t long_len = TL_AUDIT_LINE_MAX + 10;
    char *bigger = malloc(len + long_len + 1);
    memcpy(bigger, data, len);
    memcpy(bigger + len, "{\"seq\":4,", 9);
    memset(bigger + len + 9, 'x', long_len - 9);
    bigger[len + long_len] = '\n';
    write_file(fx->path, bigger, len + long_len + 1);
    expect_broken(fx->path, 4, 4, "too-long");
    free(bigger);
    free(data);
}

/* A forger who edits entry k and recomputes its hash breaks the link to k+1. */
static void test_rehashed_edit_detected_at_next_entry(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 10);
    struct lines lines;
    split_lines(fx->path, &lines);
    char *line = lines.line[3];
    size_t len = strlen(line);
    strstr(line, "agent connected")[0] = 'A';
    /* Rebuild line 4 through the formatter with the edited details. */
    line[len - 75] = '\0';
    json_error_t error;
    char *details_start = strstr(line, "\"details\":") + 10;
    char *details_end = strstr(details_start, ",\"prev\":");
    json_t *details = json_loadb(details_start, (size_t)(details_end - details_start), 0, &error);
    assert_non_null(details);
    char stamp[25];
    memcpy(stamp, strstr(line, "\"time\":\"") + 8, 24);
    stamp[24] = '\0';
    char *prev = details_end + 9;
    prev[64] = '\0';
    char *forged;
    size_t forged_len;
    TL_ASSERT_OK(tl_audit_format_line(4, stamp, "relay", "agent.connect", "D-7", details, prev,
                                      &forged, &forged_len));
    forged[forged_len - 1] = '\0';
    free(lines.line[3]);
    lines.line[3] = forged;
    json_decref(details);
    join_lines(fx->path, &lines);
    expect_broken(fx->path, 5, 5, "bad-prev");
}

static void test_partial_last_line_is_repaired_on_open(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 10);
    /* A crash in the middle of writing entry 11 leaves part of a line. */
    size_t len;
    char *data = read_file(fx->path, &len);
    FILE *f = fopen(fx->path, "ab");
    fwrite(data, 1, 50, f);
    fclose(f);
    free(data);

    tl_audit_report_t report;
    TL_ASSERT_OK(tl_audit_verify(fx->path, &report));
    assert_int_equal(report.entries, 10);
    assert_int_equal(report.partial_tail_bytes, 50);

    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    /* The repair is on the record as entry 11; the chain goes on from there. */
    assert_int_equal(tl_audit_last_seq(audit), 11);
    append_entries(audit, 5);
    tl_audit_close(audit);
    TL_ASSERT_OK(tl_audit_verify(fx->path, &report));
    assert_int_equal(report.entries, 16);
    assert_int_equal(report.partial_tail_bytes, 0);

    struct lines lines;
    split_lines(fx->path, &lines);
    assert_non_null(strstr(lines.line[10], "\"actor\":\"relay\",\"action\":\"audit.repair\""));
    assert_non_null(strstr(lines.line[10], "\"removed_bytes\":50,"));
    join_lines(fx->path, &lines);
}

static void test_log_that_is_only_a_partial_line_is_repaired(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->path, "{\"seq\":1,\"time\":\"2026-", 23);
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    assert_int_equal(tl_audit_last_seq(audit), 1);
    append_entries(audit, 2);
    tl_audit_close(audit);
    expect_valid(fx->path, 3);
}

static void test_damaged_last_line_is_not_repaired(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 10);
    struct lines lines;
    split_lines(fx->path, &lines);
    strstr(lines.line[9], "agent connected")[0] = 'A';
    join_lines(fx->path, &lines);
    size_t before_len;
    char *before = read_file(fx->path, &before_len);

    tl_audit_t *audit = NULL;
    TL_ASSERT_RC(TL_EPROTO, tl_audit_open(fx->path, &audit));
    assert_null(audit);
    size_t after_len;
    char *after = read_file(fx->path, &after_len);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);
}

static void test_overlong_unterminated_tail_is_not_repaired(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 2);
    off_t before = file_size(fx->path);
    char *junk = malloc(TL_AUDIT_LINE_MAX);
    memset(junk, 'x', TL_AUDIT_LINE_MAX);
    FILE *f = fopen(fx->path, "ab");
    fwrite(junk, 1, TL_AUDIT_LINE_MAX, f);
    fclose(f);
    free(junk);
    tl_audit_t *audit = NULL;
    TL_ASSERT_RC(TL_EPROTO, tl_audit_open(fx->path, &audit));
    assert_int_equal(file_size(fx->path), before + TL_AUDIT_LINE_MAX);
    expect_broken(fx->path, 3, 0, "too-long");
}

/* A write the disk refuses halfway (here: the file size limit) is undone. */
static void test_failed_write_leaves_no_partial_line(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    append_entries(audit, 3);
    off_t before = file_size(fx->path);

    struct rlimit old_limit, limit;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = (rlim_t)before + 100;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    TL_ASSERT_RC(-EFBIG, tl_audit_append(audit, "relay", "agent.connect", "D-7", NULL, NULL));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);

    assert_int_equal(file_size(fx->path), before);
    assert_int_equal(tl_audit_last_seq(audit), 3);
    append_entries(audit, 2);
    tl_audit_close(audit);
    expect_valid(fx->path, 5);
}

static void test_bad_input_is_rejected_and_nothing_written(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    append_entries(audit, 1);
    off_t before = file_size(fx->path);

    char long_actor[TL_AUDIT_ACTOR_MAX + 2];
    memset(long_actor, 'a', sizeof long_actor - 1);
    long_actor[sizeof long_actor - 1] = '\0';
    char long_subject[TL_AUDIT_SUBJECT_MAX + 2];
    memset(long_subject, 's', sizeof long_subject - 1);
    long_subject[sizeof long_subject - 1] = '\0';
    char long_action[TL_AUDIT_ACTION_MAX + 2];
    memset(long_action, 'x', sizeof long_action - 1);
    long_action[sizeof long_action - 1] = '\0';
    json_t *array = json_array();
    json_t *big = json_pack("{s:s%}", "blob", "", (size_t)0);
    char *blob = malloc(TL_AUDIT_DETAILS_MAX + 1);
    memset(blob, 'b', TL_AUDIT_DETAILS_MAX);
    blob[TL_AUDIT_DETAILS_MAX] = '\0';
    json_object_set_new(big, "blob", json_string(blob));
    free(blob);
    json_t *nul = json_pack("{s:s%}", "text", "a\0b", (size_t)3);

    static const struct {
        const char *actor, *action, *subject;
    } cases[] = {
        {NULL, "enroll.ok", ""},
        {"", "enroll.ok", ""},
        {"relay", NULL, ""},
        {"relay", "", ""},
        {"relay", "Enroll.OK", ""},
        {"relay", "enroll ok", ""},
        {"relay", ".enroll", ""},
        {"relay", "enroll\"ok", ""},
        {"tech:\x01"
         "alice",
         "enroll.ok", ""},
        {"tech:\xc3", "enroll.ok", ""},     /* invalid UTF-8 */
        {"relay", "enroll.ok", "T-42\n"},   /* control character */
        {"relay", "enroll.ok", "\xff\xfe"}, /* invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc =
            tl_audit_append(audit, cases[i].actor, cases[i].action, cases[i].subject, NULL, NULL);
        if (rc != TL_EINVAL)
            fail_msg("case %zu: expected TL_EINVAL, got %d (%s)", i, rc, tl_strerror(rc));
    }
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, long_actor, "enroll.ok", "", NULL, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", long_action, "", NULL, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "enroll.ok", long_subject, NULL, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "enroll.ok", "", array, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "enroll.ok", "", big, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "enroll.ok", "", nul, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(NULL, "relay", "enroll.ok", "", NULL, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append_batch(audit, NULL, 2));

    /* The same verdicts without an open log, for callers that check early. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_audit_entry_t entry = {cases[i].actor, cases[i].action, cases[i].subject, NULL, 0};
        TL_ASSERT_RC(TL_EINVAL, tl_audit_check_entry(&entry));
    }
    tl_audit_entry_t oversized = {"relay", "enroll.ok", "", big, 0};
    TL_ASSERT_RC(TL_EINVAL, tl_audit_check_entry(&oversized));
    tl_audit_entry_t fine = {"relay", "enroll.ok", NULL, NULL, 0};
    TL_ASSERT_OK(tl_audit_check_entry(&fine));

    assert_int_equal(file_size(fx->path), before);
    assert_int_equal(tl_audit_last_seq(audit), 1);
    /* Limits are inclusive: the longest allowed fields still go in. */
    long_actor[TL_AUDIT_ACTOR_MAX] = '\0';
    long_subject[TL_AUDIT_SUBJECT_MAX] = '\0';
    long_action[TL_AUDIT_ACTION_MAX] = '\0';
    TL_ASSERT_OK(tl_audit_append(audit, long_actor, long_action, long_subject, NULL, NULL));
    tl_audit_close(audit);
    expect_valid(fx->path, 2);
    json_decref(array);
    json_decref(big);
    json_decref(nul);
}

/* Builds {"d":{"d":...{}}} with the given number of objects in total. */
static json_t *nested(int levels)
{
    json_t *value = json_object();
    for (int i = 1; i < levels; i++) {
        json_t *outer = json_object();
        json_object_set_new(outer, "d", value);
        value = outer;
    }
    return value;
}

static void test_details_depth_limit(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    json_t *deepest_allowed = nested(TL_AUDIT_DETAILS_DEPTH);
    json_t *too_deep = nested(TL_AUDIT_DETAILS_DEPTH + 1);
    json_t *very_deep = nested(2000);
    TL_ASSERT_OK(tl_audit_append(audit, "relay", "test.depth", "", deepest_allowed, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "test.depth", "", too_deep, NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_append(audit, "relay", "test.depth", "", very_deep, NULL));
    tl_audit_close(audit);
    expect_valid(fx->path, 1);
    json_decref(deepest_allowed);
    json_decref(too_deep);
    json_decref(very_deep);
}

static void test_non_ascii_text_is_escaped_and_round_trips(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    const char *note = "zo\xc3\xab \xf0\x9f\x96\xa8 tab\t del\x7f \"q\" \\";
    json_t *details = json_pack("{s:s}", "note", note);
    TL_ASSERT_OK(tl_audit_append(audit, "tech:zo\xc3\xab", "file.pull", "T-42", details, NULL));
    json_decref(details);
    tl_audit_close(audit);
    expect_valid(fx->path, 1);

    size_t len;
    char *data = read_file(fx->path, &len);
    for (size_t i = 0; i + 1 < len; i++)
        assert_true(data[i] >= 0x20 && data[i] <= 0x7e);
    json_error_t error;
    json_t *entry = json_loads(data, 0, &error);
    assert_non_null(entry);
    assert_string_equal(json_string_value(json_object_get(entry, "actor")), "tech:zo\xc3\xab");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(entry, "details"), "note")), note);
    json_decref(entry);
    free(data);
}

static void test_log_file_mode_is_0600(void **state)
{
    struct fixture *fx = *state;
    mode_t old_mask = umask(0);
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    umask(old_mask);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tl_audit_close(audit);

    /* An existing log that others could read is tightened on open. */
    assert_int_equal(chmod(fx->path, 0644), 0);
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tl_audit_close(audit);
}

/* Two handles on one file, as the serving relay and an admin command have. */
static void test_two_handles_alternating_extend_one_chain(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *serve, *admin;
    TL_ASSERT_OK(tl_audit_open(fx->path, &serve));
    TL_ASSERT_OK(tl_audit_open(fx->path, &admin));
    for (uint64_t expected = 1; expected <= 20; expected++) {
        tl_audit_t *writer = expected % 2 ? serve : admin;
        uint64_t seq = 0;
        TL_ASSERT_OK(tl_audit_append(writer, "admin", "enroll.code", "", NULL, &seq));
        assert_int_equal(seq, expected);
        assert_int_equal(tl_audit_last_seq(writer), expected);
    }
    /* A handle's head is its own last view until it appends again. */
    assert_int_equal(tl_audit_last_seq(serve), 19);
    tl_audit_entry_t batch[3];
    for (int i = 0; i < 3; i++)
        batch[i] = (tl_audit_entry_t){.actor = "relay", .action = "agent.connect"};
    TL_ASSERT_OK(tl_audit_append_batch(serve, batch, 3));
    assert_int_equal(batch[0].seq, 21);
    assert_int_equal(batch[2].seq, 23);
    TL_ASSERT_OK(tl_audit_append_batch(admin, batch, 3));
    assert_int_equal(batch[0].seq, 24);
    tl_audit_close(serve);
    tl_audit_close(admin);
    expect_valid(fx->path, 26);

    /* Nothing was torn or repaired on the way. */
    char *data = read_file(fx->path, NULL);
    assert_null(strstr(data, "audit.repair"));
    free(data);
}

#define WRITER_PROCESSES 4
#define ENTRIES_PER_WRITER 200

/*
 * One writer process: its own handle, ENTRIES_PER_WRITER entries in batches
 * of 1 to 5, each numbered in details so the parent can check its order.
 * Starts when start_fd reads end-of-file. Returns an exit status.
 */
static int run_writer(const char *path, int writer, int start_fd)
{
    char go;
    while (read(start_fd, &go, 1) < 0 && errno == EINTR)
        ;
    tl_audit_t *audit;
    if (tl_audit_open(path, &audit) != 0)
        return 10;
    char actor[32];
    snprintf(actor, sizeof actor, "tech:writer-%d", writer);
    int status = 0;
    int written = 0;
    for (int batch_size = 1; written < ENTRIES_PER_WRITER && status == 0;
         batch_size = batch_size % 5 + 1) {
        tl_audit_entry_t batch[5];
        int count = 0;
        for (; count < batch_size && written + count < ENTRIES_PER_WRITER; count++)
            batch[count] = (tl_audit_entry_t){
                .actor = actor,
                .action = "test.concurrent",
                .details = json_pack("{s:i}", "n", written + count),
            };
        if (tl_audit_append_batch(audit, batch, (size_t)count) != 0)
            status = 11;
        for (int i = 0; i < count; i++) {
            if (status == 0 && i > 0 && batch[i].seq != batch[i - 1].seq + 1)
                status = 12; /* a batch is one write: its seqs are consecutive */
            json_decref(batch[i].details);
        }
        written += count;
    }
    tl_audit_close(audit);
    return status;
}

/* Real processes racing on one file, the first of them creating it. */
static void test_writer_processes_extend_one_chain(void **state)
{
    struct fixture *fx = *state;
    const uint64_t total = WRITER_PROCESSES * ENTRIES_PER_WRITER;
    int start[2];
    assert_int_equal(pipe(start), 0);
    pid_t pids[WRITER_PROCESSES];
    for (int w = 0; w < WRITER_PROCESSES; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            close(start[1]);
            /* _exit: the child must not run cmocka's or stdio's exit work. */
            _exit(run_writer(fx->path, w, start[0]));
        }
    }
    close(start[0]);
    close(start[1]); /* every child reads end-of-file: go */
    for (int w = 0; w < WRITER_PROCESSES; w++) {
        int status;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("writer %d: expected exit 0, got status 0x%x", w, (unsigned)status);
    }

    expect_valid(fx->path, total);
    /* Every seq exactly once, and every writer's entries all there, in its order. */
    bool seen[WRITER_PROCESSES * ENTRIES_PER_WRITER + 1] = {false};
    int next_n[WRITER_PROCESSES] = {0};
    uint64_t lines = 0;
    FILE *f = fopen(fx->path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, f) > 0) {
        json_error_t error;
        json_t *entry = json_loads(line, 0, &error);
        assert_non_null(entry);
        json_int_t seq = json_integer_value(json_object_get(entry, "seq"));
        if (seq < 1 || seq > (json_int_t)total || seen[seq])
            fail_msg("line %llu: seq %lld out of range or repeated", (unsigned long long)lines + 1,
                     (long long)seq);
        seen[seq] = true;
        int writer = -1;
        assert_int_equal(
            sscanf(json_string_value(json_object_get(entry, "actor")), "tech:writer-%d", &writer),
            1);
        assert_true(writer >= 0 && writer < WRITER_PROCESSES);
        json_int_t n = json_integer_value(json_object_get(json_object_get(entry, "details"), "n"));
        assert_int_equal(n, next_n[writer]);
        next_n[writer]++;
        json_decref(entry);
        lines++;
    }
    free(line);
    fclose(f);
    assert_int_equal(lines, total);
    for (int w = 0; w < WRITER_PROCESSES; w++)
        assert_int_equal(next_n[w], ENTRIES_PER_WRITER);
}

/* A writer that died mid-write leaves a torn line; the next append repairs it. */
static void test_append_repairs_a_line_another_writer_tore(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    append_entries(audit, 3);
    static const char torn[] = "{\"seq\":4,\"time\":\"2026-";
    FILE *f = fopen(fx->path, "ab");
    fputs(torn, f);
    fclose(f);

    uint64_t seq = 0;
    TL_ASSERT_OK(tl_audit_append(audit, "relay", "agent.connect", "D-7", NULL, &seq));
    assert_int_equal(seq, 5);
    tl_audit_close(audit);
    tl_audit_report_t report;
    TL_ASSERT_OK(tl_audit_verify(fx->path, &report));
    assert_int_equal(report.entries, 5);
    assert_int_equal(report.partial_tail_bytes, 0);
    struct lines lines;
    split_lines(fx->path, &lines);
    assert_non_null(strstr(lines.line[3], "\"action\":\"audit.repair\""));
    char removed[48];
    snprintf(removed, sizeof removed, "\"removed_bytes\":%zu,", strlen(torn));
    assert_non_null(strstr(lines.line[3], removed));
    join_lines(fx->path, &lines);
}

/* A bad last line is for a human, whoever finds it, and however often. */
static void test_append_refuses_a_bad_line_another_writer_left(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    append_entries(audit, 2);
    FILE *f = fopen(fx->path, "ab");
    fputs("garbage\n", f);
    fclose(f);
    off_t before = file_size(fx->path);

    for (int attempt = 0; attempt < 2; attempt++)
        TL_ASSERT_RC(TL_EPROTO,
                     tl_audit_append(audit, "relay", "agent.connect", "D-7", NULL, NULL));
    assert_int_equal(file_size(fx->path), before);
    assert_int_equal(tl_audit_last_seq(audit), 2);
    tl_audit_close(audit);
    expect_broken(fx->path, 3, 0, "no-hash-suffix");
}

/* The log at the path is the one every writer extends, even after a swap. */
static void test_append_follows_a_replaced_log_and_refuses_a_removed_one(void **state)
{
    struct fixture *fx = *state;
    tl_audit_t *audit;
    TL_ASSERT_OK(tl_audit_open(fx->path, &audit));
    append_entries(audit, 3);
    char other[160];
    snprintf(other, sizeof other, "%s/other.log", fx->dir);
    make_log(other, 5);
    assert_int_equal(rename(other, fx->path), 0);

    uint64_t seq = 0;
    TL_ASSERT_OK(tl_audit_append(audit, "relay", "agent.connect", "D-7", NULL, &seq));
    assert_int_equal(seq, 6);
    expect_valid(fx->path, 6);

    /* A removed log is not silently restarted from seq 1. */
    assert_int_equal(unlink(fx->path), 0);
    TL_ASSERT_RC(-ENOENT, tl_audit_append(audit, "relay", "agent.connect", "D-7", NULL, NULL));
    struct stat st;
    assert_int_equal(stat(fx->path, &st), -1);
    tl_audit_close(audit);
}

static void test_missing_file_is_not_reported_as_tampering(void **state)
{
    struct fixture *fx = *state;
    tl_audit_report_t report;
    TL_ASSERT_RC(-ENOENT, tl_audit_verify(fx->path, &report));
    assert_non_null(strstr(report.reason, "cannot read"));
}

static void test_report_print_names_first_bad_seq(void **state)
{
    struct fixture *fx = *state;
    make_log(fx->path, 8);
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    tl_audit_report_t report;
    int rc = tl_audit_verify(fx->path, &report);
    tl_audit_report_print(&report, rc, out);
    fflush(out);
    assert_non_null(strstr(text, "audit log OK: 8 entries, last hash "));
    fclose(out);
    free(text);

    struct lines lines;
    split_lines(fx->path, &lines);
    strstr(lines.line[4], "agent connected")[0] = 'A';
    join_lines(fx->path, &lines);
    out = open_memstream(&text, &text_len);
    rc = tl_audit_verify(fx->path, &report);
    tl_audit_report_print(&report, rc, out);
    fflush(out);
    assert_non_null(strstr(text, "audit log BROKEN at seq 5 (line 5): bad-hash"));
    assert_non_null(strstr(text, "4 entries before it verified"));
    fclose(out);
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_documented_example_lines),
    cmocka_unit_test_setup_teardown(test_appends_number_and_chain_entries, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reopen_continues_the_chain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_batch_appends_all_or_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_empty_log_verifies, setup, teardown),
    cmocka_unit_test_setup_teardown(test_changed_details_byte_names_its_seq, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deleted_line_names_the_seq_after_the_gap, setup, teardown),
    cmocka_unit_test_setup_teardown(test_swapped_lines_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_hash_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_edited_prev_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_first_line_must_start_the_chain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_not_json_reports_line_and_readable_seq, setup, teardown),
    cmocka_unit_test_setup_teardown(test_garbage_line_reports_line_number, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlong_line_fails_verification, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rehashed_edit_detected_at_next_entry, setup, teardown),
    cmocka_unit_test_setup_teardown(test_partial_last_line_is_repaired_on_open, setup, teardown),
    cmocka_unit_test_setup_teardown(test_log_that_is_only_a_partial_line_is_repaired, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_damaged_last_line_is_not_repaired, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlong_unterminated_tail_is_not_repaired, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_failed_write_leaves_no_partial_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_input_is_rejected_and_nothing_written, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_details_depth_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_non_ascii_text_is_escaped_and_round_trips, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_log_file_mode_is_0600, setup, teardown),
    cmocka_unit_test_setup_teardown(test_two_handles_alternating_extend_one_chain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_writer_processes_extend_one_chain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_append_repairs_a_line_another_writer_tore, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_append_refuses_a_bad_line_another_writer_left, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_append_follows_a_replaced_log_and_refuses_a_removed_one,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_file_is_not_reported_as_tampering, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_report_print_names_first_bad_seq, setup, teardown),
};

TL_TEST_MAIN(tests)
