/* SFTP v3: packets as OpenSSH's client sends them, replies as it reads them, the virtual tree. */
#include "tl_test.h"

#include "proto/sftp.h"

#include <stdlib.h>

/* A request packet as a client builds it: u32 length, type, id, then the fields given. */
static tl_buf_t *packet_begin(uint8_t type, uint32_t id)
{
    tl_buf_t *buf = tl_buf_new(2 * TL_SFTP_MAX_PACKET);
    TL_ASSERT_OK(tl_buf_put_u32(buf, 0));
    TL_ASSERT_OK(tl_buf_put_u8(buf, type));
    TL_ASSERT_OK(tl_buf_put_u32(buf, id));
    return buf;
}

static void packet_end(tl_buf_t *buf)
{
    TL_ASSERT_OK(tl_buf_poke_u32(buf, 0, (uint32_t)(tl_buf_len(buf) - 4)));
}

/* Parses the one packet in buf. */
static int parse(tl_buf_t *buf, tl_sftp_request_t *req)
{
    const uint8_t *payload;
    size_t len;
    assert_int_equal(tl_sftp_next_packet(tl_buf_data(buf), tl_buf_len(buf), &payload, &len), 1);
    assert_int_equal(len + 4, tl_buf_len(buf));
    return tl_sftp_parse_request(payload, len, req);
}

static void test_open_for_read_as_openssh_sends_it(void **state)
{
    (void)state;
    tl_buf_t *buf = packet_begin(TL_SFTP_OPEN, 7);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "T-1/etc/hostname"));
    TL_ASSERT_OK(tl_buf_put_u32(buf, TL_SFTP_FXF_READ));
    TL_ASSERT_OK(tl_buf_put_u32(buf, 0)); /* no attributes */
    packet_end(buf);
    tl_sftp_request_t req;
    TL_ASSERT_OK(parse(buf, &req));
    assert_int_equal(req.type, TL_SFTP_OPEN);
    assert_int_equal(req.id, 7);
    assert_int_equal(req.pflags, TL_SFTP_FXF_READ);
    assert_int_equal(req.path_len, strlen("T-1/etc/hostname"));
    assert_memory_equal(req.path, "T-1/etc/hostname", req.path_len);
    tl_buf_free(buf);
}

static void test_write_with_attributes_and_extended_pairs(void **state)
{
    (void)state;
    tl_buf_t *buf = packet_begin(TL_SFTP_OPEN, 8);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "/T-1/tmp/fix.conf"));
    TL_ASSERT_OK(tl_buf_put_u32(buf, TL_SFTP_FXF_WRITE | TL_SFTP_FXF_CREAT | TL_SFTP_FXF_TRUNC));
    TL_ASSERT_OK(tl_buf_put_u32(buf, TL_SFTP_ATTR_PERMISSIONS | TL_SFTP_ATTR_EXTENDED));
    TL_ASSERT_OK(tl_buf_put_u32(buf, 0100644));
    TL_ASSERT_OK(tl_buf_put_u32(buf, 1));
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "name@example.com"));
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "value"));
    packet_end(buf);
    tl_sftp_request_t req;
    TL_ASSERT_OK(parse(buf, &req));
    assert_int_equal(req.attrs.flags, TL_SFTP_ATTR_PERMISSIONS);
    assert_int_equal(req.attrs.permissions, 0100644);
    tl_buf_free(buf);

    buf = packet_begin(TL_SFTP_WRITE, 9);
    TL_ASSERT_OK(tl_buf_put_string(buf, "h1", 2));
    TL_ASSERT_OK(tl_buf_put_u64(buf, 1ull << 33));
    TL_ASSERT_OK(tl_buf_put_string(buf, "abc", 3));
    packet_end(buf);
    TL_ASSERT_OK(parse(buf, &req));
    assert_int_equal(req.offset, 1ull << 33);
    assert_int_equal(req.data_len, 3);
    assert_memory_equal(req.data, "abc", 3);
    assert_memory_equal(req.handle, "h1", 2);
    tl_buf_free(buf);
}

static void test_packets_arrive_in_pieces(void **state)
{
    (void)state;
    tl_buf_t *buf = packet_begin(TL_SFTP_STAT, 3);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "/"));
    packet_end(buf);
    const uint8_t *payload;
    size_t len;
    for (size_t cut = 0; cut < tl_buf_len(buf); cut++)
        assert_int_equal(tl_sftp_next_packet(tl_buf_data(buf), cut, &payload, &len), 0);
    assert_int_equal(tl_sftp_next_packet(tl_buf_data(buf), tl_buf_len(buf), &payload, &len), 1);
    tl_buf_free(buf);
}

static void test_bad_lengths_are_refused(void **state)
{
    (void)state;
    const uint8_t *payload;
    size_t len;
    const uint8_t zero[] = {0, 0, 0, 0, 1};
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_sftp_next_packet(zero, sizeof zero, &payload, &len));
    uint8_t huge[4];
    tl_store_u32(huge, TL_SFTP_MAX_PACKET + 1);
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_sftp_next_packet(huge, sizeof huge, &payload, &len));

    /* A string longer than its packet, a path over the cap, bytes left over. */
    tl_sftp_request_t req;
    tl_buf_t *buf = packet_begin(TL_SFTP_STAT, 1);
    TL_ASSERT_OK(tl_buf_put_u32(buf, 100));
    TL_ASSERT_OK(tl_buf_put(buf, "/etc", 4));
    packet_end(buf);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, parse(buf, &req));
    tl_buf_free(buf);

    char *long_path = malloc(TL_SFTP_MAX_PATH + 2);
    memset(long_path, 'a', TL_SFTP_MAX_PATH + 1);
    long_path[TL_SFTP_MAX_PATH + 1] = '\0';
    buf = packet_begin(TL_SFTP_LSTAT, 1);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, long_path));
    packet_end(buf);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, parse(buf, &req));
    tl_buf_free(buf);
    free(long_path);

    buf = packet_begin(TL_SFTP_CLOSE, 1);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "h"));
    TL_ASSERT_OK(tl_buf_put_u8(buf, 0));
    packet_end(buf);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, parse(buf, &req));
    tl_buf_free(buf);

    buf = packet_begin(TL_SFTP_SETSTAT, 1);
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "/x"));
    TL_ASSERT_OK(tl_buf_put_u32(buf, TL_SFTP_ATTR_EXTENDED));
    TL_ASSERT_OK(tl_buf_put_u32(buf, TL_SFTP_MAX_EXTENDED + 1));
    packet_end(buf);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, parse(buf, &req));
    tl_buf_free(buf);
}

static void test_unknown_type_keeps_its_id(void **state)
{
    (void)state;
    tl_buf_t *buf = packet_begin(99, 42);
    packet_end(buf);
    tl_sftp_request_t req;
    TL_ASSERT_RC(TL_EMSG_TYPE, parse(buf, &req));
    assert_int_equal(req.type, 99);
    assert_int_equal(req.id, 42);
    tl_buf_free(buf);
}

static void test_replies_have_their_length(void **state)
{
    (void)state;
    tl_buf_t *out = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_sftp_put_version(out));
    const uint8_t version[] = {0, 0, 0, 5, TL_SFTP_VERSION_REPLY, 0, 0, 0, 3};
    assert_memory_equal(tl_buf_data(out), version, sizeof version);
    tl_buf_reset(out);

    TL_ASSERT_OK(tl_sftp_put_status(out, 5, TL_SFTP_EOF, "end"));
    /* type, id, code, "end", "en" */
    assert_int_equal(tl_load_u32(tl_buf_data(out)), 1 + 4 + 4 + 4 + 3 + 4 + 2);
    tl_buf_reset(out);

    tl_sftp_name_reply_t reply;
    tl_sftp_attrs_t attrs = {
        .flags = TL_SFTP_ATTR_SIZE | TL_SFTP_ATTR_PERMISSIONS, .size = 12, .permissions = 040755};
    TL_ASSERT_OK(tl_sftp_name_begin(out, &reply, 6, 2));
    TL_ASSERT_OK(tl_sftp_name_put(out, &reply, "T-1", NULL, &attrs));
    TL_ASSERT_RC(TL_EINVAL, tl_sftp_name_end(out, &reply)); /* one entry short */
    assert_int_equal(tl_buf_len(out), 0);                   /* and nothing of it is left */
    TL_ASSERT_OK(tl_sftp_name_begin(out, &reply, 6, 1));
    TL_ASSERT_OK(tl_sftp_name_put(out, &reply, "T-1", NULL, &attrs));
    TL_ASSERT_RC(TL_EINVAL, tl_sftp_name_put(out, &reply, "T-2", NULL, &attrs));
    TL_ASSERT_OK(tl_sftp_name_end(out, &reply));
    assert_int_equal(tl_load_u32(tl_buf_data(out)) + 4, tl_buf_len(out));
    tl_buf_free(out);

    /* A reply that does not fit the buffer leaves it as it was. */
    out = tl_buf_new(8);
    TL_ASSERT_OK(tl_buf_put(out, "xy", 2));
    TL_ASSERT_RC(TL_EFULL, tl_sftp_put_data(out, 1, "0123456789", 10));
    assert_int_equal(tl_buf_len(out), 2);
    tl_buf_free(out);
}

static void resolves(const char *path, const char *ticket, const char *machine)
{
    tl_sftp_vpath_t v;
    const char *why = NULL;
    int rc = tl_sftp_resolve((const uint8_t *)path, strlen(path), &v, &why);
    if (rc != 0)
        fail_msg("%s: expected %s on %s, got %s (%s)", path, machine, ticket, tl_strerror(rc), why);
    if (ticket == NULL) {
        assert_true(v.root);
        return;
    }
    assert_false(v.root);
    assert_string_equal(v.ticket, ticket);
    assert_string_equal(v.path, machine);
    TL_ASSERT_OK(tl_sftp_machine_path_check(v.path));
}

static void refused(const char *path, size_t len, int expected)
{
    tl_sftp_vpath_t v;
    const char *why = NULL;
    TL_ASSERT_RC(expected, tl_sftp_resolve((const uint8_t *)path, len, &v, &why));
    assert_non_null(why);
    assert_false(v.root);
    assert_string_equal(v.path, "");
}

static void test_virtual_tree(void **state)
{
    (void)state;
    resolves("", NULL, NULL);
    resolves(".", NULL, NULL);
    resolves("/", NULL, NULL);
    resolves("T-1/..", NULL, NULL);
    resolves("T-1", "T-1", "/");
    resolves("/T-1/", "T-1", "/");
    resolves("T-1/etc/hostname", "T-1", "/etc/hostname");
    resolves("//T-12//etc/./cups/../hostname", "T-12", "/etc/hostname");
    resolves("/T-1/etc/../../T-2/tmp", "T-2", "/tmp");
    resolves("/T-1/tmp/caf\xc3\xa9", "T-1", "/tmp/caf\xc3\xa9");
}

static void test_virtual_tree_bad_input(void **state)
{
    (void)state;
    refused("..", 2, TL_EDENIED);
    refused("/T-1/../../etc/passwd", strlen("/T-1/../../etc/passwd"), TL_EDENIED);
    refused("/etc/passwd", strlen("/etc/passwd"), TL_ENOTFOUND);
    refused("/T-x/etc", strlen("/T-x/etc"), TL_ENOTFOUND);
    refused("/T-1/tmp/a\nb", strlen("/T-1/tmp/a\nb"), TL_EINVAL);
    refused("/T-1/tmp/a\x1b[2Jb", strlen("/T-1/tmp/a\x1b[2Jb"), TL_EINVAL);
    refused("/T-1/tmp/a\x7f", strlen("/T-1/tmp/a\x7f"), TL_EINVAL);
    refused("/T-1/tmp/a\0b", 12, TL_EINVAL);
    refused("/T-1/tmp/\xff", strlen("/T-1/tmp/\xff"), TL_EINVAL);
    char *long_path = malloc(TL_SFTP_MAX_PATH + 16);
    strcpy(long_path, "/T-1/");
    memset(long_path + 5, 'a', TL_SFTP_MAX_PATH);
    refused(long_path, TL_SFTP_MAX_PATH + 1, TL_EINVAL);
    refused(long_path, TL_SFTP_MAX_PATH + 5, TL_EINVAL);
    free(long_path);
}

static void test_machine_paths_the_agent_takes(void **state)
{
    (void)state;
    TL_ASSERT_OK(tl_sftp_machine_path_check("/"));
    TL_ASSERT_OK(tl_sftp_machine_path_check("/etc/hostname"));
    const char *bad[] = {"",          "etc/hostname", "/etc/",     "//etc",     "/etc/./x",
                         "/etc/../x", "/..",          "/tmp/a\tb", "/tmp/\x1b", "/tmp/\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_sftp_machine_path_check(bad[i]) != TL_EINVAL)
            fail_msg("accepted machine path #%zu", i);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_open_for_read_as_openssh_sends_it),
    cmocka_unit_test(test_write_with_attributes_and_extended_pairs),
    cmocka_unit_test(test_packets_arrive_in_pieces),
    cmocka_unit_test(test_bad_lengths_are_refused),
    cmocka_unit_test(test_unknown_type_keeps_its_id),
    cmocka_unit_test(test_replies_have_their_length),
    cmocka_unit_test(test_virtual_tree),
    cmocka_unit_test(test_virtual_tree_bad_input),
    cmocka_unit_test(test_machine_paths_the_agent_takes),
};

TL_TEST_MAIN(tests)
