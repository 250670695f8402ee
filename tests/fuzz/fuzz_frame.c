/*
 * Fuzz target for the incremental frame decoder.
 *
 * The input is decoded twice: in one piece, and in chunks whose sizes come
 * from the input's first byte. Both must yield the same frames and end in the
 * same state; any difference, crash or sanitizer report is a bug.
 */
#include "proto/err.h"
#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 4096

struct outcome {
    size_t frames;
    uint32_t digest; /* order-sensitive digest of every frame's type and payload */
    int end;         /* error, or the result of tl_frame_decoder_finish */
};

static uint32_t mix(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static struct outcome run(const uint8_t *data, size_t size, size_t chunk)
{
    struct outcome result = {0, 2166136261u, 0};
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    if (dec == NULL)
        abort();
    size_t off = 0;
    int rc = 0;
    while (off < size && rc >= 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        const uint8_t *p = data + off;
        size_t left = n;
        tl_frame_t frame;
        while ((rc = tl_frame_decoder_next(dec, &p, &left, &frame)) == 1) {
            if (frame.version != TL_FRAME_VERSION || frame.payload_len > TL_FRAME_MAX_PAYLOAD)
                abort();
            uint8_t type = frame.type;
            result.digest = mix(result.digest, &type, 1);
            result.digest = mix(result.digest, frame.payload, frame.payload_len);
            if (++result.frames > MAX_FRAMES)
                abort();
        }
        if (rc == 0 && left != 0)
            abort(); /* "need more" must mean all input was taken */
        off += n;
    }
    result.end = rc < 0 ? rc : tl_frame_decoder_finish(dec);
    tl_frame_decoder_free(dec);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 17) + 1;
    struct outcome whole = run(data + 1, size - 1, size);
    struct outcome pieces = run(data + 1, size - 1, chunk);
    if (whole.frames != pieces.frames || whole.digest != pieces.digest || whole.end != pieces.end)
        abort();
    return 0;
}
