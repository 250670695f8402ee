/*
 * A relay SSH front end with canned test commands, for tests/integ/ssh_front.py.
 *
 *   ssh_front_harness --listen ADDR:PORT --host-key KEY --users FILE
 *                     [--auth-timeout-ms MS] [--max-sessions N] [--preauth-per-address N]
 *                     [--keepalive-ms MS] [--idle-timeout-ms MS] [--log-level L]
 *   ssh_front_harness --print-host-key KEY   (the public key line for known_hosts)
 *
 * The users file has lines "NAME ROLE PUBKEY-LINE". Every login outcome is
 * written to stderr as "login user=... address=... key=... ok=N reason=...",
 * every command abort as "abort command=...". Commands: echo WORDS...,
 * big N, fail CODE, whoami, slow MS, sessions; for input and terminals:
 *   cat-input [hold | trickle N]  echoes stdin to stdout until EOF (with a
 *                PTY, until a ^D byte); "hold" takes nothing until `release`
 *                runs, "trickle N" takes at most N bytes per offer and
 *                resumes from a timer
 *   release      lets every held cat-input go; prints how many
 *   sink N       takes at most N bytes of input per offer, resuming from a
 *                timer; at EOF prints "received=BYTES sha256=HEX"
 *   wait-eof     reads no input (no on_input); prints "eof" at the client's EOF
 *   pty-info     prints "pty=R term=T cols=C rows=R", then "resize cols=C
 *                rows=R" for each window change, until a 'q' byte or EOF
 *   lines N      N lines on stdout and one on stderr; raw-lines N the same
 *                after tl_exec_set_raw()
 *   tickets ...  what a compromised relay might answer a listing with: terminal
 *                escapes, C1 controls raw and as UTF-8, DEL, a bidi override,
 *                a UTF-8 character split between two writes, on both streams
 * SIGTERM or SIGINT stops it cleanly (exit 0 once the loop is empty).
 */
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "relay/net/ssh_front.h"

#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_USERS 32

struct user {
    char name[65];
    char role[16];
    ssh_key key;
};

static struct user users[MAX_USERS];
static int user_count;
static tl_ssh_front_t *front;
static uv_signal_t sigterm, sigint;

static int load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[8192];
    while (fgets(line, sizeof line, f) != NULL && user_count < MAX_USERS) {
        char name[65], role[16], type[64], blob[4096];
        if (sscanf(line, "%64s %15s %63s %4095s", name, role, type, blob) != 4)
            continue;
        struct user *u = &users[user_count];
        if (ssh_pki_import_pubkey_base64(blob, ssh_key_type_from_name(type), &u->key) != SSH_OK) {
            fprintf(stderr, "harness: bad key for %s\n", name);
            continue;
        }
        snprintf(u->name, sizeof u->name, "%s", name);
        snprintf(u->role, sizeof u->role, "%s", role);
        user_count++;
    }
    fclose(f);
    return 0;
}

static int authorize(void *ctx, const char *user, ssh_key key, tl_technician_t *out)
{
    for (int i = 0; i < user_count; i++) {
        if (strcmp(users[i].name, user) != 0)
            continue;
        if (ssh_key_cmp(key, users[i].key, SSH_KEY_CMP_PUBLIC) != 0)
            return TL_ENOTFOUND;
        out->user_id = i + 1;
        snprintf(out->name, sizeof out->name, "%s", users[i].name);
        snprintf(out->role, sizeof out->role, "%s", users[i].role);
        return 0;
    }
    return TL_ENOTFOUND;
}

static void on_login(void *ctx, const char *user, const char *address, const char *fingerprint,
                     int ok, const char *reason)
{
    fprintf(stderr, "login user=%s address=%s key=%s ok=%d reason=%s\n", user[0] ? user : "-",
            address, fingerprint[0] ? fingerprint : "-", ok, reason);
}

/* ---- big N: a known pattern (byte i is i % 251), paced by on_drain ---------------------- */

#define PATTERN_CHUNK 65536
static unsigned char pattern[PATTERN_CHUNK + 251];

struct big {
    tl_exec_t *exec;
    unsigned long long remaining, offset;
};

static void big_pump(struct big *big)
{
    while (big->remaining > 0 && tl_exec_buffered(big->exec) < TL_EXEC_HIGH_WATER) {
        size_t len = big->remaining < PATTERN_CHUNK ? (size_t)big->remaining : PATTERN_CHUNK;
        int rc = tl_exec_write(big->exec, TL_EXEC_STDOUT, pattern + big->offset % 251, len);
        if (rc != 0) {
            fprintf(stderr, "harness: big write failed: %s\n", tl_strerror(rc));
            tl_exec_finish(big->exec, 1);
            free(big);
            return;
        }
        big->remaining -= len;
        big->offset += len;
    }
    if (big->remaining == 0) {
        tl_exec_finish(big->exec, 0);
        free(big);
    }
    /* else on_drain comes back */
}

static void big_drain(tl_exec_t *exec, void *data)
{
    big_pump(data);
}

static void big_abort(tl_exec_t *exec, void *data)
{
    struct big *big = data;
    fprintf(stderr, "abort command=big sent=%llu\n", big->offset);
    free(big);
}

static const tl_exec_callbacks_t big_callbacks = {.on_drain = big_drain, .on_abort = big_abort};

/* ---- slow MS: finishes from a timer ----------------------------------------------------- */

struct slow {
    uv_timer_t timer;
    tl_exec_t *exec;
    unsigned long ms;
};

static void slow_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void slow_done(uv_timer_t *timer)
{
    struct slow *slow = timer->data;
    tl_exec_printf(slow->exec, TL_EXEC_STDOUT, "slept %lu\n", slow->ms);
    tl_exec_finish(slow->exec, 0);
    uv_close((uv_handle_t *)&slow->timer, slow_closed);
}

static void slow_abort(tl_exec_t *exec, void *data)
{
    struct slow *slow = data;
    fprintf(stderr, "abort command=slow\n");
    uv_close((uv_handle_t *)&slow->timer, slow_closed);
}

static const tl_exec_callbacks_t slow_callbacks = {.on_abort = slow_abort};

/* ---- cat-input: stdin back to stdout, paced by the output window ----------------------- */

struct cat {
    uv_loop_t *loop;
    uv_timer_t timer; /* trickle: resumes input from the loop */
    tl_exec_t *exec;
    struct cat *next_held;
    unsigned long long received;
    size_t trickle; /* 0: take all that fits */
    int holding, waiting_drain, timer_active, done;
};

static struct cat *held_cats;

static void cat_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void cat_unhold(struct cat *cat)
{
    for (struct cat **link = &held_cats; *link != NULL; link = &(*link)->next_held) {
        if (*link == cat) {
            *link = cat->next_held;
            break;
        }
    }
    cat->holding = 0;
}

/* The exec is gone (finished or aborted): nothing may touch it again. */
static void cat_end(struct cat *cat)
{
    cat->done = 1;
    cat_unhold(cat);
    uv_close((uv_handle_t *)&cat->timer, cat_closed);
}

static void cat_finish(struct cat *cat, int status)
{
    fprintf(stderr, "cat-input done received=%llu\n", cat->received);
    tl_exec_finish(cat->exec, status);
    cat_end(cat);
}

static void cat_resume_later(uv_timer_t *timer)
{
    struct cat *cat = timer->data;
    cat->timer_active = 0;
    tl_exec_resume_input(cat->exec);
}

static size_t cat_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct cat *cat = data;
    if (cat->holding) {
        fprintf(stderr, "cat-input holding offered=%zu\n", len);
        return 0; /* until `release` */
    }
    if (tl_exec_buffered(exec) >= TL_EXEC_HIGH_WATER) {
        cat->waiting_drain = 1; /* resumed from on_drain */
        return 0;
    }
    size_t take = len;
    if (cat->trickle > 0 && take > cat->trickle)
        take = cat->trickle;
    const uint8_t *end_mark =
        tl_exec_pty(exec)->requested ? memchr(bytes, 0x04, take) : NULL; /* ^D ends it */
    if (end_mark != NULL)
        take = (size_t)(end_mark - bytes);
    int rc = tl_exec_write(exec, TL_EXEC_STDOUT, bytes, take);
    if (rc != 0) {
        fprintf(stderr, "harness: cat-input write failed: %s\n", tl_strerror(rc));
        cat_finish(cat, 1);
        return len;
    }
    cat->received += take;
    if (end_mark != NULL) {
        cat_finish(cat, 0);
        return len;
    }
    if (take < len && tl_exec_buffered(exec) < TL_EXEC_HIGH_WATER) {
        cat->timer_active = 1;
        uv_timer_start(&cat->timer, cat_resume_later, 0, 0);
    } else if (take < len) {
        cat->waiting_drain = 1;
    }
    return take;
}

static void cat_drain(tl_exec_t *exec, void *data)
{
    struct cat *cat = data;
    if (cat->waiting_drain && !cat->holding) {
        cat->waiting_drain = 0;
        tl_exec_resume_input(exec);
    }
}

static void cat_eof(tl_exec_t *exec, void *data)
{
    cat_finish(data, 0);
}

static void cat_abort(tl_exec_t *exec, void *data)
{
    struct cat *cat = data;
    fprintf(stderr, "abort command=cat-input received=%llu\n", cat->received);
    cat_end(cat);
}

static const tl_exec_callbacks_t cat_callbacks = {
    .on_drain = cat_drain, .on_abort = cat_abort, .on_input = cat_input, .on_input_eof = cat_eof};

static void release_held(tl_exec_t *exec)
{
    unsigned count = 0;
    while (held_cats != NULL) {
        struct cat *cat = held_cats;
        cat_unhold(cat);
        tl_exec_resume_input(cat->exec);
        count++;
    }
    tl_exec_printf(exec, TL_EXEC_STDOUT, "released %u\n", count);
    tl_exec_finish(exec, 0);
}

/* ---- sink N: a slow reader that keeps only a hash ---------------------------------------- */

struct sink {
    uv_timer_t timer;
    tl_exec_t *exec;
    tl_sha256_t *hash;
    unsigned long long received;
    size_t per_offer;
};

static void sink_closed(uv_handle_t *handle)
{
    struct sink *sink = handle->data;
    tl_sha256_free(sink->hash);
    free(sink);
}

static void sink_resume(uv_timer_t *timer)
{
    struct sink *sink = timer->data;
    tl_exec_resume_input(sink->exec);
}

static size_t sink_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct sink *sink = data;
    size_t take = len < sink->per_offer ? len : sink->per_offer;
    tl_sha256_update(sink->hash, bytes, take);
    sink->received += take;
    if (take < len)
        uv_timer_start(&sink->timer, sink_resume, 0, 0);
    return take;
}

static void sink_eof(tl_exec_t *exec, void *data)
{
    struct sink *sink = data;
    char hex[TL_SHA256_HEX_LEN];
    tl_sha256_final(sink->hash, hex);
    tl_exec_printf(exec, TL_EXEC_STDOUT, "received=%llu sha256=%s\n", sink->received, hex);
    tl_exec_finish(exec, 0);
    uv_close((uv_handle_t *)&sink->timer, sink_closed);
}

static void sink_abort(tl_exec_t *exec, void *data)
{
    struct sink *sink = data;
    fprintf(stderr, "abort command=sink received=%llu\n", sink->received);
    uv_close((uv_handle_t *)&sink->timer, sink_closed);
}

static const tl_exec_callbacks_t sink_callbacks = {
    .on_abort = sink_abort, .on_input = sink_input, .on_input_eof = sink_eof};

/* ---- wait-eof: no on_input, so input is dropped; answers at EOF -------------------------- */

static void wait_eof_eof(tl_exec_t *exec, void *data)
{
    tl_exec_printf(exec, TL_EXEC_STDOUT, "eof\n");
    tl_exec_finish(exec, 0);
}

static void wait_eof_abort(tl_exec_t *exec, void *data)
{
    fprintf(stderr, "abort command=wait-eof\n");
}

static const tl_exec_callbacks_t wait_eof_callbacks = {.on_abort = wait_eof_abort,
                                                       .on_input_eof = wait_eof_eof};

/* ---- pty-info: the terminal and its size changes ------------------------------------------ */

static size_t pty_info_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    if (memchr(bytes, 'q', len) != NULL) {
        tl_exec_printf(exec, TL_EXEC_STDOUT, "bye\n");
        tl_exec_finish(exec, 0);
    }
    return len;
}

static void pty_info_eof(tl_exec_t *exec, void *data)
{
    tl_exec_finish(exec, 0);
}

static void pty_info_resize(tl_exec_t *exec, unsigned cols, unsigned rows, void *data)
{
    tl_exec_printf(exec, TL_EXEC_STDOUT, "resize cols=%u rows=%u\n", cols, rows);
}

static void pty_info_abort(tl_exec_t *exec, void *data)
{
    fprintf(stderr, "abort command=pty-info\n");
}

static const tl_exec_callbacks_t pty_info_callbacks = {.on_abort = pty_info_abort,
                                                       .on_input = pty_info_input,
                                                       .on_input_eof = pty_info_eof,
                                                       .on_resize = pty_info_resize};

/* ---- the dispatcher --------------------------------------------------------------------- */

static int number(const char *text, unsigned long long *out)
{
    char *end;
    if (text == NULL || *text == '\0')
        return -1;
    *out = strtoull(text, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static void dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv)
{
    uv_loop_t *loop = ctx;
    const tl_technician_t *tech = tl_exec_technician(exec);
    unsigned long long n;
    if (strcmp(argv[0], "echo") == 0) {
        for (int i = 1; i < argc; i++)
            tl_exec_printf(exec, TL_EXEC_STDOUT, "%s\n", argv[i]);
        tl_exec_finish(exec, 0);
    } else if (strcmp(argv[0], "whoami") == 0) {
        tl_exec_printf(exec, TL_EXEC_STDOUT, "name=%s role=%s address=%s key=%s\n", tech->name,
                       tech->role, tech->address, tech->key_fingerprint);
        tl_exec_finish(exec, 0);
    } else if (strcmp(argv[0], "fail") == 0 && argc == 2 && number(argv[1], &n) == 0) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "fail: exiting with %llu\n", n);
        tl_exec_finish(exec, (int)n);
    } else if (strcmp(argv[0], "sessions") == 0) {
        tl_exec_printf(exec, TL_EXEC_STDOUT, "%u\n", tl_ssh_front_sessions(front));
        tl_exec_finish(exec, 0);
    } else if (strcmp(argv[0], "big") == 0 && argc == 2 && number(argv[1], &n) == 0) {
        struct big *big = calloc(1, sizeof *big);
        if (big == NULL) {
            tl_exec_finish(exec, 1);
            return;
        }
        big->exec = exec;
        big->remaining = n;
        tl_exec_set_callbacks(exec, &big_callbacks, big);
        big_pump(big);
    } else if (strcmp(argv[0], "slow") == 0 && argc == 2 && number(argv[1], &n) == 0) {
        struct slow *slow = calloc(1, sizeof *slow);
        if (slow == NULL) {
            tl_exec_finish(exec, 1);
            return;
        }
        slow->exec = exec;
        slow->ms = (unsigned long)n;
        uv_timer_init(loop, &slow->timer);
        slow->timer.data = slow;
        tl_exec_set_callbacks(exec, &slow_callbacks, slow);
        uv_timer_start(&slow->timer, slow_done, n, 0);
    } else if (strcmp(argv[0], "cat-input") == 0 &&
               (argc == 1 || (argc == 2 && strcmp(argv[1], "hold") == 0) ||
                (argc == 3 && strcmp(argv[1], "trickle") == 0 && number(argv[2], &n) == 0 &&
                 n > 0))) {
        struct cat *cat = calloc(1, sizeof *cat);
        if (cat == NULL) {
            tl_exec_finish(exec, 1);
            return;
        }
        cat->exec = exec;
        cat->loop = loop;
        uv_timer_init(loop, &cat->timer);
        cat->timer.data = cat;
        if (argc == 2) {
            cat->holding = 1;
            cat->next_held = held_cats;
            held_cats = cat;
        } else if (argc == 3) {
            cat->trickle = (size_t)n;
        }
        tl_exec_set_callbacks(exec, &cat_callbacks, cat);
    } else if (strcmp(argv[0], "sink") == 0 && argc == 2 && number(argv[1], &n) == 0 && n > 0) {
        struct sink *sink = calloc(1, sizeof *sink);
        if (sink == NULL || (sink->hash = tl_sha256_new()) == NULL) {
            free(sink);
            tl_exec_finish(exec, 1);
            return;
        }
        sink->exec = exec;
        sink->per_offer = (size_t)n;
        uv_timer_init(loop, &sink->timer);
        sink->timer.data = sink;
        tl_exec_set_callbacks(exec, &sink_callbacks, sink);
    } else if (strcmp(argv[0], "release") == 0 && argc == 1) {
        release_held(exec);
    } else if (strcmp(argv[0], "wait-eof") == 0 && argc == 1) {
        tl_exec_set_callbacks(exec, &wait_eof_callbacks, NULL);
    } else if (strcmp(argv[0], "pty-info") == 0 && argc == 1) {
        const tl_exec_pty_t *pty = tl_exec_pty(exec);
        tl_exec_printf(exec, TL_EXEC_STDOUT, "pty=%d term=%s cols=%u rows=%u\n", pty->requested,
                       pty->term[0] ? pty->term : "-", pty->cols, pty->rows);
        tl_exec_set_callbacks(exec, &pty_info_callbacks, NULL);
    } else if ((strcmp(argv[0], "lines") == 0 || strcmp(argv[0], "raw-lines") == 0) && argc == 2 &&
               number(argv[1], &n) == 0) {
        if (argv[0][0] == 'r')
            tl_exec_set_raw(exec);
        for (unsigned long long i = 1; i <= n; i++)
            tl_exec_printf(exec, TL_EXEC_STDOUT, "line %llu\n", i);
        tl_exec_printf(exec, TL_EXEC_STDERR, "err line\n");
        tl_exec_finish(exec, 0);
    } else if (strcmp(argv[0], "tickets") == 0) {
        static const char first[] = "T-1 \x1b]0;PWNED\x07\x1b[2J\x9b"
                                    "31m\xc2\x9b"
                                    "1m\x7f"
                                    "\xe2\x80\xae ok \xe2\x80";
        static const char second[] = "\xa6 caf\xc3\xa9\r\nT-2 plain\tline\n";
        tl_exec_write(exec, TL_EXEC_STDOUT, first, sizeof first - 1);
        tl_exec_write(exec, TL_EXEC_STDOUT, second, sizeof second - 1);
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: \x1b[31mwarning\x1b[0m\n");
        tl_exec_finish(exec, 0);
    } else {
        tl_exec_printf(exec, TL_EXEC_STDERR, "harness: unknown command or bad arguments: %s\n",
                       argv[0]);
        tl_exec_finish(exec, 2);
    }
}

static void on_signal(uv_signal_t *handle, int signum)
{
    fprintf(stderr, "harness: stopping signal=%d\n", signum);
    tl_ssh_front_stop(front);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

/* The known_hosts key, from the key file by OpenSSL (not by libssh, which serves it). */
static int print_host_key(const char *path)
{
    EVP_PKEY *key = NULL;
    char *line = NULL;
    int rc = tl_key_load(path, &key);
    if (rc == 0)
        rc = tl_key_ssh_public(key, NULL, &line);
    if (rc == 0)
        printf("%s\n", line);
    else
        fprintf(stderr, "harness: cannot read %s: %s\n", path, tl_strerror(rc));
    free(line);
    EVP_PKEY_free(key);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *host_key = NULL, *users_path = NULL;
    tl_ssh_front_config_t config = {0};
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--print-host-key") == 0 && value)
            return print_host_key(value);
        else if (strcmp(argv[i], "--listen") == 0 && value)
            listen = value;
        else if (strcmp(argv[i], "--host-key") == 0 && value)
            host_key = value;
        else if (strcmp(argv[i], "--users") == 0 && value)
            users_path = value;
        else if (strcmp(argv[i], "--auth-timeout-ms") == 0 && value)
            config.auth_timeout_ms = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--keepalive-ms") == 0 && value)
            config.keepalive_ms = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--idle-timeout-ms") == 0 && value)
            config.idle_timeout_ms = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--max-sessions") == 0 && value)
            config.max_sessions = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--preauth-per-address") == 0 && value)
            config.max_preauth_per_address = (uint32_t)strtoul(value, NULL, 10);
        else if (strcmp(argv[i], "--log-level") == 0 && value) {
            enum tl_log_level level;
            if (tl_log_parse_level(value, &level) != 0)
                return 2;
            tl_log_set_level(level);
        } else {
            fprintf(stderr, "usage: ssh_front_harness --listen ADDR:PORT --host-key KEY --users "
                            "FILE [--auth-timeout-ms MS] [--max-sessions N] "
                            "[--preauth-per-address N] [--keepalive-ms MS] "
                            "[--idle-timeout-ms MS] [--log-level L]\n");
            return 2;
        }
        i++;
    }
    if (listen == NULL || host_key == NULL || users_path == NULL) {
        fprintf(stderr, "harness: --listen, --host-key and --users are required\n");
        return 2;
    }
    if (load_users(users_path) != 0) {
        fprintf(stderr, "harness: cannot read %s\n", users_path);
        return 1;
    }
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(i % 251);

    uv_loop_t *loop = uv_default_loop();
    config.listen = listen;
    config.host_key_path = host_key;
    config.dispatch = dispatch;
    config.authorize = authorize;
    config.on_login = on_login;
    config.ctx = loop;
    int rc;
    front = tl_ssh_front_start(loop, &config, &rc);
    if (front == NULL) {
        fprintf(stderr, "harness: cannot start on %s: %s\n", listen, tl_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "harness: listening on %s\n", listen);
    uv_run(loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(loop);
    for (int i = 0; i < user_count; i++)
        ssh_key_free(users[i].key);
    if (rc != 0) {
        fprintf(stderr, "harness: loop not empty at exit: %s\n", uv_strerror(rc));
        return 1;
    }
    fprintf(stderr, "harness: stopped\n");
    return 0;
}
