/*
 * Channel multiplexer: the channel table, SSH-style windows and the
 * half-close state machine (after OpenSSH's channels.c and nchan.c).
 *
 * The table is an array of pointers indexed by local channel id. It is
 * allocated on the first open, grows by doubling up to max_channels, and is
 * freed again (with the scratch buffer's bytes) when the last channel goes,
 * so an idle connection costs only the struct tl_mux itself. Each channel is
 * its own allocation, so growing the table while a callback runs never moves
 * a channel under a caller's feet.
 *
 * Re-entrancy. Every handler does its bookkeeping first and calls the owner's
 * callback last, and never touches the channel after a callback that may have
 * released it. A channel is released only by tl_mux_refuse() on a pending
 * channel, by a tl_mux_open() that failed to send, or after on_close/on_refuse
 * returns; while those two run the channel is marked finished, so calls on it
 * fail cleanly instead of sending.
 */
#include "proto/mux.h"
#include "proto/array.h"
#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

enum channel_state {
    STATE_OPENING, /* we sent OPEN, waiting for CONFIRM or REFUSE */
    STATE_PENDING, /* the peer sent OPEN, waiting for our confirm or refuse */
    STATE_OPEN,
};

/* Half-close flags, as nchan.c keeps the input and output sides apart. */
#define FLAG_EOF_SENT 0x01
#define FLAG_EOF_RECEIVED 0x02
#define FLAG_CLOSE_SENT 0x04
#define FLAG_CLOSE_RECEIVED 0x08
#define FLAG_CLOSE_WANTED 0x10 /* tl_mux_close() while opening: CLOSE on confirm */
#define FLAG_FINISHED 0x20     /* on_close/on_refuse is running; released next */

/* Windows never exceed TL_MUX_MAX_WINDOW (64 MiB), so 32 bits hold them all. */
struct channel {
    uint32_t remote_id;
    uint8_t state;
    uint8_t flags;
    uint32_t send_window;     /* bytes the peer still lets us send */
    uint32_t peer_max_packet; /* capped at TL_MSG_MAX_DATA */
    uint32_t recv_window;     /* bytes we still let the peer send */
    uint32_t unconsumed;      /* delivered to the owner, not yet consumed */
    uint32_t consumed_not_advertised;
    /* Main-stream bytes we sent that the peer has not acknowledged as taken
     * by its terminal (CHANNEL_INPUT_ACK): an ack for more is a violation. */
    uint64_t unacked_input;
    void *data;
};

struct tl_mux {
    tl_mux_config_t cfg;
    const tl_mux_callbacks_t *callbacks;
    void *ctx;
    struct channel **table;
    uint32_t table_len; /* slots allocated */
    uint32_t count;     /* slots in use */
    uint32_t free_hint; /* no free slot below this index */
    uint32_t adjust_at; /* consumed bytes that trigger a WINDOW_ADJUST */
    uint32_t features;  /* HELLO features both sides announced */
    tl_buf_t *scratch;  /* encodes control messages; bytes freed when idle */
};

#define TABLE_MIN_LEN 4
/* A scratch buffer grown past this (a large OPEN) is released after use. */
#define SCRATCH_KEEP 1024
#define DATA_HEAD_LEN (TL_FRAME_HEADER_LEN + TL_MSG_DATA_HEADER)

tl_mux_t *tl_mux_new(const tl_mux_config_t *cfg, const tl_mux_callbacks_t *callbacks, void *ctx)
{
    tl_mux_config_t defaults = {
        .max_channels = TL_MUX_DEFAULT_MAX_CHANNELS,
        .window = TL_MUX_DEFAULT_WINDOW,
        .max_packet = TL_MUX_DEFAULT_MAX_PACKET,
    };
    if (cfg == NULL)
        cfg = &defaults;
    if (callbacks == NULL || callbacks->send == NULL || cfg->max_channels == 0 ||
        cfg->window == 0 || cfg->window > TL_MUX_MAX_WINDOW || cfg->max_packet == 0 ||
        cfg->max_packet > TL_MSG_MAX_DATA)
        return NULL;
    tl_mux_t *mux = calloc(1, sizeof *mux);
    if (mux == NULL)
        return NULL;
    mux->cfg = *cfg;
    mux->callbacks = callbacks;
    mux->ctx = ctx;
    /* Half the window, as OpenSSH does: fewer adjusts, and the peer never stalls. */
    mux->adjust_at = cfg->window / 2 > 0 ? cfg->window / 2 : 1;
    return mux;
}

void tl_mux_free(tl_mux_t *mux)
{
    if (mux == NULL)
        return;
    for (uint32_t i = 0; i < mux->table_len; i++)
        free(mux->table[i]);
    free(mux->table);
    tl_buf_free(mux->scratch);
    free(mux);
}

static struct channel *lookup(const tl_mux_t *mux, uint32_t id)
{
    return id < mux->table_len ? mux->table[id] : NULL;
}

/* Takes the lowest free id, growing the table if every slot is used. */
static int channel_alloc(tl_mux_t *mux, uint32_t *id_out, struct channel **out)
{
    if (mux->count >= mux->cfg.max_channels)
        return TL_ECHANNEL_LIMIT;
    struct channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL)
        return TL_ENOMEM;
    uint32_t id = mux->free_hint;
    while (id < mux->table_len && mux->table[id] != NULL)
        id++;
    if (id == mux->table_len) {
        size_t len = mux->table_len;
        int rc = tl_array_grow(&mux->table, &len, (size_t)id + 1, sizeof *mux->table, TABLE_MIN_LEN,
                               mux->cfg.max_channels);
        if (rc != 0) {
            free(ch);
            return rc;
        }
        mux->table_len = (uint32_t)len;
    }
    mux->table[id] = ch;
    mux->count++;
    mux->free_hint = id + 1;
    *id_out = id;
    *out = ch;
    return 0;
}

static void channel_release(tl_mux_t *mux, uint32_t id)
{
    free(mux->table[id]);
    mux->table[id] = NULL;
    mux->count--;
    if (id < mux->free_hint)
        mux->free_hint = id;
    if (mux->count == 0) {
        /* An idle connection keeps no table and no scratch bytes. */
        free(mux->table);
        mux->table = NULL;
        mux->table_len = 0;
        mux->free_hint = 0;
        if (mux->scratch != NULL)
            tl_buf_release(mux->scratch);
    }
}

/*
 * Encodes a control message into the scratch buffer and sends it. The send
 * callback must not call back into the mux: the head it gets points into the
 * scratch buffer.
 */
static int send_msg(tl_mux_t *mux, const tl_msg_t *msg)
{
    if (mux->scratch == NULL) {
        mux->scratch = tl_buf_new(TL_FRAME_HEADER_LEN + TL_FRAME_MAX_PAYLOAD);
        if (mux->scratch == NULL)
            return TL_ENOMEM;
    }
    tl_buf_reset(mux->scratch);
    int rc = tl_msg_encode(mux->scratch, msg);
    if (rc == 0)
        rc = mux->callbacks->send(mux->ctx, tl_buf_data(mux->scratch), tl_buf_len(mux->scratch),
                                  NULL, 0);
    tl_buf_reset(mux->scratch);
    if (tl_buf_capacity(mux->scratch) > SCRATCH_KEEP)
        tl_buf_release(mux->scratch);
    return rc;
}

static int send_close(tl_mux_t *mux, struct channel *ch, const struct tl_msg_channel_close *status)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_CLOSE};
    if (status != NULL)
        msg.u.close = *status;
    msg.u.close.recipient_channel = ch->remote_id;
    int rc = send_msg(mux, &msg);
    if (rc == 0)
        ch->flags |= FLAG_CLOSE_SENT;
    return rc;
}

/* Refuses an open request the owner never saw; no channel is allocated. */
static int send_refuse(tl_mux_t *mux, uint32_t remote_id, int code)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_REFUSE};
    msg.u.refuse.recipient_channel = remote_id;
    msg.u.refuse.reason = (uint32_t)-code;
    msg.u.refuse.message = tl_str_from(tl_strerror(code));
    return send_msg(mux, &msg);
}

/*
 * Is the peer's id already taken by one of our live channels? The peer names
 * its channels in one space (the ones it opened and the ones it confirmed),
 * and may reuse an id only once that channel is fully closed (§4.1). A
 * channel we are still opening has no peer id yet.
 */
static int remote_in_use(const tl_mux_t *mux, uint32_t remote_id, const struct channel *except)
{
    for (uint32_t i = 0; i < mux->table_len; i++) {
        const struct channel *ch = mux->table[i];
        if (ch != NULL && ch != except && ch->state != STATE_OPENING && ch->remote_id == remote_id)
            return 1;
    }
    return 0;
}

/* Window and packet size the peer announces in OPEN or CONFIRM. */
static int check_peer_limits(uint32_t initial_window, uint32_t max_packet)
{
    if (initial_window > TL_MUX_MAX_WINDOW || max_packet == 0)
        return TL_EPROTO;
    return 0;
}

static uint32_t cap_packet(uint32_t max_packet)
{
    return max_packet > TL_MSG_MAX_DATA ? TL_MSG_MAX_DATA : max_packet;
}

/* May we still send data on this channel? */
static int can_write(const struct channel *ch)
{
    return ch->state == STATE_OPEN &&
           (ch->flags & (FLAG_EOF_SENT | FLAG_CLOSE_SENT | FLAG_FINISHED)) == 0;
}

static int input_open(tl_mux_t *mux, const struct tl_msg_channel_open *open)
{
    int rc = check_peer_limits(open->initial_window, open->max_packet);
    if (rc != 0)
        return rc;
    if (mux->callbacks->on_open == NULL)
        return send_refuse(mux, open->sender_channel, TL_EINVAL);
    /* Two channels answering to one id would mix their bytes: refuse the new
     * one and leave the live one alone. */
    if (remote_in_use(mux, open->sender_channel, NULL))
        return send_refuse(mux, open->sender_channel, TL_ECHANNEL_IN_USE);
    uint32_t id;
    struct channel *ch;
    rc = channel_alloc(mux, &id, &ch);
    if (rc == TL_ECHANNEL_LIMIT)
        return send_refuse(mux, open->sender_channel, TL_ECHANNEL_LIMIT);
    if (rc != 0)
        return rc;
    ch->state = STATE_PENDING;
    ch->remote_id = open->sender_channel;
    ch->send_window = open->initial_window;
    ch->peer_max_packet = cap_packet(open->max_packet);
    ch->recv_window = mux->cfg.window;
    /* The owner may confirm or refuse (releasing ch) from inside the callback. */
    mux->callbacks->on_open(mux->ctx, id, open);
    return 0;
}

static int input_confirm(tl_mux_t *mux, const struct tl_msg_channel_confirm *confirm)
{
    uint32_t id = confirm->recipient_channel;
    struct channel *ch = lookup(mux, id);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state != STATE_OPENING || (ch->flags & FLAG_FINISHED))
        return TL_ECHANNEL_STATE;
    int rc = check_peer_limits(confirm->initial_window, confirm->max_packet);
    if (rc != 0)
        return rc;
    /* A confirm cannot be refused: a peer that gives one id to two channels ends here. */
    if (remote_in_use(mux, confirm->sender_channel, ch))
        return TL_ECHANNEL_IN_USE;
    ch->state = STATE_OPEN;
    ch->remote_id = confirm->sender_channel;
    ch->send_window = confirm->initial_window;
    ch->peer_max_packet = cap_packet(confirm->max_packet);
    if (ch->flags & FLAG_CLOSE_WANTED)
        return send_close(mux, ch, NULL);
    if (mux->callbacks->on_confirm != NULL)
        mux->callbacks->on_confirm(mux->ctx, id);
    return 0;
}

static int input_refuse(tl_mux_t *mux, const struct tl_msg_channel_refuse *refuse)
{
    uint32_t id = refuse->recipient_channel;
    struct channel *ch = lookup(mux, id);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state != STATE_OPENING || (ch->flags & FLAG_FINISHED))
        return TL_ECHANNEL_STATE;
    ch->flags |= FLAG_FINISHED;
    if (mux->callbacks->on_refuse != NULL)
        mux->callbacks->on_refuse(mux->ctx, id, refuse->reason, refuse->message);
    channel_release(mux, id);
    return 0;
}

/* The checks every message on an established channel passes. */
static int lookup_open(tl_mux_t *mux, uint32_t id, struct channel **out)
{
    struct channel *ch = lookup(mux, id);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state != STATE_OPEN || (ch->flags & (FLAG_CLOSE_RECEIVED | FLAG_FINISHED)))
        return TL_ECHANNEL_STATE;
    *out = ch;
    return 0;
}

static int input_data(tl_mux_t *mux, const struct tl_msg_channel_data *data)
{
    uint32_t id = data->recipient_channel;
    struct channel *ch;
    int rc = lookup_open(mux, id, &ch);
    if (rc != 0)
        return rc;
    if (ch->flags & FLAG_EOF_RECEIVED)
        return TL_ECHANNEL_STATE;
    size_t len = data->data.len;
    if (len > mux->cfg.max_packet)
        return TL_EPROTO;
    if (len > ch->recv_window)
        return TL_EWINDOW;
    ch->recv_window -= (uint32_t)len;
    /* After our CLOSE the owner wants nothing more; the window still counts. */
    if ((ch->flags & FLAG_CLOSE_SENT) || len == 0)
        return 0;
    ch->unconsumed += (uint32_t)len;
    if (mux->callbacks->on_data != NULL)
        mux->callbacks->on_data(mux->ctx, id, data->stream, data->data.ptr, len);
    return 0;
}

static int input_window_adjust(tl_mux_t *mux, const struct tl_msg_window_adjust *adjust)
{
    uint32_t id = adjust->recipient_channel;
    struct channel *ch;
    int rc = lookup_open(mux, id, &ch);
    if (rc != 0)
        return rc;
    if ((uint64_t)ch->send_window + adjust->bytes > TL_MUX_MAX_WINDOW)
        return TL_EWINDOW;
    ch->send_window += adjust->bytes;
    if (adjust->bytes > 0 && can_write(ch) && mux->callbacks->on_writable != NULL)
        mux->callbacks->on_writable(mux->ctx, id);
    return 0;
}

static int input_eof(tl_mux_t *mux, const struct tl_msg_channel_eof *eof)
{
    uint32_t id = eof->recipient_channel;
    struct channel *ch;
    int rc = lookup_open(mux, id, &ch);
    if (rc != 0)
        return rc;
    if (ch->flags & FLAG_EOF_RECEIVED)
        return TL_ECHANNEL_STATE;
    ch->flags |= FLAG_EOF_RECEIVED;
    if (!(ch->flags & FLAG_CLOSE_SENT) && mux->callbacks->on_eof != NULL)
        mux->callbacks->on_eof(mux->ctx, id);
    return 0;
}

static int input_close(tl_mux_t *mux, const struct tl_msg_channel_close *close)
{
    uint32_t id = close->recipient_channel;
    struct channel *ch;
    int rc = lookup_open(mux, id, &ch);
    if (rc != 0)
        return rc;
    ch->flags |= FLAG_CLOSE_RECEIVED;
    /* Answer a CLOSE we did not start, as nchan.c does; the peer frees its
     * end on our CLOSE. A failed send still ends the channel for the owner. */
    if (!(ch->flags & FLAG_CLOSE_SENT))
        rc = send_close(mux, ch, NULL);
    ch->flags |= FLAG_FINISHED;
    if (mux->callbacks->on_close != NULL)
        mux->callbacks->on_close(mux->ctx, id, close);
    channel_release(mux, id);
    return rc;
}

static int input_input_ack(tl_mux_t *mux, const struct tl_msg_input_ack *ack)
{
    if (!(mux->features & TL_FEATURE_INPUT_ACK))
        return TL_EPROTO; /* not agreed in the HELLOs */
    uint32_t id = ack->recipient_channel;
    struct channel *ch;
    int rc = lookup_open(mux, id, &ch);
    if (rc != 0)
        return rc;
    if (ack->bytes == 0 || ack->bytes > ch->unacked_input)
        return TL_EPROTO;
    ch->unacked_input -= ack->bytes;
    /* Still told after our CLOSE: the owner may be settling a recording. */
    if (mux->callbacks->on_input_ack != NULL)
        mux->callbacks->on_input_ack(mux->ctx, id, ack->bytes,
                                     (ack->flags & TL_INPUT_ACK_HIDDEN) != 0);
    return 0;
}

int tl_mux_input(tl_mux_t *mux, const tl_msg_t *msg)
{
    switch (msg->type) {
    case TL_MSG_CHANNEL_OPEN:
        return input_open(mux, &msg->u.open);
    case TL_MSG_CHANNEL_CONFIRM:
        return input_confirm(mux, &msg->u.confirm);
    case TL_MSG_CHANNEL_REFUSE:
        return input_refuse(mux, &msg->u.refuse);
    case TL_MSG_CHANNEL_DATA:
        return input_data(mux, &msg->u.data);
    case TL_MSG_CHANNEL_WINDOW_ADJUST:
        return input_window_adjust(mux, &msg->u.window_adjust);
    case TL_MSG_CHANNEL_EOF:
        return input_eof(mux, &msg->u.eof);
    case TL_MSG_CHANNEL_CLOSE:
        return input_close(mux, &msg->u.close);
    case TL_MSG_CHANNEL_INPUT_ACK:
        return input_input_ack(mux, &msg->u.input_ack);
    default:
        return TL_EINVAL;
    }
}

int tl_mux_open(tl_mux_t *mux, const char *channel_type, json_t *params, uint32_t *channel)
{
    if (channel_type == NULL || channel == NULL || (params != NULL && !json_is_object(params)))
        return TL_EINVAL;
    uint32_t id;
    struct channel *ch;
    int rc = channel_alloc(mux, &id, &ch);
    if (rc != 0)
        return rc;
    ch->state = STATE_OPENING;
    ch->recv_window = mux->cfg.window;
    json_t *empty = params == NULL ? json_object() : NULL;
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_OPEN};
    msg.u.open.sender_channel = id;
    msg.u.open.initial_window = mux->cfg.window;
    msg.u.open.max_packet = mux->cfg.max_packet;
    msg.u.open.channel_type = tl_str_from(channel_type);
    msg.u.open.params = params != NULL ? params : empty;
    if (msg.u.open.params == NULL)
        rc = TL_ENOMEM;
    else
        rc = send_msg(mux, &msg);
    json_decref(empty);
    if (rc != 0) {
        channel_release(mux, id);
        return rc;
    }
    *channel = id;
    return 0;
}

int tl_mux_confirm(tl_mux_t *mux, uint32_t channel)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state != STATE_PENDING)
        return TL_ECHANNEL_STATE;
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_CONFIRM};
    msg.u.confirm.recipient_channel = ch->remote_id;
    msg.u.confirm.sender_channel = channel;
    msg.u.confirm.initial_window = mux->cfg.window;
    msg.u.confirm.max_packet = mux->cfg.max_packet;
    int rc = send_msg(mux, &msg);
    if (rc == 0)
        ch->state = STATE_OPEN;
    return rc;
}

int tl_mux_refuse(tl_mux_t *mux, uint32_t channel, uint32_t reason, const char *message)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state != STATE_PENDING)
        return TL_ECHANNEL_STATE;
    tl_str_t text = tl_str_from(message != NULL ? message : "");
    /* Too long a message is cut, not an error: the refusal must still go out.
     * Cut on a UTF-8 character boundary. */
    if (text.len > TL_MSG_MAX_TEXT) {
        text.len = TL_MSG_MAX_TEXT;
        while (text.len > 0 && (text.ptr[text.len] & 0xc0) == 0x80)
            text.len--;
    }
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_REFUSE};
    msg.u.refuse.recipient_channel = ch->remote_id;
    msg.u.refuse.reason = reason;
    msg.u.refuse.message = text;
    int rc = send_msg(mux, &msg);
    channel_release(mux, channel);
    return rc;
}

int tl_mux_write(tl_mux_t *mux, uint32_t channel, uint8_t stream, const void *data, size_t len,
                 size_t *written)
{
    size_t done = 0;
    int rc = 0;
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL) {
        rc = TL_ECHANNEL;
        goto out;
    }
    if (stream > TL_STREAM_STDERR) {
        rc = TL_EINVAL;
        goto out;
    }
    if (!can_write(ch)) {
        rc = TL_ECHANNEL_STATE;
        goto out;
    }
    const uint8_t *bytes = data;
    while (done < len && ch->send_window > 0) {
        size_t chunk = len - done;
        if (chunk > ch->send_window)
            chunk = ch->send_window;
        if (chunk > ch->peer_max_packet)
            chunk = ch->peer_max_packet;
        /* Frame header and data header on the stack; the data itself is not copied. */
        uint8_t head[DATA_HEAD_LEN];
        tl_store_u32(head, (uint32_t)(2 + TL_MSG_DATA_HEADER + chunk));
        head[4] = TL_FRAME_VERSION;
        head[5] = TL_MSG_CHANNEL_DATA;
        tl_store_u32(head + 6, ch->remote_id);
        head[10] = stream;
        rc = mux->callbacks->send(mux->ctx, head, sizeof head, bytes + done, chunk);
        if (rc != 0)
            break;
        ch->send_window -= (uint32_t)chunk;
        if (stream == TL_STREAM_MAIN)
            ch->unacked_input += chunk;
        done += chunk;
    }
out:
    if (written != NULL)
        *written = done;
    return rc;
}

size_t tl_mux_send_window(const tl_mux_t *mux, uint32_t channel)
{
    const struct channel *ch = lookup(mux, channel);
    return ch != NULL && can_write(ch) ? ch->send_window : 0;
}

int tl_mux_consumed(tl_mux_t *mux, uint32_t channel, size_t n)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (n > ch->unconsumed)
        return TL_EINVAL;
    ch->unconsumed -= (uint32_t)n;
    ch->consumed_not_advertised += (uint32_t)n;
    /* No adjust once the peer can send no more: after its EOF or either CLOSE. */
    if (ch->consumed_not_advertised < mux->adjust_at ||
        (ch->flags & (FLAG_EOF_RECEIVED | FLAG_CLOSE_SENT | FLAG_CLOSE_RECEIVED | FLAG_FINISHED)))
        return 0;
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_WINDOW_ADJUST};
    msg.u.window_adjust.recipient_channel = ch->remote_id;
    msg.u.window_adjust.bytes = ch->consumed_not_advertised;
    int rc = send_msg(mux, &msg);
    if (rc == 0) {
        ch->recv_window += ch->consumed_not_advertised;
        ch->consumed_not_advertised = 0;
    }
    return rc;
}

size_t tl_mux_unconsumed(const tl_mux_t *mux, uint32_t channel)
{
    const struct channel *ch = lookup(mux, channel);
    return ch != NULL ? ch->unconsumed : 0;
}

int tl_mux_eof(tl_mux_t *mux, uint32_t channel)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (!can_write(ch))
        return TL_ECHANNEL_STATE;
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_EOF};
    msg.u.eof.recipient_channel = ch->remote_id;
    int rc = send_msg(mux, &msg);
    if (rc == 0)
        ch->flags |= FLAG_EOF_SENT;
    return rc;
}

int tl_mux_close(tl_mux_t *mux, uint32_t channel, const struct tl_msg_channel_close *status)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->flags & (FLAG_CLOSE_SENT | FLAG_CLOSE_WANTED | FLAG_FINISHED))
        return TL_ECHANNEL_STATE;
    if (ch->state == STATE_PENDING)
        return TL_ECHANNEL_STATE; /* tl_mux_refuse() is the way to say no */
    if (ch->state == STATE_OPENING) {
        /* The peer's id is not known yet: CLOSE goes out when CONFIRM comes. */
        ch->flags |= FLAG_CLOSE_WANTED;
        return 0;
    }
    return send_close(mux, ch, status);
}

int tl_mux_input_ack(tl_mux_t *mux, uint32_t channel, uint32_t bytes, int hidden)
{
    struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (!(mux->features & TL_FEATURE_INPUT_ACK))
        return TL_EPROTO;
    if (bytes == 0)
        return TL_EINVAL;
    if (ch->state != STATE_OPEN || (ch->flags & (FLAG_CLOSE_SENT | FLAG_FINISHED)))
        return TL_ECHANNEL_STATE;
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_INPUT_ACK};
    msg.u.input_ack.recipient_channel = ch->remote_id;
    msg.u.input_ack.bytes = bytes;
    msg.u.input_ack.flags = hidden ? TL_INPUT_ACK_HIDDEN : 0;
    return send_msg(mux, &msg);
}

void tl_mux_set_features(tl_mux_t *mux, uint32_t features)
{
    mux->features = features;
}

uint32_t tl_mux_features(const tl_mux_t *mux)
{
    return mux->features;
}

void tl_mux_set_data(tl_mux_t *mux, uint32_t channel, void *data)
{
    struct channel *ch = lookup(mux, channel);
    if (ch != NULL)
        ch->data = data;
}

void *tl_mux_get_data(const tl_mux_t *mux, uint32_t channel)
{
    const struct channel *ch = lookup(mux, channel);
    return ch != NULL ? ch->data : NULL;
}

int tl_mux_peer_channel(const tl_mux_t *mux, uint32_t channel, uint32_t *peer_channel)
{
    const struct channel *ch = lookup(mux, channel);
    if (ch == NULL)
        return TL_ECHANNEL;
    if (ch->state == STATE_OPENING)
        return TL_ECHANNEL_STATE;
    *peer_channel = ch->remote_id;
    return 0;
}

uint32_t tl_mux_channel_count(const tl_mux_t *mux)
{
    return mux->count;
}

size_t tl_mux_memory(const tl_mux_t *mux)
{
    size_t bytes = sizeof *mux + (size_t)mux->table_len * sizeof *mux->table +
                   (size_t)mux->count * sizeof(struct channel);
    if (mux->scratch != NULL)
        bytes += tl_buf_capacity(mux->scratch);
    return bytes;
}
