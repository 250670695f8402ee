/* The ustar format bundles use (proto/tar.h): every header field in bounds, read back exactly,
 * and a damaged or foreign header named rather than half read. */
#include "tl_test.h"

#include "proto/tar.h"

static tl_tar_entry_t file_entry(const char *name, uint64_t size)
{
    tl_tar_entry_t entry = {.type = TL_TAR_FILE, .size = size, .mtime = 1764795780, .mode = 0644};
    snprintf(entry.name, sizeof entry.name, "%s", name);
    return entry;
}

/* A header with its checksum made right again after a change. */
static void reseal(uint8_t block[TL_TAR_BLOCK])
{
    unsigned sum = 0;
    memset(block + 148, ' ', 8);
    for (size_t i = 0; i < TL_TAR_BLOCK; i++)
        sum += block[i];
    snprintf((char *)block + 148, 8, "%06o", sum);
    block[155] = ' ';
}

static void test_a_header_reads_back_as_written(void **state)
{
    (void)state;
    uint8_t block[TL_TAR_BLOCK];
    tl_tar_entry_t written = file_entry("T-4/evidence/0001-diagnostics.json", 123456789);
    TL_ASSERT_OK(tl_tar_header_write(&written, block));
    /* What any tar reads: the magic, the type, octal fields with their terminators. */
    assert_memory_equal(block + 257,
                        "ustar\0"
                        "00",
                        8);
    assert_int_equal(block[156], '0');
    assert_string_equal((const char *)block + 124, "00726746425");
    tl_tar_entry_t read;
    const char *problem = NULL;
    TL_ASSERT_OK(tl_tar_header_read(block, &read, &problem));
    assert_string_equal(read.name, written.name);
    assert_int_equal(read.type, TL_TAR_FILE);
    assert_int_equal(read.size, written.size);
    assert_int_equal(read.mtime, written.mtime);
    assert_int_equal(read.mode, 0644);

    tl_tar_entry_t folder = {.name = "T-4/", .type = TL_TAR_DIRECTORY, .mode = 0755};
    TL_ASSERT_OK(tl_tar_header_write(&folder, block));
    TL_ASSERT_OK(tl_tar_header_read(block, &read, &problem));
    assert_string_equal(read.name, "T-4/");
    assert_int_equal(read.type, TL_TAR_DIRECTORY);
}

static void test_sizes_up_to_the_field_and_no_further(void **state)
{
    (void)state;
    uint8_t block[TL_TAR_BLOCK];
    tl_tar_entry_t entry = file_entry("big.bin", TL_TAR_SIZE_MAX);
    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    tl_tar_entry_t read;
    const char *problem;
    TL_ASSERT_OK(tl_tar_header_read(block, &read, &problem));
    assert_int_equal(read.size, TL_TAR_SIZE_MAX);
    entry.size = TL_TAR_SIZE_MAX + 1;
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&entry, block));
    entry = file_entry("old", 1);
    entry.mtime = -1;
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&entry, block));
    entry.mtime = TL_TAR_MTIME_MAX + 1;
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&entry, block));
    entry = file_entry("x", 0);
    entry.mode = 01777;
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&entry, block));
    tl_tar_entry_t folder = {.name = "d/", .type = TL_TAR_DIRECTORY, .size = 1};
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&folder, block));
}

static void test_names_that_could_escape_or_confuse_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",    "/etc/passwd", "a/../b", "..",          "../x",      "a//b", "./a",
        "a/.", "a b",         "a\\b",   "caf\xc3\xa9", "tab\there", "dir/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_tar_name_valid(bad[i], TL_TAR_FILE))
            fail_msg("file name '%s' accepted", bad[i]);
    char longest[TL_TAR_NAME_MAX + 2];
    memset(longest, 'a', TL_TAR_NAME_MAX);
    longest[TL_TAR_NAME_MAX] = '\0';
    assert_true(tl_tar_name_valid(longest, TL_TAR_FILE));
    longest[TL_TAR_NAME_MAX] = 'a';
    longest[TL_TAR_NAME_MAX + 1] = '\0';
    assert_false(tl_tar_name_valid(longest, TL_TAR_FILE));
    assert_true(tl_tar_name_valid("T-4/evidence/", TL_TAR_DIRECTORY));
    assert_false(tl_tar_name_valid("T-4/evidence", TL_TAR_DIRECTORY));
    assert_false(tl_tar_name_valid("T-4//", TL_TAR_DIRECTORY));
    assert_true(tl_tar_name_valid(".hidden/..a", TL_TAR_FILE));
    uint8_t block[TL_TAR_BLOCK];
    tl_tar_entry_t entry = file_entry("a/../b", 1);
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_write(&entry, block));
    for (size_t i = 0; i < TL_TAR_BLOCK; i++)
        if (block[i] != 0)
            fail_msg("a refused header left byte %zu set", i);
}

static void test_a_damaged_header_is_named(void **state)
{
    (void)state;
    uint8_t block[TL_TAR_BLOCK];
    tl_tar_entry_t entry = file_entry("MANIFEST", 10), read;
    const char *problem = NULL;
    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    block[3] ^= 1; /* a changed name */
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_read(block, &read, &problem));
    assert_non_null(strstr(problem, "checksum does not match"));

    /* A checksum made right does not let a bad field through. */
    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    memcpy(block + 124, "0000000001x", 11);
    reseal(block);
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_read(block, &read, &problem));
    assert_non_null(strstr(problem, "not an octal number"));

    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    memcpy(block, "../../etc/cron.d/x", 19);
    reseal(block);
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_read(block, &read, &problem));
    assert_non_null(strstr(problem, "'..'"));

    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    memset(block, 'a', 100); /* no NUL inside the name field */
    reseal(block);
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_read(block, &read, &problem));
    assert_non_null(strstr(problem, "does not end within its field"));

    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    memcpy(block + 257, "ustar  ", 8); /* GNU's old magic */
    reseal(block);
    TL_ASSERT_RC(TL_EINVAL, tl_tar_header_read(block, &read, &problem));
    assert_string_equal(problem, "not a ustar header");
}

static void test_links_and_extension_headers_are_refused(void **state)
{
    (void)state;
    static const char types[] = {'1', '2', '3', '4', '6', '7', 'x', 'g', 'L', 'K'};
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t block[TL_TAR_BLOCK];
        tl_tar_entry_t entry = file_entry("evidence/a", 0), read;
        const char *problem = NULL;
        TL_ASSERT_OK(tl_tar_header_write(&entry, block));
        block[156] = (uint8_t)types[i];
        reseal(block);
        if (tl_tar_header_read(block, &read, &problem) != TL_EINVAL)
            fail_msg("entry type '%c' accepted", types[i]);
        assert_non_null(strstr(problem, "unsupported entry type"));
    }
}

static void test_zero_blocks_end_and_content_is_padded_to_blocks(void **state)
{
    (void)state;
    uint8_t zeros[TL_TAR_BLOCK] = {0};
    tl_tar_entry_t read;
    const char *problem;
    assert_int_equal(tl_tar_header_read(zeros, &read, &problem), 1);
    assert_int_equal(tl_tar_padding(0), 0);
    assert_int_equal(tl_tar_padding(1), 511);
    assert_int_equal(tl_tar_padding(512), 0);
    assert_int_equal(tl_tar_padding(513), 511);
    assert_int_equal(tl_tar_padding(TL_TAR_SIZE_MAX), 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_header_reads_back_as_written),
    cmocka_unit_test(test_sizes_up_to_the_field_and_no_further),
    cmocka_unit_test(test_names_that_could_escape_or_confuse_are_refused),
    cmocka_unit_test(test_a_damaged_header_is_named),
    cmocka_unit_test(test_links_and_extension_headers_are_refused),
    cmocka_unit_test(test_zero_blocks_end_and_content_is_padded_to_blocks),
};

TL_TEST_MAIN(tests)
