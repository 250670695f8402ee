/*
 * Messages of the agent <-> relay protocol, carried one per frame.
 *
 * Type numbers come in ranges (docs/protocol.md §3): 1-15 connection,
 * 16-31 enrollment, 32-63 channels, 64-79 control. Decoding is strict: every
 * field is bounds-checked, string lengths have per-field limits, trailing
 * bytes are an error, and JSON must parse to an object. Decoded strings are
 * views into the frame payload (not NUL-terminated); decoded JSON is owned by
 * the message and released by tl_msg_clear().
 */
#ifndef TL_MSG_H
#define TL_MSG_H

#include "proto/buf.h"
#include "proto/frame.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol versions this build speaks, negotiated by HELLO. */
#define TL_PROTO_VERSION_MIN 1
#define TL_PROTO_VERSION_MAX 1

/*
 * HELLO feature bits (docs/protocol.md §3.1). A feature is in use on a
 * connection only when both HELLOs carry its bit.
 */
/* CHANNEL_INPUT_ACK: the side running a terminal says which input it hid. */
#define TL_FEATURE_INPUT_ACK 0x00000001u
/* Every feature this build implements; sent in each HELLO. */
#define TL_FEATURES_SUPPORTED TL_FEATURE_INPUT_ACK

enum tl_msg_type {
    TL_MSG_HELLO = 1,
    TL_MSG_PING = 2,
    TL_MSG_PONG = 3,
    TL_MSG_GOODBYE = 4,

    TL_MSG_ENROLL = 16,
    TL_MSG_ENROLL_RESULT = 17,

    TL_MSG_CHANNEL_OPEN = 32,
    TL_MSG_CHANNEL_CONFIRM = 33,
    TL_MSG_CHANNEL_REFUSE = 34,
    TL_MSG_CHANNEL_DATA = 35,
    TL_MSG_CHANNEL_WINDOW_ADJUST = 36,
    TL_MSG_CHANNEL_EOF = 37,
    TL_MSG_CHANNEL_CLOSE = 38,
    TL_MSG_CHANNEL_INPUT_ACK = 39, /* only with TL_FEATURE_INPUT_ACK */

    TL_MSG_CONTROL = 64,
};

/* Field limits (bytes). */
#define TL_MSG_MAX_NAME 64   /* software, channel type, signal name */
#define TL_MSG_MAX_HOST 255  /* hostname, OS description */
#define TL_MSG_MAX_CODE 128  /* enrollment code */
#define TL_MSG_MAX_ID 64     /* device id */
#define TL_MSG_MAX_TEXT 1024 /* reasons and messages */

/* Bytes of a CHANNEL_DATA payload before the data itself. */
#define TL_MSG_DATA_HEADER 5
/* Largest data a single CHANNEL_DATA frame can carry. */
#define TL_MSG_MAX_DATA (TL_FRAME_MAX_PAYLOAD - TL_MSG_DATA_HEADER)

/* Channel data streams. */
#define TL_STREAM_MAIN 0
#define TL_STREAM_STDERR 1

/* CHANNEL_CLOSE flags. */
#define TL_CLOSE_HAS_EXIT_STATUS 0x01
#define TL_CLOSE_HAS_EXIT_SIGNAL 0x02

/* CHANNEL_INPUT_ACK flags. */
#define TL_INPUT_ACK_HIDDEN 0x01 /* the terminal took the bytes with echo off */

typedef struct tl_str {
    const uint8_t *ptr;
    size_t len;
} tl_str_t;

#define TL_STR(literal) ((tl_str_t){(const uint8_t *)(literal), sizeof(literal) - 1})
tl_str_t tl_str_from(const char *text);
/* 1 if the view holds exactly text. */
int tl_str_eq(tl_str_t view, const char *text);

struct tl_msg_hello {
    uint16_t min_version;
    uint16_t max_version;
    uint32_t features; /* bit flags; unknown bits are ignored */
    tl_str_t software;
};

struct tl_msg_ping {
    uint64_t nonce;
};

struct tl_msg_goodbye {
    uint32_t code; /* 0: normal close; else the positive value of a TL_E* code */
    tl_str_t reason;
};

struct tl_msg_enroll {
    tl_str_t code;
    tl_str_t hostname;
    tl_str_t os;
};

struct tl_msg_enroll_result {
    uint32_t status; /* 0: enrolled; else the positive value of a TL_E* code */
    tl_str_t device_id;
    tl_str_t message;
};

struct tl_msg_channel_open {
    uint32_t sender_channel;
    uint32_t initial_window;
    uint32_t max_packet;
    tl_str_t channel_type;
    json_t *params; /* a JSON object; owned by the message when decoded */
};

struct tl_msg_channel_confirm {
    uint32_t recipient_channel;
    uint32_t sender_channel;
    uint32_t initial_window;
    uint32_t max_packet;
};

struct tl_msg_channel_refuse {
    uint32_t recipient_channel;
    uint32_t reason;
    tl_str_t message;
};

struct tl_msg_channel_data {
    uint32_t recipient_channel;
    uint8_t stream;
    tl_str_t data;
};

struct tl_msg_window_adjust {
    uint32_t recipient_channel;
    uint32_t bytes;
};

struct tl_msg_channel_eof {
    uint32_t recipient_channel;
};

struct tl_msg_channel_close {
    uint32_t recipient_channel;
    uint8_t flags;
    int32_t exit_status;
    tl_str_t exit_signal;
};

/* The receiver of a terminal's input says how many more bytes the terminal took. */
struct tl_msg_input_ack {
    uint32_t recipient_channel;
    uint32_t bytes; /* >= 1 */
    uint8_t flags;  /* TL_INPUT_ACK_HIDDEN; other bits must be 0 */
};

struct tl_msg_control {
    uint32_t request_id; /* 0 for a notification that wants no answer */
    json_t *body;        /* a JSON object; owned by the message when decoded */
};

typedef struct tl_msg {
    uint8_t type;
    union {
        struct tl_msg_hello hello;
        struct tl_msg_ping ping; /* PING and PONG */
        struct tl_msg_goodbye goodbye;
        struct tl_msg_enroll enroll;
        struct tl_msg_enroll_result enroll_result;
        struct tl_msg_channel_open open;
        struct tl_msg_channel_confirm confirm;
        struct tl_msg_channel_refuse refuse;
        struct tl_msg_channel_data data;
        struct tl_msg_window_adjust window_adjust;
        struct tl_msg_channel_eof eof;
        struct tl_msg_channel_close close;
        struct tl_msg_input_ack input_ack;
        struct tl_msg_control control;
    } u;
} tl_msg_t;

/*
 * Parses a frame into a message. Errors: TL_EMSG_TYPE (unknown type),
 * TL_EMSG_MALFORMED (short, over-long or out-of-range field, trailing bytes),
 * TL_EMSG_JSON (JSON that does not parse to an object), TL_ENOMEM. On error
 * *out holds nothing that needs clearing.
 */
int tl_msg_decode(const tl_frame_t *frame, tl_msg_t *out);

/* Releases what a decoded message owns (its JSON). Safe on any message. */
void tl_msg_clear(tl_msg_t *msg);

/* Appends msg as one frame to out. Field limits are checked as on decode. */
int tl_msg_encode(tl_buf_t *out, const tl_msg_t *msg);

/* Fast path for bulk data: one CHANNEL_DATA frame without building a tl_msg_t. */
int tl_msg_encode_data(tl_buf_t *out, uint32_t recipient_channel, uint8_t stream, const void *data,
                       size_t len);

/* Name of a message type for logs ("CHANNEL_DATA"), "UNKNOWN" otherwise. */
const char *tl_msg_type_name(uint8_t type);

/*
 * Version negotiation: both sides send HELLO first; each picks the highest
 * version both support. TL_EVERSION if the ranges do not overlap.
 */
int tl_msg_negotiate(const struct tl_msg_hello *local, const struct tl_msg_hello *peer,
                     uint16_t *chosen);

#endif
