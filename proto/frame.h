/*
 * Frames: the unit the agent and the relay exchange inside TLS.
 *
 *   u32 length   bytes that follow this field (2 + payload length)
 *   u8  version  framing version, TL_FRAME_VERSION
 *   u8  type     message type (proto/msg.h)
 *   payload      length - 2 bytes
 *
 * docs/protocol.md §2 is the specification. The decoder is incremental: bytes
 * arrive in reads of any size, a frame may be split across any number of
 * them, and one read may hold many frames. A frame that is complete inside
 * the caller's input is handed out without a copy; only a frame split across
 * reads is assembled in the decoder's own buffer, which is capped at the
 * maximum frame size and released again once it grows large, so an idle
 * connection holds no frame memory.
 */
#ifndef TL_FRAME_H
#define TL_FRAME_H

#include "proto/buf.h"

#include <stddef.h>
#include <stdint.h>

#define TL_FRAME_VERSION 1
#define TL_FRAME_HEADER_LEN 6
/* Largest payload a frame may carry; a bigger length field ends the connection. */
#define TL_FRAME_MAX_PAYLOAD (256u * 1024u)

typedef struct tl_frame {
    uint8_t version;
    uint8_t type;
    const uint8_t *payload;
    size_t payload_len;
} tl_frame_t;

/* Appends one whole frame to out; TL_EFRAME_SIZE if the payload is too large. */
int tl_frame_encode(tl_buf_t *out, uint8_t type, const void *payload, size_t payload_len);

/*
 * For building a payload in place: tl_frame_begin writes a header with a
 * placeholder length and remembers where; the caller appends the payload;
 * tl_frame_end patches the length. On error the frame is removed again.
 */
int tl_frame_begin(tl_buf_t *out, uint8_t type, size_t *mark);
int tl_frame_end(tl_buf_t *out, size_t mark);
void tl_frame_abort(tl_buf_t *out, size_t mark);

typedef struct tl_frame_decoder tl_frame_decoder_t;

tl_frame_decoder_t *tl_frame_decoder_new(size_t max_payload);
void tl_frame_decoder_free(tl_frame_decoder_t *dec);

/*
 * Takes bytes from *data and *len (advancing both) until one frame is complete.
 * Returns 1 and fills *frame (valid until the next call or until the caller's
 * input is gone), 0 when all input is used and more is needed, or a negative
 * error: TL_EFRAME_SIZE for a length under 2 or over the maximum,
 * TL_EFRAME_VERSION for an unknown version, TL_ENOMEM. Errors are sticky: a
 * decoder that failed keeps failing, because the stream has lost its framing.
 */
int tl_frame_decoder_next(tl_frame_decoder_t *dec, const uint8_t **data, size_t *len,
                          tl_frame_t *frame);

/* At end of stream: 0 if no partial frame is held, else TL_ETRUNCATED. */
int tl_frame_decoder_finish(const tl_frame_decoder_t *dec);

/* Bytes of a partial frame held, and bytes allocated, for accounting. */
size_t tl_frame_decoder_buffered(const tl_frame_decoder_t *dec);
size_t tl_frame_decoder_memory(const tl_frame_decoder_t *dec);

#endif
