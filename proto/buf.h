/*
 * Byte buffers with a hard cap, and checked readers.
 *
 * tl_buf_t is an owning, growable buffer: bytes are appended at the end and
 * consumed from the front. It never grows past the cap given at creation;
 * an append that would is refused with TL_EFULL and leaves the buffer as it
 * was. Integers are big-endian (network order) everywhere. It is the one
 * growing byte buffer of the project; arrays of items grow with
 * tl_array_grow (proto/array.h).
 *
 * tl_reader_t is a non-owning cursor over bytes someone else holds. Every
 * read checks the remaining length first; a read that does not fit returns
 * TL_ETRUNCATED and leaves the cursor where it was, so a reader can never
 * run past the end of its input.
 */
#ifndef TL_BUF_H
#define TL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_buf tl_buf_t;

/* A buffer that holds at most max_size bytes; no memory is allocated yet. */
tl_buf_t *tl_buf_new(size_t max_size);
/*
 * As tl_buf_new, for bytes that may be a secret (a key, input that may be a
 * password): every byte the buffer lets go of is zeroed first, whether it
 * is consumed, unreserved, reset, moved down to make room, left behind when
 * the buffer grows into new memory, released or freed. No copy outlives its
 * place in the buffer.
 */
tl_buf_t *tl_buf_new_secret(size_t max_size);
void tl_buf_free(tl_buf_t *buf);

size_t tl_buf_len(const tl_buf_t *buf);
size_t tl_buf_max(const tl_buf_t *buf);
/* Bytes currently allocated, for memory accounting. */
size_t tl_buf_capacity(const tl_buf_t *buf);
/* Start of the unconsumed bytes; valid until the next call that changes buf. */
const uint8_t *tl_buf_data(const tl_buf_t *buf);

/* Empties the buffer. tl_buf_reset keeps the memory, tl_buf_release frees it. */
void tl_buf_reset(tl_buf_t *buf);
void tl_buf_release(tl_buf_t *buf);
/* As tl_buf_release, zeroing the memory first: for buffers that held a secret. */
void tl_buf_wipe(tl_buf_t *buf);

/*
 * Makes room for len more bytes now (within the cap), allocating exactly what
 * is missing rather than doubling: for a caller that knows the size it will
 * need, such as a file's length.
 */
int tl_buf_allocate(tl_buf_t *buf, size_t len);

/*
 * Hands the unconsumed bytes over as one malloc'd, NUL-terminated string
 * (*len bytes before the NUL; the NUL is not content and may go one byte past
 * the cap). The buffer is empty afterwards and can be used again. TL_ENOMEM
 * (and the buffer unchanged) if the terminator finds no memory.
 */
int tl_buf_take_string(tl_buf_t *buf, char **out, size_t *len);

/* Appends len uninitialised bytes and points *dst at them (for in-place writes). */
int tl_buf_reserve(tl_buf_t *buf, size_t len, uint8_t **dst);
/* Drops the last len bytes (undoes a reserve that was not filled). */
int tl_buf_unreserve(tl_buf_t *buf, size_t len);

int tl_buf_put(tl_buf_t *buf, const void *data, size_t len);
int tl_buf_put_u8(tl_buf_t *buf, uint8_t value);
int tl_buf_put_u16(tl_buf_t *buf, uint16_t value);
int tl_buf_put_u32(tl_buf_t *buf, uint32_t value);
int tl_buf_put_u64(tl_buf_t *buf, uint64_t value);
/* A u32 length followed by that many bytes. */
int tl_buf_put_string(tl_buf_t *buf, const void *data, size_t len);
int tl_buf_put_cstring(tl_buf_t *buf, const char *text);
/* Appends printf-formatted text (no NUL), all of it or nothing: TL_EFULL past the cap. */
int tl_buf_printf(tl_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Overwrites four bytes at offset (from the start of the unconsumed data). */
int tl_buf_poke_u32(tl_buf_t *buf, size_t offset, uint32_t value);

/* Removes len bytes from the front. */
int tl_buf_consume(tl_buf_t *buf, size_t len);
/* Copies out and consumes; TL_ETRUNCATED (and nothing consumed) if too short. */
int tl_buf_get(tl_buf_t *buf, void *out, size_t len);
int tl_buf_get_u8(tl_buf_t *buf, uint8_t *out);
int tl_buf_get_u16(tl_buf_t *buf, uint16_t *out);
int tl_buf_get_u32(tl_buf_t *buf, uint32_t *out);
int tl_buf_get_u64(tl_buf_t *buf, uint64_t *out);

typedef struct tl_reader {
    const uint8_t *data;
    size_t len;
    size_t off;
} tl_reader_t;

void tl_reader_init(tl_reader_t *reader, const void *data, size_t len);
size_t tl_reader_left(const tl_reader_t *reader);
int tl_reader_u8(tl_reader_t *reader, uint8_t *out);
int tl_reader_u16(tl_reader_t *reader, uint16_t *out);
int tl_reader_u32(tl_reader_t *reader, uint32_t *out);
int tl_reader_u64(tl_reader_t *reader, uint64_t *out);
/* Points *out at the next n bytes (no copy). */
int tl_reader_bytes(tl_reader_t *reader, size_t n, const uint8_t **out);
/* A u32 length and its bytes; TL_EMSG_MALFORMED if the length exceeds max_len. */
int tl_reader_string(tl_reader_t *reader, size_t max_len, const uint8_t **out, size_t *out_len);
/* Everything that is left. */
void tl_reader_rest(tl_reader_t *reader, const uint8_t **out, size_t *out_len);

/* Big-endian loads and stores for callers that build headers in place. */
static inline uint32_t tl_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void tl_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif
