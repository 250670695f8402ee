/*
 * The POSIX ustar archive format (POSIX.1-1988 "ustar", as pax and GNU tar read it), only the
 * part a ticket's evidence bundle needs (proto/bundle.h): regular files and directories, a name
 * of at most TL_TAR_NAME_MAX bytes in the name field (no prefix field, no pax or GNU
 * extensions), sizes below 8 GiB. Pure: bytes in, bytes out, no I/O.
 *
 * An archive is a header block per entry, the entry's content padded with zeros to a whole
 * number of blocks, and two zero blocks at the end. The writer puts every header field within
 * its bounds (octal numbers with their terminator, the checksum, the magic); the reader takes a
 * header only when every field it uses is well formed, so a damaged or foreign header is named,
 * never half read.
 */
#ifndef TL_TAR_H
#define TL_TAR_H

#include <stddef.h>
#include <stdint.h>

#define TL_TAR_BLOCK 512
/* The name field holds 100 bytes; ours always end with a NUL inside it. */
#define TL_TAR_NAME_MAX 99
/* 11 octal digits: the largest size and time the fields hold. */
#define TL_TAR_SIZE_MAX 077777777777ull
#define TL_TAR_MTIME_MAX 077777777777ll
/* The end of an archive: two zero blocks. */
#define TL_TAR_END_LEN (2 * TL_TAR_BLOCK)

typedef enum tl_tar_type { TL_TAR_FILE, TL_TAR_DIRECTORY } tl_tar_type_t;

typedef struct tl_tar_entry {
    char name[TL_TAR_NAME_MAX + 1]; /* a directory's ends with '/' */
    tl_tar_type_t type;
    uint64_t size; /* of the content; 0 for a directory */
    int64_t mtime; /* seconds since the epoch */
    unsigned mode; /* permission bits, at most 0777 */
} tl_tar_entry_t;

/*
 * 1 if name can stand in an archive: 1..TL_TAR_NAME_MAX bytes of printable ASCII without
 * space or backslash, relative (no leading '/'), no empty, "." or ".." component; a
 * directory's ends with '/', a file's does not.
 */
int tl_tar_name_valid(const char *name, tl_tar_type_t type);

/*
 * The header block of entry. TL_EINVAL for a name tl_tar_name_valid refuses, a size over
 * TL_TAR_SIZE_MAX (or not 0 for a directory), an mtime outside 0..TL_TAR_MTIME_MAX or a mode
 * over 0777; block is then all zeros.
 */
int tl_tar_header_write(const tl_tar_entry_t *entry, uint8_t block[TL_TAR_BLOCK]);

/* The zero bytes that follow size bytes of content, up to the next block: 0..511. */
size_t tl_tar_padding(uint64_t size);

/*
 * Reads a header block: 0 with *entry filled; 1 for a block of zeros (the end of the
 * archive); TL_EINVAL with *problem saying what is wrong ("the header's checksum does not
 * match", "not a ustar header", "unsupported entry type 'x'", ...) for anything else.
 */
int tl_tar_header_read(const uint8_t block[TL_TAR_BLOCK], tl_tar_entry_t *entry,
                       const char **problem);

#endif
