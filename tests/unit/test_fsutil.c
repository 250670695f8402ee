/*
 * Whole-file writes and reads: a reader sees the old file or the new one,
 * never a part; a file is read whole or not at all, and over its cap is an
 * error, not a cut.
 */
#include "tl_test.h"

#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128], temp[128];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tl-fsutil-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(temp, sizeof temp, "%s/state.json.tmp", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(temp);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void put(const char *at, const char *text, mode_t mode)
{
    int fd = open(at, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(at, mode);
}

static void assert_file(const char *at, const char *expected)
{
    char text[256] = "";
    int fd = open(at, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    assert_true(n >= 0);
    text[n] = '\0';
    assert_string_equal(text, expected);
}

static void test_write_replaces_the_file_whole_and_private(void **state)
{
    (void)state;
    enum tl_fs_step step;
    TL_ASSERT_OK(tl_fs_write_atomic(path, "first\n", 6, TL_FS_SYNC | TL_FS_SYNC_DIR, &step));
    assert_file(path, "first\n");
    /* A temporary file a crash left behind, readable by all, is taken over and made private. */
    put(temp, "torn", 0644);
    TL_ASSERT_OK(tl_fs_write_atomic(path, "second\n", 7, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL));
    assert_file(path, "second\n");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(access(temp, F_OK), -1);
    /* Without the sync flags it is the same file, only not yet durable. */
    TL_ASSERT_OK(tl_fs_write_atomic(path, "", 0, 0, NULL));
    assert_file(path, "");
}

static void test_a_failed_write_leaves_the_old_file_and_no_temporary(void **state)
{
    (void)state;
    put(path, "old\n", 0600);
    enum tl_fs_step step = TL_FS_STEP_DIR;
    /* The temporary file's place is a symbolic link: refused, nothing replaced. */
    assert_int_equal(symlink("/tmp/tl-fsutil-elsewhere", temp), 0);
    TL_ASSERT_RC(-ELOOP, tl_fs_write_atomic(path, "new\n", 4, TL_FS_NOFOLLOW, &step));
    assert_int_equal(step, TL_FS_STEP_TEMP);
    assert_file(path, "old\n");
    assert_int_equal(access("/tmp/tl-fsutil-elsewhere", F_OK), -1);
    unlink(temp);
    /* A directory in the way of the rename. */
    char blocked[160];
    snprintf(blocked, sizeof blocked, "%s/blocked", dir);
    assert_int_equal(mkdir(blocked, 0700), 0);
    char inside[200];
    snprintf(inside, sizeof inside, "%s/x", blocked);
    put(inside, "x", 0600);
    TL_ASSERT_RC(-EISDIR, tl_fs_write_atomic(blocked, "new\n", 4, TL_FS_SYNC, &step));
    assert_int_equal(step, TL_FS_STEP_RENAME);
    snprintf(inside, sizeof inside, "%s.tmp", blocked);
    assert_int_equal(access(inside, F_OK), -1);
    snprintf(inside, sizeof inside, "%s/x", blocked);
    unlink(inside);
    rmdir(blocked);
    /* A directory that does not exist. */
    TL_ASSERT_RC(-ENOENT, tl_fs_write_atomic("/nonexistent-tierline/x.json", "x", 1,
                                             TL_FS_SYNC | TL_FS_SYNC_DIR, &step));
    assert_int_equal(step, TL_FS_STEP_TEMP);
}

static void test_read_gives_the_whole_file_up_to_its_cap(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    put(path, "0123456789", 0600);
    TL_ASSERT_OK(tl_fs_read_file(path, 10, 0, NULL, NULL, &text, &len));
    assert_string_equal(text, "0123456789");
    assert_int_equal(len, 10);
    free(text);
    /* One byte over the cap: refused whole, not cut. */
    TL_ASSERT_RC(TL_EFULL, tl_fs_read_file(path, 9, 0, NULL, NULL, &text, &len));
    assert_null(text);
    assert_int_equal(len, 0);
    /* Empty is a file too. */
    put(path, "", 0600);
    TL_ASSERT_OK(tl_fs_read_file(path, 10, 0, NULL, NULL, &text, &len));
    assert_string_equal(text, "");
    free(text);
    TL_ASSERT_RC(-ENOENT, tl_fs_read_file(temp, 10, 0, NULL, NULL, &text, &len));
}

static int refuse_group_readable(const struct stat *st, void *arg)
{
    *(int *)arg += 1;
    return (st->st_mode & 0077) != 0 ? TL_EKEY_PERMS : 0;
}

static void test_read_refuses_what_is_not_a_plain_file_unless_asked(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    TL_ASSERT_RC(TL_EINVAL, tl_fs_read_file(dir, 10, 0, NULL, NULL, &text, &len));
    TL_ASSERT_RC(TL_EINVAL, tl_fs_read_file("/dev/null", 10, 0, NULL, NULL, &text, &len));
    /* Asked to read anything, /dev/null is empty and /dev/zero is over any cap. */
    TL_ASSERT_OK(tl_fs_read_file("/dev/null", 10, TL_FS_READ_ANY_TYPE, NULL, NULL, &text, &len));
    assert_string_equal(text, "");
    free(text);
    TL_ASSERT_RC(TL_EFULL, tl_fs_read_file("/dev/zero", 100000, TL_FS_READ_ANY_TYPE, NULL, NULL,
                                           &text, &len));
    /* A FIFO with nobody writing does not hang the reader. */
    char fifo[160];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    TL_ASSERT_RC(TL_EINVAL, tl_fs_read_file(fifo, 10, 0, NULL, NULL, &text, &len));
    unlink(fifo);
    /* A symbolic link, when refused. */
    put(temp, "target", 0600);
    assert_int_equal(symlink(temp, path), 0);
    TL_ASSERT_RC(-ELOOP, tl_fs_read_file(path, 10, TL_FS_READ_NOFOLLOW, NULL, NULL, &text, &len));
    TL_ASSERT_OK(tl_fs_read_file(path, 10, 0, NULL, NULL, &text, &len));
    assert_string_equal(text, "target");
    free(text);
    /* The caller's check sees the file first and its refusal is the answer. */
    int checked = 0;
    chmod(temp, 0640);
    TL_ASSERT_RC(TL_EKEY_PERMS,
                 tl_fs_read_file(temp, 10, 0, refuse_group_readable, &checked, &text, &len));
    assert_int_equal(checked, 1);
    assert_null(text);
}

static void test_parent_dir_of_a_bare_name_a_root_name_and_a_path(void **state)
{
    (void)state;
    char out[16];
    TL_ASSERT_OK(tl_fs_parent_dir("audit.log", out, sizeof out));
    assert_string_equal(out, ".");
    TL_ASSERT_OK(tl_fs_parent_dir("/audit.log", out, sizeof out));
    assert_string_equal(out, "/");
    TL_ASSERT_OK(tl_fs_parent_dir("data/x/audit.log", out, sizeof out));
    assert_string_equal(out, "data/x");
    TL_ASSERT_RC(TL_EINVAL, tl_fs_parent_dir("a-long-directory/audit.log", out, sizeof out));
}

/* The descriptor limit: what fits is granted, more than the system allows is reported, not faked.
 */
static void test_fd_limit_raise_grants_what_fits_and_reports_what_does_not(void **state)
{
    struct rlimit before;
    assert_int_equal(0, getrlimit(RLIMIT_NOFILE, &before));
    assert_true(tl_fs_raise_fd_limit(64) >= 64);
    unsigned long long nr_open = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    assert_non_null(f);
    assert_int_equal(1, fscanf(f, "%llu", &nr_open));
    fclose(f);
    unsigned long long got = tl_fs_raise_fd_limit(nr_open + 1);
    assert_true(got < nr_open + 1);
    struct rlimit now;
    assert_int_equal(0, getrlimit(RLIMIT_NOFILE, &now));
    assert_int_equal(got, now.rlim_cur);
    assert_true(now.rlim_max >= before.rlim_max);
    setrlimit(RLIMIT_NOFILE, &before);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_write_replaces_the_file_whole_and_private, make_dir,
                                    remove_dir),
    cmocka_unit_test_setup_teardown(test_a_failed_write_leaves_the_old_file_and_no_temporary,
                                    make_dir, remove_dir),
    cmocka_unit_test_setup_teardown(test_read_gives_the_whole_file_up_to_its_cap, make_dir,
                                    remove_dir),
    cmocka_unit_test_setup_teardown(test_read_refuses_what_is_not_a_plain_file_unless_asked,
                                    make_dir, remove_dir),
    cmocka_unit_test(test_parent_dir_of_a_bare_name_a_root_name_and_a_path),
    cmocka_unit_test(test_fd_limit_raise_grants_what_fits_and_reports_what_does_not),
};

TL_TEST_MAIN(tests)
