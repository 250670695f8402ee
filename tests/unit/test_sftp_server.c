/*
 * The relay's SFTP server (relay/sessions/sftp_server.c) driven as OpenSSH's
 * sftp and scp drive it, against a backend that serves one file and one
 * directory from memory: the tree, pulls and pushes, limits, bad input.
 */
#include "tl_test.h"

#include "relay/sessions/sftp_server.h"

#include <stdlib.h>

#define FILE_SIZE 100000u

/* The backend: answers at once, and remembers what it was asked. */
struct fake {
    tl_sftp_server_t *server;
    uint8_t content[FILE_SIZE];
    uint64_t read_at; /* the next byte a read gives */
    uint8_t written[FILE_SIZE];
    size_t written_len;
    int closed, aborted;
    char last_path[TL_SFTP_MAX_PATH + 1];
    char last_ticket[24];
    int calls;
    int hold_reads;   /* reads are not answered (a machine that is slow) */
    uint32_t held_op; /* the last read held */
};

static void fake_tickets(void *ctx, uint32_t op)
{
    struct fake *f = ctx;
    f->calls++;
    tl_sftp_entry_t entries[] = {
        {"T-1", {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555}},
        {"T-2", {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555}},
    };
    tl_sftp_server_answer_entries(f->server, op, entries, 2);
}

static void fake_stat(void *ctx, uint32_t op, const tl_sftp_vpath_t *path, int follow)
{
    struct fake *f = ctx;
    f->calls++;
    strcpy(f->last_path, path->path);
    strcpy(f->last_ticket, path->ticket);
    if (strcmp(path->path, "/etc/hostname") != 0) {
        tl_sftp_server_answer_status(f->server, op, TL_SFTP_NO_SUCH_FILE, NULL);
        return;
    }
    tl_sftp_attrs_t attrs = {.flags = TL_SFTP_ATTR_SIZE | TL_SFTP_ATTR_PERMISSIONS,
                             .size = FILE_SIZE,
                             .permissions = 0100644};
    tl_sftp_server_answer_attrs(f->server, op, &attrs);
}

static void fake_list(void *ctx, uint32_t op, const tl_sftp_vpath_t *path)
{
    struct fake *f = ctx;
    f->calls++;
    tl_sftp_entry_t entries[] = {
        {"hostname", {.flags = TL_SFTP_ATTR_SIZE, .size = FILE_SIZE}},
        {"bad\x1b[2Jname", {0}},
        {"cups", {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040755}},
    };
    tl_sftp_server_answer_entries(f->server, op, entries, 3);
}

static void fake_open_read(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path)
{
    struct fake *f = ctx;
    f->calls++;
    f->read_at = 0;
    strcpy(f->last_path, path->path);
    tl_sftp_server_answer_status(f->server, op, TL_SFTP_OK, NULL);
}

static void fake_open_write(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path,
                            uint32_t mode)
{
    struct fake *f = ctx;
    f->calls++;
    f->written_len = 0;
    strcpy(f->last_path, path->path);
    tl_sftp_server_answer_status(f->server, op, TL_SFTP_OK, NULL);
}

static void fake_read(void *ctx, uint32_t op, uint32_t file, uint32_t len)
{
    struct fake *f = ctx;
    f->calls++;
    if (f->hold_reads) {
        f->held_op = op;
        return;
    }
    size_t left = FILE_SIZE - f->read_at;
    size_t n = len < left ? len : left;
    tl_sftp_server_answer_data(f->server, op, f->content + f->read_at, n);
    f->read_at += n;
}

static void fake_write(void *ctx, uint32_t op, uint32_t file, const uint8_t *data, size_t len)
{
    struct fake *f = ctx;
    f->calls++;
    assert_true(f->written_len + len <= sizeof f->written);
    memcpy(f->written + f->written_len, data, len);
    f->written_len += len;
    tl_sftp_server_answer_status(f->server, op, TL_SFTP_OK, NULL);
}

static void fake_close(void *ctx, uint32_t op, uint32_t file, int aborted)
{
    struct fake *f = ctx;
    f->calls++;
    f->closed++;
    f->aborted += aborted;
    tl_sftp_server_answer_status(f->server, op, TL_SFTP_OK, NULL);
}

static const tl_sftp_backend_t backend = {
    .list_tickets = fake_tickets,
    .stat = fake_stat,
    .list = fake_list,
    .open_read = fake_open_read,
    .open_write = fake_open_write,
    .read = fake_read,
    .write = fake_write,
    .close = fake_close,
};

static struct fake *start(const tl_sftp_server_limits_t *limits)
{
    struct fake *f = calloc(1, sizeof *f);
    for (size_t i = 0; i < FILE_SIZE; i++)
        f->content[i] = (uint8_t)(i * 7 + 3);
    f->server = tl_sftp_server_new(&backend, f, limits);
    assert_non_null(f->server);
    return f;
}

static void stop(struct fake *f)
{
    tl_sftp_server_free(f->server);
    free(f);
}

/* ---- the client's side -------------------------------------------------------------------- */

static uint32_t next_id = 1;

static tl_buf_t *packet(uint8_t type)
{
    tl_buf_t *buf = tl_buf_new(2 * TL_SFTP_MAX_PACKET);
    tl_buf_put_u32(buf, 0);
    tl_buf_put_u8(buf, type);
    tl_buf_put_u32(buf, type == TL_SFTP_INIT ? 3 : next_id++);
    return buf;
}

/* Sends the packet (all of it must be taken) and frees it. */
static void send_packet(struct fake *f, tl_buf_t *buf)
{
    tl_buf_poke_u32(buf, 0, (uint32_t)(tl_buf_len(buf) - 4));
    size_t taken = tl_sftp_server_input(f->server, tl_buf_data(buf), tl_buf_len(buf));
    assert_int_equal(taken, tl_buf_len(buf));
    tl_buf_free(buf);
}

struct reply {
    uint8_t type;
    uint32_t id;
    uint32_t status;
    char message[256];
    uint8_t handle[16];
    size_t handle_len;
    uint8_t data[TL_SFTP_MAX_READ];
    size_t data_len;
    uint32_t count;
    char names[8][64];
    tl_sftp_attrs_t attrs;
};

/* Takes the next reply off the server's output. */
static void next_reply(struct fake *f, struct reply *r)
{
    memset(r, 0, sizeof *r);
    size_t len;
    const uint8_t *out = tl_sftp_server_output(f->server, &len);
    const uint8_t *payload;
    size_t payload_len;
    assert_int_equal(tl_sftp_next_packet(out, len, &payload, &payload_len), 1);
    tl_reader_t reader;
    tl_reader_init(&reader, payload, payload_len);
    TL_ASSERT_OK(tl_reader_u8(&reader, &r->type));
    TL_ASSERT_OK(tl_reader_u32(&reader, &r->id));
    const uint8_t *bytes;
    size_t n;
    switch (r->type) {
    case TL_SFTP_STATUS:
        TL_ASSERT_OK(tl_reader_u32(&reader, &r->status));
        TL_ASSERT_OK(tl_reader_string(&reader, 255, &bytes, &n));
        memcpy(r->message, bytes, n);
        break;
    case TL_SFTP_HANDLE:
        TL_ASSERT_OK(tl_reader_string(&reader, 16, &bytes, &n));
        memcpy(r->handle, bytes, n);
        r->handle_len = n;
        break;
    case TL_SFTP_DATA:
        TL_ASSERT_OK(tl_reader_string(&reader, TL_SFTP_MAX_READ, &bytes, &n));
        memcpy(r->data, bytes, n);
        r->data_len = n;
        break;
    case TL_SFTP_NAME:
        TL_ASSERT_OK(tl_reader_u32(&reader, &r->count));
        for (uint32_t i = 0; i < r->count && i < 8; i++) {
            TL_ASSERT_OK(tl_reader_string(&reader, 63, &bytes, &n));
            memcpy(r->names[i], bytes, n);
            TL_ASSERT_OK(tl_reader_string(&reader, 1024, &bytes, &n)); /* longname */
            uint32_t flags;
            TL_ASSERT_OK(tl_reader_u32(&reader, &flags));
            if (flags & TL_SFTP_ATTR_SIZE)
                tl_reader_u64(&reader, &r->attrs.size);
            if (flags & TL_SFTP_ATTR_PERMISSIONS)
                tl_reader_u32(&reader, &r->attrs.permissions);
        }
        break;
    case TL_SFTP_ATTRS:
        TL_ASSERT_OK(tl_reader_u32(&reader, &r->attrs.flags));
        if (r->attrs.flags & TL_SFTP_ATTR_SIZE)
            TL_ASSERT_OK(tl_reader_u64(&reader, &r->attrs.size));
        if (r->attrs.flags & TL_SFTP_ATTR_PERMISSIONS)
            TL_ASSERT_OK(tl_reader_u32(&reader, &r->attrs.permissions));
        break;
    default:
        break;
    }
    tl_sftp_server_consume(f->server, 4 + payload_len);
}

static void expect_status(struct fake *f, uint32_t status)
{
    struct reply r;
    next_reply(f, &r);
    if (r.type != TL_SFTP_STATUS || r.status != status)
        fail_msg("expected status %u, got type %u status %u (%s)", status, r.type, r.status,
                 r.message);
}

static void init(struct fake *f)
{
    send_packet(f, packet(TL_SFTP_INIT));
    struct reply r;
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_VERSION_REPLY);
    assert_int_equal(r.id, 3); /* the version */
}

static tl_buf_t *path_packet(uint8_t type, const char *path)
{
    tl_buf_t *buf = packet(type);
    tl_buf_put_cstring(buf, path);
    return buf;
}

static void open_file(struct fake *f, const char *path, uint32_t pflags, struct reply *r)
{
    tl_buf_t *buf = path_packet(TL_SFTP_OPEN, path);
    tl_buf_put_u32(buf, pflags);
    tl_buf_put_u32(buf, 0);
    send_packet(f, buf);
    next_reply(f, r);
}

static void send_read(struct fake *f, const struct reply *h, uint64_t offset, uint32_t len)
{
    tl_buf_t *buf = packet(TL_SFTP_READ);
    tl_buf_put_string(buf, h->handle, h->handle_len);
    tl_buf_put_u64(buf, offset);
    tl_buf_put_u32(buf, len);
    send_packet(f, buf);
}

static void send_handle_op(struct fake *f, uint8_t type, const struct reply *h)
{
    tl_buf_t *buf = packet(type);
    tl_buf_put_string(buf, h->handle, h->handle_len);
    send_packet(f, buf);
}

/* ---- cases ------------------------------------------------------------------------------------
 */

static void test_the_top_lists_the_tickets(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply r;
    send_packet(f, path_packet(TL_SFTP_REALPATH, "."));
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_NAME);
    assert_string_equal(r.names[0], "/");
    send_packet(f, path_packet(TL_SFTP_REALPATH, "T-1/etc/../etc/hostname"));
    next_reply(f, &r);
    assert_string_equal(r.names[0], "/T-1/etc/hostname");

    send_packet(f, path_packet(TL_SFTP_OPENDIR, "/"));
    struct reply dir;
    next_reply(f, &dir);
    assert_int_equal(dir.type, TL_SFTP_HANDLE);
    send_handle_op(f, TL_SFTP_READDIR, &dir);
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_NAME);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.names[0], "T-1");
    assert_string_equal(r.names[1], "T-2");
    send_handle_op(f, TL_SFTP_READDIR, &dir);
    expect_status(f, TL_SFTP_EOF);
    send_handle_op(f, TL_SFTP_CLOSE, &dir);
    expect_status(f, TL_SFTP_OK);
    stop(f);
}

static void test_a_directory_leaves_out_names_nobody_could_type(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply dir, r;
    send_packet(f, path_packet(TL_SFTP_OPENDIR, "/T-1/etc"));
    next_reply(f, &dir);
    send_handle_op(f, TL_SFTP_READDIR, &dir);
    next_reply(f, &r);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.names[0], "hostname");
    assert_string_equal(r.names[1], "cups");
    stop(f);
}

/* What scp does for `scp bob@relay:T-1/etc/hostname .`: stat, open, pipelined reads, close. */
static void test_pull_as_scp_does(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply r, h;
    send_packet(f, path_packet(TL_SFTP_STAT, "T-1/etc/hostname"));
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_ATTRS);
    assert_int_equal(r.attrs.size, FILE_SIZE);
    assert_string_equal(f->last_ticket, "T-1");
    assert_string_equal(f->last_path, "/etc/hostname");

    open_file(f, "T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    assert_int_equal(h.type, TL_SFTP_HANDLE);
    uint8_t got[FILE_SIZE + 1];
    size_t got_len = 0;
    /* Four reads in flight at a time, as the client pipelines them. */
    uint64_t asked = 0;
    int eof = 0;
    while (!eof) {
        for (int i = 0; i < 4; i++, asked += 32768)
            send_read(f, &h, asked, 32768);
        for (int i = 0; i < 4; i++) {
            next_reply(f, &r);
            if (r.type == TL_SFTP_STATUS) {
                assert_int_equal(r.status, TL_SFTP_EOF);
                eof = 1;
                continue;
            }
            assert_int_equal(r.type, TL_SFTP_DATA);
            assert_true(got_len + r.data_len <= FILE_SIZE);
            memcpy(got + got_len, r.data, r.data_len);
            got_len += r.data_len;
        }
    }
    /* The client asks again for the rest after the short read: end of file, at once. */
    send_read(f, &h, got_len, 32768);
    expect_status(f, TL_SFTP_EOF);
    assert_int_equal(got_len, FILE_SIZE);
    assert_memory_equal(got, f->content, FILE_SIZE);
    send_handle_op(f, TL_SFTP_CLOSE, &h);
    expect_status(f, TL_SFTP_OK);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->aborted, 0);
    stop(f);
}

static void test_push_as_scp_does(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply h;
    open_file(f, "/T-1/tmp/fix.conf", TL_SFTP_FXF_WRITE | TL_SFTP_FXF_CREAT | TL_SFTP_FXF_TRUNC,
              &h);
    assert_int_equal(h.type, TL_SFTP_HANDLE);
    assert_string_equal(f->last_path, "/tmp/fix.conf");
    for (uint64_t off = 0; off < 3 * 1000; off += 1000) {
        tl_buf_t *buf = packet(TL_SFTP_WRITE);
        tl_buf_put_string(buf, h.handle, h.handle_len);
        tl_buf_put_u64(buf, off);
        tl_buf_put_string(buf, f->content + off, 1000);
        send_packet(f, buf);
    }
    for (int i = 0; i < 3; i++)
        expect_status(f, TL_SFTP_OK);
    send_handle_op(f, TL_SFTP_CLOSE, &h);
    expect_status(f, TL_SFTP_OK);
    assert_int_equal(f->written_len, 3000);
    assert_memory_equal(f->written, f->content, 3000);
    assert_int_equal(f->aborted, 0);
    stop(f);
}

static void test_a_push_over_the_limit_is_dropped(void **state)
{
    (void)state;
    tl_sftp_server_limits_t limits = {.max_file_bytes = 1500, .max_files = 2};
    struct fake *f = start(&limits);
    init(f);
    struct reply h;
    open_file(f, "/T-1/tmp/big", TL_SFTP_FXF_WRITE | TL_SFTP_FXF_CREAT | TL_SFTP_FXF_TRUNC, &h);
    for (uint64_t off = 0; off < 2000; off += 1000) {
        tl_buf_t *buf = packet(TL_SFTP_WRITE);
        tl_buf_put_string(buf, h.handle, h.handle_len);
        tl_buf_put_u64(buf, off);
        tl_buf_put_string(buf, f->content, 1000);
        send_packet(f, buf);
    }
    expect_status(f, TL_SFTP_OK);
    struct reply r;
    next_reply(f, &r);
    assert_int_equal(r.status, TL_SFTP_FAILURE);
    assert_non_null(strstr(r.message, "limit of 1500 bytes"));
    assert_int_equal(f->written_len, 1000); /* the bytes over the limit never left */
    send_handle_op(f, TL_SFTP_CLOSE, &h);
    expect_status(f, TL_SFTP_OK);
    assert_int_equal(f->aborted, 1); /* the backend drops the file */

    /* A pull of a file over the limit fails too; and the session's count of files runs out. */
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    send_read(f, &h, 0, 32768);
    next_reply(f, &r);
    assert_int_equal(r.status, TL_SFTP_FAILURE);
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &r);
    assert_int_equal(r.status, TL_SFTP_FAILURE);
    assert_non_null(strstr(r.message, "limit of 2 files"));
    stop(f);
}

static void test_bad_paths_get_clear_errors_and_reach_no_machine(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply r;
    const char *paths[] = {"/T-1/../../etc/passwd", "/etc/passwd", "/T-1/tmp/a\x1b]0;x\a",
                           "/T-1/tmp/\xff"};
    const uint32_t statuses[] = {TL_SFTP_PERMISSION_DENIED, TL_SFTP_NO_SUCH_FILE, TL_SFTP_FAILURE,
                                 TL_SFTP_FAILURE};
    for (int i = 0; i < 4; i++) {
        send_packet(f, path_packet(TL_SFTP_STAT, paths[i]));
        next_reply(f, &r);
        assert_int_equal(r.type, TL_SFTP_STATUS);
        assert_int_equal(r.status, statuses[i]);
        assert_true(strlen(r.message) > 0);
        open_file(f, paths[i], TL_SFTP_FXF_WRITE | TL_SFTP_FXF_CREAT | TL_SFTP_FXF_TRUNC, &r);
        assert_int_equal(r.status, statuses[i]);
    }
    open_file(f, "/", TL_SFTP_FXF_READ, &r);
    assert_int_equal(r.status, TL_SFTP_PERMISSION_DENIED);
    assert_int_equal(f->calls, 0);
    stop(f);
}

static void test_operations_that_do_not_exist_here(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    send_packet(f, path_packet(TL_SFTP_REMOVE, "/T-1/etc/hostname"));
    expect_status(f, TL_SFTP_OP_UNSUPPORTED);
    tl_buf_t *buf = path_packet(TL_SFTP_RENAME, "/T-1/a");
    tl_buf_put_cstring(buf, "/T-1/b");
    send_packet(f, buf);
    expect_status(f, TL_SFTP_OP_UNSUPPORTED);
    send_packet(f, path_packet(TL_SFTP_EXTENDED, "limits@openssh.com"));
    expect_status(f, TL_SFTP_OP_UNSUPPORTED);
    send_packet(f, packet(77));
    expect_status(f, TL_SFTP_OP_UNSUPPORTED);
    struct reply r;
    open_file(f, "/T-1/tmp/x", TL_SFTP_FXF_WRITE | TL_SFTP_FXF_APPEND, &r);
    assert_int_equal(r.status, TL_SFTP_OP_UNSUPPORTED);
    /* A handle that is not ours, and reads out of order. */
    struct reply fake_handle = {.handle = "12345678", .handle_len = 8};
    send_read(f, &fake_handle, 0, 10);
    expect_status(f, TL_SFTP_FAILURE);
    struct reply h;
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    send_read(f, &h, 5000, 10);
    expect_status(f, TL_SFTP_FAILURE);
    assert_int_equal(f->calls, 1); /* the open, nothing else */
    assert_null(tl_sftp_server_failed(f->server));
    stop(f);
}

static void test_malformed_input_ends_the_session(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    /* Not INIT first. */
    send_packet(f, path_packet(TL_SFTP_STAT, "/"));
    assert_non_null(tl_sftp_server_failed(f->server));
    stop(f);

    f = start(NULL);
    init(f);
    uint8_t huge[8];
    tl_store_u32(huge, TL_SFTP_MAX_PACKET + 1);
    tl_sftp_server_input(f->server, huge, sizeof huge);
    assert_non_null(tl_sftp_server_failed(f->server));
    assert_int_equal(tl_sftp_server_input(f->server, huge, sizeof huge), 0);
    stop(f);

    f = start(NULL);
    init(f);
    tl_buf_t *buf = packet(TL_SFTP_STAT);
    tl_buf_put_u32(buf, 1000); /* a string longer than its packet */
    tl_buf_poke_u32(buf, 0, (uint32_t)(tl_buf_len(buf) - 4));
    tl_sftp_server_input(f->server, tl_buf_data(buf), tl_buf_len(buf));
    tl_buf_free(buf);
    assert_non_null(tl_sftp_server_failed(f->server));
    stop(f);
}

/* A client that sends reads and never takes the answers: input stops being taken. */
static void test_a_client_that_stops_reading_holds_no_more_memory(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply h;
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    f->hold_reads = 1; /* and a machine that does not answer: the waiting requests fill up */
    size_t sent = 0;
    for (uint64_t off = 0; off < 1000u * 32768u; off += 32768) {
        tl_buf_t *buf = packet(TL_SFTP_READ);
        tl_buf_put_string(buf, h.handle, h.handle_len);
        tl_buf_put_u64(buf, off);
        tl_buf_put_u32(buf, 32768);
        tl_buf_poke_u32(buf, 0, (uint32_t)(tl_buf_len(buf) - 4));
        size_t taken = tl_sftp_server_input(f->server, tl_buf_data(buf), tl_buf_len(buf));
        tl_buf_free(buf);
        if (taken == 0)
            break;
        sent++;
    }
    assert_int_equal(sent, TL_SFTP_SERVER_MAX_PENDING);
    assert_true(tl_sftp_server_blocked(f->server));
    stop(f);

    /* Answers that are never taken off the output: the high-water mark stops the input. */
    f = start(NULL);
    init(f);
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    sent = 0;
    char long_path[3000];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    memcpy(long_path, "/T-1/", 5);
    for (int i = 0; i < 10000; i++) {
        tl_buf_t *buf = path_packet(TL_SFTP_REALPATH, long_path);
        tl_buf_poke_u32(buf, 0, (uint32_t)(tl_buf_len(buf) - 4));
        size_t taken = tl_sftp_server_input(f->server, tl_buf_data(buf), tl_buf_len(buf));
        tl_buf_free(buf);
        if (taken == 0)
            break;
        sent++;
    }
    assert_true(sent < 10000);
    size_t queued;
    tl_sftp_server_output(f->server, &queued);
    assert_true(queued >= TL_SFTP_SERVER_HIGH_WATER);
    assert_true(queued < TL_SFTP_SERVER_HIGH_WATER + 8192); /* one reply past the mark */
    assert_null(tl_sftp_server_failed(f->server));
    stop(f);
}

/* A read answered after its file was closed and the handle's slot reused changes nothing. */
static void test_a_late_answer_leaves_a_new_handle_alone(void **state)
{
    (void)state;
    struct fake *f = start(NULL);
    init(f);
    struct reply h, r;
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &h);
    f->hold_reads = 1;
    send_read(f, &h, 0, 32768);
    send_handle_op(f, TL_SFTP_CLOSE, &h);
    expect_status(f, TL_SFTP_OK);
    struct reply again;
    open_file(f, "/T-1/etc/hostname", TL_SFTP_FXF_READ, &again);
    assert_int_equal(again.type, TL_SFTP_HANDLE);
    assert_memory_not_equal(again.handle, h.handle, 8); /* the same slot, a new generation */
    /* The old read ends short: were it taken for the new handle, that would be its end. */
    tl_sftp_server_answer_data(f->server, f->held_op, f->content, 10);
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_DATA);
    f->hold_reads = 0;
    f->read_at = 0;
    send_read(f, &again, 0, 32768);
    next_reply(f, &r);
    assert_int_equal(r.type, TL_SFTP_DATA);
    assert_int_equal(r.data_len, 32768);
    /* The old handle is gone. */
    send_read(f, &h, 32768, 10);
    expect_status(f, TL_SFTP_FAILURE);
    stop(f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_the_top_lists_the_tickets),
    cmocka_unit_test(test_a_directory_leaves_out_names_nobody_could_type),
    cmocka_unit_test(test_pull_as_scp_does),
    cmocka_unit_test(test_push_as_scp_does),
    cmocka_unit_test(test_a_push_over_the_limit_is_dropped),
    cmocka_unit_test(test_bad_paths_get_clear_errors_and_reach_no_machine),
    cmocka_unit_test(test_operations_that_do_not_exist_here),
    cmocka_unit_test(test_malformed_input_ends_the_session),
    cmocka_unit_test(test_a_client_that_stops_reading_holds_no_more_memory),
    cmocka_unit_test(test_a_late_answer_leaves_a_new_handle_alone),
};

TL_TEST_MAIN(tests)
