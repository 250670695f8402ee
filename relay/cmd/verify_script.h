/*
 * docs/verify_bundle.py, the reference verifier every evidence bundle carries (proto/bundle.h,
 * docs/audit-format.md §19), as the build embeds it (relay/embed.cmake): the bundle ships the
 * script this relay was built with, byte for byte.
 */
#ifndef TL_VERIFY_SCRIPT_H
#define TL_VERIFY_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t tl_verify_script[];
extern const size_t tl_verify_script_len;

#endif
