/* Files under a grant (agent/files.c): reads and writes that no link leads astray, no half write.
 */
#include "tl_test.h"

#include "agent/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[512];

static int setup(void **state)
{
    (void)state;
    char made[] = "/tmp/tl-files-XXXXXX";
    char *resolved = mkdtemp(made) != NULL ? realpath(made, NULL) : NULL;
    int ok = resolved != NULL && strlen(resolved) < sizeof root;
    if (ok)
        strcpy(root, resolved);
    free(resolved);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    return system(command) == 0 ? 0 : -1;
}

static const char *at(const char *relative)
{
    static char paths[4][PATH_MAX];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, PATH_MAX, "%s/%s", root, relative);
    return path;
}

static void put_file(const char *relative, const char *text)
{
    FILE *f = fopen(at(relative), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_content(const char *relative, const char *text)
{
    char got[256] = "";
    FILE *f = fopen(at(relative), "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, text);
}

/* Names in the directory: the temporary files of a write must never stay. */
static int entries(void)
{
    DIR *dir = opendir(root);
    assert_non_null(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    closedir(dir);
    return count;
}

static void test_read_a_regular_file(void **state)
{
    (void)state;
    put_file("hostname", "laptop-7\n");
    int fd;
    struct stat st;
    TL_ASSERT_OK(tl_files_open_read(at("hostname"), &fd, &st));
    assert_int_equal(st.st_size, 9);
    char got[16] = "";
    assert_int_equal(read(fd, got, sizeof got), 9);
    assert_memory_equal(got, "laptop-7\n", 9);
    close(fd);
}

static void test_read_refuses_links_and_odd_files(void **state)
{
    (void)state;
    int fd = -1;
    struct stat st;
    /* A link to a file outside, a directory link on the way, a FIFO, a directory, nothing. */
    assert_int_equal(symlink("/etc/hostname", at("out")), 0);
    TL_ASSERT_RC(TL_EDENIED, tl_files_open_read(at("out"), &fd, &st));
    assert_int_equal(mkdir(at("inner"), 0700), 0);
    assert_int_equal(symlink("/etc", at("inner/etc")), 0);
    TL_ASSERT_RC(TL_EDENIED, tl_files_open_read(at("inner/etc/hostname"), &fd, &st));
    assert_int_equal(mkfifo(at("fifo"), 0600), 0);
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read(at("fifo"), &fd, &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read(at("inner"), &fd, &st));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_files_open_read(at("missing"), &fd, &st));
    assert_int_equal(fd, -1);
}

static int collect(void *data, const char *name, const struct stat *st)
{
    char *names = data;
    size_t used = strlen(names);
    snprintf(names + used, 256 - used, "%s%s%s", used ? " " : "", name,
             S_ISLNK(st->st_mode) ? "@" : "");
    return 0;
}

static void test_stat_and_list_never_follow_a_link(void **state)
{
    (void)state;
    put_file("a", "12345");
    assert_int_equal(mkdir(at("dir"), 0700), 0);
    assert_int_equal(symlink("/etc", at("dir/etc")), 0);
    assert_int_equal(symlink(at("dir"), at("linked")), 0);
    put_file("bad\x1bname", "x");
    struct stat st;
    TL_ASSERT_OK(tl_files_stat(at("a"), &st));
    assert_int_equal(st.st_size, 5);
    TL_ASSERT_OK(tl_files_stat("/", &st));
    assert_true(S_ISDIR(st.st_mode));
    /* A link is described as one; a path through it is refused. */
    TL_ASSERT_OK(tl_files_stat(at("linked"), &st));
    assert_true(S_ISLNK(st.st_mode));
    TL_ASSERT_RC(TL_EDENIED, tl_files_stat(at("linked/etc"), &st));
    TL_ASSERT_RC(TL_EDENIED, tl_files_stat(at("dir/etc/hostname"), &st));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_files_stat(at("missing"), &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_stat("relative", &st));
    char names[256] = "";
    TL_ASSERT_OK(tl_files_list(at("dir"), collect, names));
    assert_string_equal(names, "etc@");
    TL_ASSERT_RC(TL_EDENIED, tl_files_list(at("linked"), collect, names));
    TL_ASSERT_RC(TL_EINVAL, tl_files_list(at("a"), collect, names));
    /* A name with a control character is left out. */
    names[0] = '\0';
    TL_ASSERT_OK(tl_files_list(root, collect, names));
    assert_null(strstr(names, "bad"));
    assert_non_null(strstr(names, "linked@"));
}

static void test_read_refuses_paths_the_check_refuses(void **state)
{
    (void)state;
    put_file("a", "x");
    int fd = -1;
    struct stat st;
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read(at("inner/../a"), &fd, &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read(at("./a"), &fd, &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read(at("a\n"), &fd, &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read("a", &fd, &st));
    TL_ASSERT_RC(TL_EINVAL, tl_files_open_read("/", &fd, &st));
    assert_int_equal(fd, -1);
}

static void test_write_replaces_only_when_committed(void **state)
{
    (void)state;
    put_file("fix.conf", "old\n");
    tl_files_write_t *write;
    TL_ASSERT_OK(tl_files_write_begin(at("fix.conf"), 0644, 1024, &write));
    TL_ASSERT_OK(tl_files_write_data(write, "new ", 4));
    expect_content("fix.conf", "old\n"); /* nothing seen before the commit */
    TL_ASSERT_OK(tl_files_write_data(write, "bytes\n", 6));
    assert_int_equal(tl_files_write_size(write), 10);
    TL_ASSERT_OK(tl_files_write_commit(write));
    expect_content("fix.conf", "new bytes\n");
    assert_int_equal(entries(), 1);

    TL_ASSERT_OK(tl_files_write_begin(at("fresh"), 0600, 1024, &write));
    TL_ASSERT_OK(tl_files_write_commit(write));
    expect_content("fresh", "");
    assert_int_equal(entries(), 2);
}

static void test_write_over_the_limit_or_abandoned_leaves_nothing(void **state)
{
    (void)state;
    put_file("fix.conf", "old\n");
    tl_files_write_t *write;
    TL_ASSERT_OK(tl_files_write_begin(at("fix.conf"), 0644, 8, &write));
    TL_ASSERT_OK(tl_files_write_data(write, "12345", 5));
    TL_ASSERT_RC(TL_EFULL, tl_files_write_data(write, "6789", 4));
    assert_int_equal(tl_files_write_size(write), 5);
    tl_files_write_abort(write);
    expect_content("fix.conf", "old\n");
    assert_int_equal(entries(), 1);
    tl_files_write_abort(NULL);
}

static void test_write_never_follows_a_link(void **state)
{
    (void)state;
    put_file("target", "keep\n");
    assert_int_equal(symlink(at("target"), at("link")), 0);
    tl_files_write_t *write = NULL;
    TL_ASSERT_RC(TL_EDENIED, tl_files_write_begin(at("link"), 0644, 1024, &write));
    assert_null(write);
    assert_int_equal(mkdir(at("real"), 0700), 0);
    assert_int_equal(symlink(at("real"), at("dirlink")), 0);
    TL_ASSERT_RC(TL_EDENIED, tl_files_write_begin(at("dirlink/x"), 0644, 1024, &write));
    TL_ASSERT_RC(TL_EINVAL, tl_files_write_begin(at("real"), 0644, 1024, &write));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_files_write_begin(at("nowhere/x"), 0644, 1024, &write));
    TL_ASSERT_RC(TL_EINVAL, tl_files_write_begin(at("real/../x"), 0644, 1024, &write));
    TL_ASSERT_RC(TL_EINVAL, tl_files_write_begin(at("a\x1b[2J"), 0644, 1024, &write));
    expect_content("target", "keep\n");
    assert_int_equal(entries(), 4); /* target, link, real, dirlink: nothing new */
    struct stat st;
    assert_int_equal(stat(at("real/x"), &st), -1);
}

static void test_write_drops_special_mode_bits(void **state)
{
    (void)state;
    tl_files_write_t *write;
    TL_ASSERT_OK(tl_files_write_begin(at("tool"), 04755, 1024, &write));
    TL_ASSERT_OK(tl_files_write_commit(write));
    struct stat st;
    assert_int_equal(stat(at("tool"), &st), 0);
    assert_int_equal(st.st_mode & 07000, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_read_a_regular_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_refuses_links_and_odd_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_read_refuses_paths_the_check_refuses, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_replaces_only_when_committed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_over_the_limit_or_abandoned_leaves_nothing, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_write_never_follows_a_link, setup, teardown),
    cmocka_unit_test_setup_teardown(test_write_drops_special_mode_bits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stat_and_list_never_follow_a_link, setup, teardown),
};

TL_TEST_MAIN(tests)
