/*
 * Channel multiplexer with credit-based flow control, as SSH windows work.
 *
 * Pure bookkeeping: no I/O and no loop. Frames the peer sent are fed in with
 * tl_mux_input(); frames to send leave through the send callback; events
 * reach the owner through the other callbacks. docs/protocol.md §4 is the
 * specification.
 *
 * Flow control. Each direction of each channel has a window: the number of
 * data bytes the receiver is still willing to take. A sender never sends more
 * than the window it was granted (tl_mux_write() takes only what fits and
 * reports how much). The receiver grants more with WINDOW_ADJUST only after
 * its owner reports bytes as consumed (tl_mux_consumed()), so a reader that
 * stops holds back only its own channel, and the bytes buffered for a channel
 * never exceed the window its receiver granted. A peer that sends past a
 * window is a protocol violation that ends the connection (TL_EWINDOW).
 *
 * Lifetime. A channel id is the local one. A channel is released after the
 * on_close or on_refuse callback for it returns; after that the id may be
 * reused. Closing works as in SSH: each side sends CLOSE once; the channel is
 * gone when both have. Data that arrives after our CLOSE is still counted
 * against the window, then dropped.
 *
 * Re-entrancy. Callbacks other than send may call back into the mux (write
 * from on_writable, consumed or close from on_data, confirm or refuse from
 * on_open, open from on_close...). The send callback must not: the head it
 * gets may point into the mux's scratch buffer. tl_mux_free() must not be
 * called from inside any callback; free the mux after the mux call returns.
 */
#ifndef TL_MUX_H
#define TL_MUX_H

#include "proto/msg.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_mux tl_mux_t;

typedef struct tl_mux_config {
    uint32_t max_channels; /* channels open at once on this connection */
    uint32_t window;       /* receive window granted to the peer per channel */
    uint32_t max_packet;   /* largest CHANNEL_DATA payload we accept */
} tl_mux_config_t;

#define TL_MUX_DEFAULT_MAX_CHANNELS 64
#define TL_MUX_DEFAULT_WINDOW (2u * 1024u * 1024u)
#define TL_MUX_DEFAULT_MAX_PACKET (64u * 1024u)
/* Largest window either side may grant or accumulate. */
#define TL_MUX_MAX_WINDOW (64u * 1024u * 1024u)

typedef struct tl_mux_callbacks {
    /*
     * Sends one encoded frame: head then body (body may be empty). Required.
     * A non-zero return is handed back to the caller of the mux function.
     */
    int (*send)(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body,
                size_t body_len);
    /* The peer asks to open a channel; answer now or later with confirm/refuse.
     * Without this callback every request is refused (reason -TL_EINVAL). */
    void (*on_open)(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request);
    /* A channel we opened was confirmed; data may flow. */
    void (*on_confirm)(void *ctx, uint32_t channel);
    /* A channel we opened was refused; it is released when this returns. */
    void (*on_refuse)(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message);
    /* Data arrived; report it consumed with tl_mux_consumed() once it is handled. */
    void (*on_data)(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data, size_t len);
    /*
     * The peer granted more window: tl_mux_write() may take bytes again.
     * Fires for every WINDOW_ADJUST of more than 0 bytes while we may still
     * write on the channel (confirmed, no EOF or CLOSE sent by us), whether or
     * not the window was 0 before.
     */
    void (*on_writable)(void *ctx, uint32_t channel);
    /* The peer will send no more data on this channel (not fired after our CLOSE). */
    void (*on_eof)(void *ctx, uint32_t channel);
    /* Both sides have closed; the channel is released when this returns. */
    void (*on_close)(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close);
    /*
     * The peer's terminal took the next `bytes` of the main-stream data we
     * sent on this channel, with its echo off (hidden) or not (CHANNEL_INPUT_ACK,
     * docs/protocol.md §4.7). Fires after our CLOSE too, until the peer's.
     */
    void (*on_input_ack)(void *ctx, uint32_t channel, uint32_t bytes, int hidden);
} tl_mux_callbacks_t;

/*
 * cfg may be NULL for the defaults. callbacks must outlive the mux. NULL when
 * out of memory or for a bad config: no send callback, max_channels 0, window
 * 0 or over TL_MUX_MAX_WINDOW, max_packet 0 or over TL_MSG_MAX_DATA.
 */
tl_mux_t *tl_mux_new(const tl_mux_config_t *cfg, const tl_mux_callbacks_t *callbacks, void *ctx);
/* Frees the mux and forgets every channel without callbacks. NULL is a no-op. */
void tl_mux_free(tl_mux_t *mux);

/*
 * Handles one channel message from the peer (types 32-63). Errors end the
 * connection: TL_ECHANNEL (unknown channel id), TL_EWINDOW (data past the
 * window, or a window grown past TL_MUX_MAX_WINDOW), TL_ECHANNEL_STATE (data
 * after EOF, data before confirm, a second EOF...), TL_EPROTO (data larger
 * than our max packet, bad open parameters), TL_EINVAL (not a channel message).
 * A message for a channel after the peer's CLOSE is TL_ECHANNEL: the id was
 * released. An open request past max_channels is refused to the peer with
 * reason -TL_ECHANNEL_LIMIT, not an error; one whose sender_channel names a
 * live channel is refused with -TL_ECHANNEL_IN_USE and the live channel
 * stays as it was. A CONFIRM that gives such an id to a second channel is
 * TL_ECHANNEL_IN_USE. A CHANNEL_INPUT_ACK without TL_FEATURE_INPUT_ACK, or
 * for more bytes than we sent, is TL_EPROTO. The request handed to on_open
 * (params included) is valid only during the callback.
 */
int tl_mux_input(tl_mux_t *mux, const tl_msg_t *msg);

/*
 * Opens a channel; it may carry data once on_confirm fires. params may be NULL
 * (sent as {}); it stays the caller's. TL_ECHANNEL_LIMIT at max_channels.
 */
int tl_mux_open(tl_mux_t *mux, const char *channel_type, json_t *params, uint32_t *channel);
int tl_mux_confirm(tl_mux_t *mux, uint32_t channel);
/* Refuses an incoming open request; the channel is released at once, even if
 * the send fails. A message over TL_MSG_MAX_TEXT bytes is cut short. */
int tl_mux_refuse(tl_mux_t *mux, uint32_t channel, uint32_t reason, const char *message);

/*
 * Sends up to len bytes, split into frames of at most the peer's max packet,
 * never past the peer's window. *written gets the bytes taken (possibly 0);
 * wait for on_writable before offering the rest. TL_ECHANNEL_STATE before the
 * channel is confirmed or after our EOF or CLOSE; TL_EINVAL for an unknown
 * stream.
 */
int tl_mux_write(tl_mux_t *mux, uint32_t channel, uint8_t stream, const void *data, size_t len,
                 size_t *written);
/* Bytes tl_mux_write() would take now. */
size_t tl_mux_send_window(const tl_mux_t *mux, uint32_t channel);
/*
 * The owner has handled n received bytes; sends WINDOW_ADJUST once half the
 * window is consumed and not yet re-granted (none after the peer's EOF or
 * either CLOSE). TL_EINVAL if n exceeds tl_mux_unconsumed().
 */
int tl_mux_consumed(tl_mux_t *mux, uint32_t channel, size_t n);
/* Bytes received on the channel and not yet reported consumed. */
size_t tl_mux_unconsumed(const tl_mux_t *mux, uint32_t channel);

/* Half-close: we send no more data. */
int tl_mux_eof(tl_mux_t *mux, uint32_t channel);
/*
 * Sends CLOSE; status may be NULL (no exit status). The channel is released
 * when the peer's CLOSE arrives (on_close). On a channel we opened that is not
 * confirmed yet, CLOSE (without status) goes out when the confirm arrives,
 * and on_confirm is not called; the channel ends in on_close or on_refuse.
 * TL_ECHANNEL_STATE after our CLOSE, and for an open request not yet answered
 * (use tl_mux_refuse).
 */
int tl_mux_close(tl_mux_t *mux, uint32_t channel, const struct tl_msg_channel_close *status);

/*
 * Tells the peer its terminal took the next `bytes` (>= 1) of the main-stream
 * data received on the channel, hidden (echo off) or not. Only once both
 * HELLOs carried TL_FEATURE_INPUT_ACK (TL_EPROTO otherwise), and only before
 * our CLOSE (TL_ECHANNEL_STATE).
 */
int tl_mux_input_ack(tl_mux_t *mux, uint32_t channel, uint32_t bytes, int hidden);

/* The features both sides announced in HELLO (proto/peer.c sets them). */
void tl_mux_set_features(tl_mux_t *mux, uint32_t features);
uint32_t tl_mux_features(const tl_mux_t *mux);

void tl_mux_set_data(tl_mux_t *mux, uint32_t channel, void *data);
void *tl_mux_get_data(const tl_mux_t *mux, uint32_t channel);
/*
 * The peer's own id for a channel (the sender_channel of its OPEN or
 * CONFIRM), for control messages that name the channel as the peer knows it
 * (docs/protocol.md §7.7 session.resize). TL_ECHANNEL for no such channel,
 * TL_ECHANNEL_STATE while a channel we opened is not confirmed yet.
 */
int tl_mux_peer_channel(const tl_mux_t *mux, uint32_t channel, uint32_t *peer_channel);

/*
 * Channels currently allocated, and bytes of memory the mux holds (itself,
 * its table, channels and scratch bytes). With no channels the table and
 * scratch bytes are freed, so an idle connection costs only the mux.
 */
uint32_t tl_mux_channel_count(const tl_mux_t *mux);
size_t tl_mux_memory(const tl_mux_t *mux);

#endif
