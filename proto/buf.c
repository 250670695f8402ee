#include "proto/buf.h"
#include "proto/err.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/*
 * Layout: [0, start) consumed, [start, end) live bytes, [end, alloc) free.
 * Consumed space is reclaimed by sliding the live bytes down when an append
 * needs room, so a buffer used as a queue does not grow without bound.
 */
struct tl_buf {
    uint8_t *bytes;
    size_t start;
    size_t end;
    size_t alloc;
    size_t max_size;
    bool secret; /* zero every byte let go of */
};

#define TL_BUF_MIN_ALLOC 256

tl_buf_t *tl_buf_new(size_t max_size)
{
    tl_buf_t *buf = calloc(1, sizeof *buf);
    if (buf != NULL)
        buf->max_size = max_size;
    return buf;
}

tl_buf_t *tl_buf_new_secret(size_t max_size)
{
    tl_buf_t *buf = tl_buf_new(max_size);
    if (buf != NULL)
        buf->secret = true;
    return buf;
}

/* Zeroes the len bytes at offset in the memory when the buffer holds secrets. */
static void forget(const tl_buf_t *buf, size_t offset, size_t len)
{
    if (buf->secret && len > 0)
        OPENSSL_cleanse(buf->bytes + offset, len);
}

void tl_buf_free(tl_buf_t *buf)
{
    if (buf == NULL)
        return;
    tl_buf_release(buf);
    free(buf);
}

size_t tl_buf_len(const tl_buf_t *buf)
{
    return buf->end - buf->start;
}

size_t tl_buf_max(const tl_buf_t *buf)
{
    return buf->max_size;
}

size_t tl_buf_capacity(const tl_buf_t *buf)
{
    return buf->alloc;
}

const uint8_t *tl_buf_data(const tl_buf_t *buf)
{
    return buf->bytes == NULL ? (const uint8_t *)"" : buf->bytes + buf->start;
}

void tl_buf_reset(tl_buf_t *buf)
{
    forget(buf, buf->start, buf->end - buf->start);
    buf->start = buf->end = 0;
}

void tl_buf_release(tl_buf_t *buf)
{
    forget(buf, 0, buf->alloc);
    free(buf->bytes);
    buf->bytes = NULL;
    buf->start = buf->end = buf->alloc = 0;
}

void tl_buf_wipe(tl_buf_t *buf)
{
    if (buf->bytes != NULL)
        OPENSSL_cleanse(buf->bytes, buf->alloc);
    tl_buf_release(buf);
}

/*
 * The bytes moved to alloc bytes of memory (the first buf->end of them kept),
 * or NULL and nothing changed. A secret buffer is copied, not realloc'd,
 * so the old memory can be zeroed before it is freed.
 */
static uint8_t *resize(tl_buf_t *buf, size_t alloc)
{
    if (!buf->secret)
        return realloc(buf->bytes, alloc);
    uint8_t *moved = malloc(alloc);
    if (moved == NULL)
        return NULL;
    if (buf->bytes != NULL) {
        memcpy(moved, buf->bytes, buf->end);
        forget(buf, 0, buf->alloc);
        free(buf->bytes);
    }
    return moved;
}

/* Makes room for len more bytes at the end, within the cap; exact: no more than that. */
static int make_room(tl_buf_t *buf, size_t len, int exact)
{
    size_t live = buf->end - buf->start;
    if (len > buf->max_size || live > buf->max_size - len)
        return TL_EFULL;
    if (buf->alloc - buf->end >= len)
        return 0;
    if (buf->start > 0) {
        memmove(buf->bytes, buf->bytes + buf->start, live);
        forget(buf, live, buf->end - live); /* where the tail was */
        buf->start = 0;
        buf->end = live;
        if (buf->alloc - buf->end >= len)
            return 0;
    }
    size_t want = live + len;
    size_t alloc = exact ? want : buf->alloc < TL_BUF_MIN_ALLOC ? TL_BUF_MIN_ALLOC : buf->alloc;
    while (alloc < want)
        alloc = alloc > SIZE_MAX / 2 ? want : alloc * 2;
    if (alloc > buf->max_size)
        alloc = buf->max_size;
    uint8_t *grown = resize(buf, alloc);
    if (grown == NULL)
        return TL_ENOMEM;
    buf->bytes = grown;
    buf->alloc = alloc;
    return 0;
}

int tl_buf_allocate(tl_buf_t *buf, size_t len)
{
    return make_room(buf, len, 1);
}

int tl_buf_take_string(tl_buf_t *buf, char **out, size_t *len)
{
    size_t live = buf->end - buf->start;
    if (buf->bytes == NULL || buf->alloc - buf->end < 1) {
        /* Room for the terminator, even past the cap: it is not content. */
        uint8_t *grown = resize(buf, buf->end + 1);
        if (grown == NULL)
            return TL_ENOMEM;
        buf->bytes = grown;
        buf->alloc = buf->end + 1;
    }
    if (buf->start > 0) {
        memmove(buf->bytes, buf->bytes + buf->start, live);
        forget(buf, live, buf->end - live);
    }
    buf->bytes[live] = 0;
    *out = (char *)buf->bytes;
    *len = live;
    buf->bytes = NULL;
    buf->start = buf->end = buf->alloc = 0;
    return 0;
}

int tl_buf_reserve(tl_buf_t *buf, size_t len, uint8_t **dst)
{
    int rc = make_room(buf, len, 0);
    if (rc != 0)
        return rc;
    *dst = buf->bytes + buf->end;
    buf->end += len;
    return 0;
}

int tl_buf_unreserve(tl_buf_t *buf, size_t len)
{
    if (len > buf->end - buf->start)
        return TL_EINVAL;
    buf->end -= len;
    forget(buf, buf->end, len);
    return 0;
}

int tl_buf_put(tl_buf_t *buf, const void *data, size_t len)
{
    uint8_t *dst;
    if (len == 0)
        return 0;
    int rc = tl_buf_reserve(buf, len, &dst);
    if (rc == 0)
        memcpy(dst, data, len);
    return rc;
}

int tl_buf_put_u8(tl_buf_t *buf, uint8_t value)
{
    return tl_buf_put(buf, &value, 1);
}

int tl_buf_put_u16(tl_buf_t *buf, uint16_t value)
{
    uint8_t b[2] = {(uint8_t)(value >> 8), (uint8_t)value};
    return tl_buf_put(buf, b, sizeof b);
}

int tl_buf_put_u32(tl_buf_t *buf, uint32_t value)
{
    uint8_t b[4];
    tl_store_u32(b, value);
    return tl_buf_put(buf, b, sizeof b);
}

int tl_buf_put_u64(tl_buf_t *buf, uint64_t value)
{
    uint8_t b[8];
    tl_store_u32(b, (uint32_t)(value >> 32));
    tl_store_u32(b + 4, (uint32_t)value);
    return tl_buf_put(buf, b, sizeof b);
}

int tl_buf_put_string(tl_buf_t *buf, const void *data, size_t len)
{
    if (len > UINT32_MAX)
        return TL_EINVAL;
    /* Check the whole item fits before writing any of it. */
    uint8_t *dst;
    int rc = tl_buf_reserve(buf, 4 + len, &dst);
    if (rc != 0)
        return rc;
    tl_store_u32(dst, (uint32_t)len);
    if (len > 0)
        memcpy(dst + 4, data, len);
    return 0;
}

int tl_buf_put_cstring(tl_buf_t *buf, const char *text)
{
    return tl_buf_put_string(buf, text, text == NULL ? 0 : strlen(text));
}

int tl_buf_poke_u32(tl_buf_t *buf, size_t offset, uint32_t value)
{
    if (offset > tl_buf_len(buf) || tl_buf_len(buf) - offset < 4)
        return TL_EINVAL;
    tl_store_u32(buf->bytes + buf->start + offset, value);
    return 0;
}

int tl_buf_consume(tl_buf_t *buf, size_t len)
{
    if (len > tl_buf_len(buf))
        return TL_ETRUNCATED;
    forget(buf, buf->start, len);
    buf->start += len;
    if (buf->start == buf->end)
        buf->start = buf->end = 0;
    return 0;
}

int tl_buf_get(tl_buf_t *buf, void *out, size_t len)
{
    if (len > tl_buf_len(buf))
        return TL_ETRUNCATED;
    if (len > 0)
        memcpy(out, buf->bytes + buf->start, len);
    return tl_buf_consume(buf, len);
}

int tl_buf_get_u8(tl_buf_t *buf, uint8_t *out)
{
    return tl_buf_get(buf, out, 1);
}

int tl_buf_get_u16(tl_buf_t *buf, uint16_t *out)
{
    uint8_t b[2];
    int rc = tl_buf_get(buf, b, 2);
    if (rc == 0)
        *out = (uint16_t)((b[0] << 8) | b[1]);
    return rc;
}

int tl_buf_get_u32(tl_buf_t *buf, uint32_t *out)
{
    uint8_t b[4];
    int rc = tl_buf_get(buf, b, 4);
    if (rc == 0)
        *out = tl_load_u32(b);
    return rc;
}

int tl_buf_get_u64(tl_buf_t *buf, uint64_t *out)
{
    uint8_t b[8];
    int rc = tl_buf_get(buf, b, 8);
    if (rc == 0)
        *out = ((uint64_t)tl_load_u32(b) << 32) | tl_load_u32(b + 4);
    return rc;
}

void tl_reader_init(tl_reader_t *reader, const void *data, size_t len)
{
    reader->data = data;
    reader->len = len;
    reader->off = 0;
}

size_t tl_reader_left(const tl_reader_t *reader)
{
    return reader->len - reader->off;
}

int tl_reader_bytes(tl_reader_t *reader, size_t n, const uint8_t **out)
{
    if (n > tl_reader_left(reader))
        return TL_ETRUNCATED;
    *out = reader->data + reader->off;
    reader->off += n;
    return 0;
}

int tl_reader_u8(tl_reader_t *reader, uint8_t *out)
{
    const uint8_t *p;
    int rc = tl_reader_bytes(reader, 1, &p);
    if (rc == 0)
        *out = p[0];
    return rc;
}

int tl_reader_u16(tl_reader_t *reader, uint16_t *out)
{
    const uint8_t *p;
    int rc = tl_reader_bytes(reader, 2, &p);
    if (rc == 0)
        *out = (uint16_t)((p[0] << 8) | p[1]);
    return rc;
}

int tl_reader_u32(tl_reader_t *reader, uint32_t *out)
{
    const uint8_t *p;
    int rc = tl_reader_bytes(reader, 4, &p);
    if (rc == 0)
        *out = tl_load_u32(p);
    return rc;
}

int tl_reader_u64(tl_reader_t *reader, uint64_t *out)
{
    const uint8_t *p;
    int rc = tl_reader_bytes(reader, 8, &p);
    if (rc == 0)
        *out = ((uint64_t)tl_load_u32(p) << 32) | tl_load_u32(p + 4);
    return rc;
}

int tl_reader_string(tl_reader_t *reader, size_t max_len, const uint8_t **out, size_t *out_len)
{
    size_t saved = reader->off;
    uint32_t len;
    int rc = tl_reader_u32(reader, &len);
    if (rc != 0)
        return rc;
    if (len > max_len) {
        reader->off = saved;
        return TL_EMSG_MALFORMED;
    }
    rc = tl_reader_bytes(reader, len, out);
    if (rc != 0) {
        reader->off = saved;
        return rc;
    }
    *out_len = len;
    return 0;
}

void tl_reader_rest(tl_reader_t *reader, const uint8_t **out, size_t *out_len)
{
    *out = reader->data + reader->off;
    *out_len = tl_reader_left(reader);
    reader->off = reader->len;
}

int tl_buf_printf(tl_buf_t *buf, const char *fmt, ...)
{
    char small[512], *text = small;
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (len < 0)
        return TL_EINVAL;
    if ((size_t)len >= sizeof small) {
        if ((text = malloc((size_t)len + 1)) == NULL)
            return TL_ENOMEM;
        va_start(args, fmt);
        vsnprintf(text, (size_t)len + 1, fmt, args);
        va_end(args);
    }
    int rc = tl_buf_put(buf, text, (size_t)len);
    if (text != small)
        free(text);
    return rc;
}
