#include "proto/frame.h"
#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

/* docs/protocol.md §2. */

/* A partial-frame buffer larger than this is freed once its frame is handed out. */
#define TL_FRAME_KEEP_BYTES 4096

struct tl_frame_decoder {
    tl_buf_t *partial;  /* bytes of one incomplete frame, header included */
    size_t max_payload; /* largest payload accepted */
    size_t need;        /* total bytes of the frame being assembled, 0 if unknown yet */
    int error;          /* sticky error, 0 while healthy */
    int handed_out;     /* the previous call returned a frame from partial */
};

int tl_frame_encode(tl_buf_t *out, uint8_t type, const void *payload, size_t payload_len)
{
    if (payload_len > TL_FRAME_MAX_PAYLOAD)
        return TL_EFRAME_SIZE;
    uint8_t *dst;
    int rc = tl_buf_reserve(out, TL_FRAME_HEADER_LEN + payload_len, &dst);
    if (rc != 0)
        return rc;
    tl_store_u32(dst, (uint32_t)(payload_len + 2));
    dst[4] = TL_FRAME_VERSION;
    dst[5] = type;
    if (payload_len > 0)
        memcpy(dst + TL_FRAME_HEADER_LEN, payload, payload_len);
    return 0;
}

int tl_frame_begin(tl_buf_t *out, uint8_t type, size_t *mark)
{
    uint8_t *dst;
    size_t start = tl_buf_len(out);
    int rc = tl_buf_reserve(out, TL_FRAME_HEADER_LEN, &dst);
    if (rc != 0)
        return rc;
    tl_store_u32(dst, 0);
    dst[4] = TL_FRAME_VERSION;
    dst[5] = type;
    *mark = start;
    return 0;
}

void tl_frame_abort(tl_buf_t *out, size_t mark)
{
    size_t len = tl_buf_len(out);
    if (mark <= len)
        tl_buf_unreserve(out, len - mark);
}

int tl_frame_end(tl_buf_t *out, size_t mark)
{
    size_t len = tl_buf_len(out);
    if (mark > len || len - mark < TL_FRAME_HEADER_LEN)
        return TL_EINVAL;
    size_t payload_len = len - mark - TL_FRAME_HEADER_LEN;
    if (payload_len > TL_FRAME_MAX_PAYLOAD) {
        tl_frame_abort(out, mark);
        return TL_EFRAME_SIZE;
    }
    return tl_buf_poke_u32(out, mark, (uint32_t)(payload_len + 2));
}

tl_frame_decoder_t *tl_frame_decoder_new(size_t max_payload)
{
    if (max_payload > TL_FRAME_MAX_PAYLOAD)
        max_payload = TL_FRAME_MAX_PAYLOAD;
    tl_frame_decoder_t *dec = calloc(1, sizeof *dec);
    if (dec == NULL)
        return NULL;
    dec->partial = tl_buf_new(TL_FRAME_HEADER_LEN + max_payload);
    if (dec->partial == NULL) {
        free(dec);
        return NULL;
    }
    dec->max_payload = max_payload;
    return dec;
}

void tl_frame_decoder_free(tl_frame_decoder_t *dec)
{
    if (dec == NULL)
        return;
    tl_buf_free(dec->partial);
    free(dec);
}

/* Checks a complete header; returns the frame's total size or an error. */
static long check_header(const tl_frame_decoder_t *dec, const uint8_t *header)
{
    uint32_t length = tl_load_u32(header);
    if (length < 2 || length - 2 > dec->max_payload)
        return TL_EFRAME_SIZE;
    if (header[4] != TL_FRAME_VERSION)
        return TL_EFRAME_VERSION;
    return (long)length + 4;
}

static void fill_frame(tl_frame_t *frame, const uint8_t *bytes, size_t total)
{
    frame->version = bytes[4];
    frame->type = bytes[5];
    frame->payload = bytes + TL_FRAME_HEADER_LEN;
    frame->payload_len = total - TL_FRAME_HEADER_LEN;
}

/* Moves up to want bytes of input into the partial buffer. */
static int take(tl_frame_decoder_t *dec, const uint8_t **data, size_t *len, size_t want)
{
    size_t n = want < *len ? want : *len;
    int rc = tl_buf_put(dec->partial, *data, n);
    if (rc != 0)
        return rc;
    *data += n;
    *len -= n;
    return 0;
}

int tl_frame_decoder_next(tl_frame_decoder_t *dec, const uint8_t **data, size_t *len,
                          tl_frame_t *frame)
{
    if (dec->error != 0)
        return dec->error;

    /* The frame handed out last time lived in partial; it is no longer needed. */
    if (dec->handed_out) {
        dec->handed_out = 0;
        if (tl_buf_capacity(dec->partial) > TL_FRAME_KEEP_BYTES)
            tl_buf_release(dec->partial);
        else
            tl_buf_reset(dec->partial);
    }

    long total;
    size_t held = tl_buf_len(dec->partial);
    if (held == 0) {
        /* Fast path: a whole frame inside the caller's input is used in place. */
        if (*len < TL_FRAME_HEADER_LEN) {
            if (*len == 0)
                return 0;
            return take(dec, data, len, *len) == 0 ? 0 : (dec->error = TL_ENOMEM);
        }
        total = check_header(dec, *data);
        if (total < 0)
            return dec->error = (int)total;
        if ((size_t)total <= *len) {
            fill_frame(frame, *data, (size_t)total);
            *data += total;
            *len -= (size_t)total;
            return 1;
        }
        dec->need = (size_t)total;
    }

    /* Slow path: assemble a frame split across reads. */
    if (tl_buf_len(dec->partial) < TL_FRAME_HEADER_LEN) {
        int rc = take(dec, data, len, TL_FRAME_HEADER_LEN - tl_buf_len(dec->partial));
        if (rc != 0)
            return dec->error = rc;
        if (tl_buf_len(dec->partial) < TL_FRAME_HEADER_LEN)
            return 0;
        total = check_header(dec, tl_buf_data(dec->partial));
        if (total < 0)
            return dec->error = (int)total;
        dec->need = (size_t)total;
    }
    int rc = take(dec, data, len, dec->need - tl_buf_len(dec->partial));
    if (rc != 0)
        return dec->error = rc;
    if (tl_buf_len(dec->partial) < dec->need)
        return 0;
    fill_frame(frame, tl_buf_data(dec->partial), dec->need);
    dec->handed_out = 1;
    dec->need = 0;
    return 1;
}

int tl_frame_decoder_finish(const tl_frame_decoder_t *dec)
{
    if (dec->error != 0)
        return dec->error;
    if (!dec->handed_out && tl_buf_len(dec->partial) > 0)
        return TL_ETRUNCATED;
    return 0;
}

size_t tl_frame_decoder_buffered(const tl_frame_decoder_t *dec)
{
    return dec->handed_out ? 0 : tl_buf_len(dec->partial);
}

size_t tl_frame_decoder_memory(const tl_frame_decoder_t *dec)
{
    return sizeof *dec + tl_buf_capacity(dec->partial);
}
