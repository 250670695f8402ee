/* Log lines: plain on a terminal or a file, with syslog priorities when stderr is the journal. */
#include "tl_test.h"

#include "proto/log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* stderr goes to a fresh file; journal says whether $JOURNAL_STREAM names that file. */
static FILE *stderr_to_file(char *path, size_t size, int journal)
{
    snprintf(path, size, "/tmp/tl-log.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    struct stat st;
    assert_int_equal(0, fstat(STDERR_FILENO, &st));
    char stream[64];
    snprintf(stream, sizeof stream, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (journal ? 0 : 1));
    setenv("JOURNAL_STREAM", stream, 1);
    return fopen(path, "r");
}

static void read_all(FILE *file, char *out, size_t size)
{
    fflush(stderr);
    size_t n = fread(out, 1, size - 1, file);
    out[n] = '\0';
}

static void test_journal_lines_carry_their_priority(void **state)
{
    (void)state;
    char path[64], text[2048];
    FILE *file = stderr_to_file(path, sizeof path, 1);
    assert_int_equal(1, tl_log_detect_journal());
    tl_log_set_level(TL_LOG_DEBUG);
    tl_log_debug("one");
    tl_log_info("two");
    tl_log_warn("three");
    tl_log_error("four");
    read_all(file, text, sizeof text);
    /* Each line: "<N>" then the usual timestamp and level word. */
    const char *expected[][2] = {
        {"<7>", "debug one"}, {"<6>", "info two"}, {"<4>", "warn three"}, {"<3>", "error four"}};
    char *line = text;
    for (size_t i = 0; i < 4; i++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        if (strncmp(line, expected[i][0], 3) != 0 || strstr(line, expected[i][1]) == NULL)
            fail_msg("line %zu: expected %s...%s, got \"%s\"", i, expected[i][0], expected[i][1],
                     line);
        line = end + 1;
    }
    fclose(file);
    unlink(path);
}

static void test_lines_elsewhere_are_unchanged(void **state)
{
    (void)state;
    char path[64], text[2048];
    /* $JOURNAL_STREAM names another inode: stderr was redirected since systemd set it. */
    FILE *file = stderr_to_file(path, sizeof path, 0);
    assert_int_equal(0, tl_log_detect_journal());
    tl_log_warn("plain");
    read_all(file, text, sizeof text);
    assert_true(text[0] >= '0' && text[0] <= '9');
    assert_non_null(strstr(text, " warn plain\n"));
    fclose(file);
    unlink(path);
}

static void test_a_malformed_journal_stream_means_plain_lines(void **state)
{
    (void)state;
    char path[64];
    FILE *file = stderr_to_file(path, sizeof path, 1);
    const char *bad[] = {"", "12", "x:y", "1:2:3", "1:2x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("JOURNAL_STREAM", bad[i], 1);
        if (tl_log_detect_journal() != 0)
            fail_msg("JOURNAL_STREAM=\"%s\" was taken for the journal", bad[i]);
    }
    unsetenv("JOURNAL_STREAM");
    assert_int_equal(0, tl_log_detect_journal());
    fclose(file);
    unlink(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_journal_lines_carry_their_priority),
    cmocka_unit_test(test_lines_elsewhere_are_unchanged),
    cmocka_unit_test(test_a_malformed_journal_stream_means_plain_lines),
};

TL_TEST_MAIN(tests)
