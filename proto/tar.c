/* The ustar archive format, the part bundles use (proto/tar.h). */
#include "proto/tar.h"
#include "proto/err.h"

#include <stdio.h>
#include <string.h>

/* Where each field of a header lies (POSIX.1 ustar). */
enum {
    NAME = 0,
    NAME_LEN = 100,
    MODE = 100,
    UID = 108,
    GID = 116,
    NUMBER_LEN = 8, /* mode, uid, gid, devmajor, devminor */
    SIZE = 124,
    MTIME = 136,
    TIME_LEN = 12, /* size and mtime */
    CHECKSUM = 148,
    CHECKSUM_LEN = 8,
    TYPE = 156,
    LINKNAME = 157,
    LINKNAME_LEN = 100,
    MAGIC = 257, /* "ustar\0" then version "00" */
    UNAME = 265,
    GNAME = 297,
    OWNER_LEN = 32,
    DEVMAJOR = 329,
    DEVMINOR = 337,
    PREFIX = 345,
    PREFIX_LEN = 155,
};

static const char magic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};

int tl_tar_name_valid(const char *name, tl_tar_type_t type)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TL_TAR_NAME_MAX || name[0] == '/')
        return 0;
    if ((type == TL_TAR_DIRECTORY) != (name[len - 1] == '/'))
        return 0;
    size_t component = 0; /* bytes of the component so far */
    int dots = 1;         /* ... all of them dots */
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];
        if (c == '/' || c == '\0') {
            /* A directory's final '/' ends its last component; nothing may follow it. */
            if (c == '\0' && type == TL_TAR_DIRECTORY)
                break;
            if (component == 0 || (dots && component <= 2))
                return 0;
            component = 0;
            dots = 1;
            continue;
        }
        if (c <= ' ' || c > '~' || c == '\\')
            return 0;
        component++;
        dots &= c == '.';
    }
    return 1;
}

/* value as digits octal digits and a NUL, filling exactly digits + 1 bytes. */
static void put_octal(uint8_t *field, size_t digits, uint64_t value)
{
    char text[32];
    snprintf(text, sizeof text, "%0*llo", (int)digits, (unsigned long long)value);
    memcpy(field, text, digits);
    field[digits] = '\0';
}

static unsigned checksum_of(const uint8_t block[TL_TAR_BLOCK])
{
    unsigned sum = 0;
    for (size_t i = 0; i < TL_TAR_BLOCK; i++)
        sum += i >= CHECKSUM && i < CHECKSUM + CHECKSUM_LEN ? (unsigned)' ' : block[i];
    return sum;
}

int tl_tar_header_write(const tl_tar_entry_t *entry, uint8_t block[TL_TAR_BLOCK])
{
    memset(block, 0, TL_TAR_BLOCK);
    if (!tl_tar_name_valid(entry->name, entry->type) || entry->size > TL_TAR_SIZE_MAX ||
        (entry->type == TL_TAR_DIRECTORY && entry->size != 0) || entry->mtime < 0 ||
        entry->mtime > TL_TAR_MTIME_MAX || entry->mode > 0777)
        return TL_EINVAL;
    memcpy(block + NAME, entry->name, strlen(entry->name));
    put_octal(block + MODE, NUMBER_LEN - 1, entry->mode);
    put_octal(block + UID, NUMBER_LEN - 1, 0);
    put_octal(block + GID, NUMBER_LEN - 1, 0);
    put_octal(block + SIZE, TIME_LEN - 1, entry->size);
    put_octal(block + MTIME, TIME_LEN - 1, (uint64_t)entry->mtime);
    block[TYPE] = entry->type == TL_TAR_DIRECTORY ? '5' : '0';
    memcpy(block + MAGIC, magic, sizeof magic);
    put_octal(block + DEVMAJOR, NUMBER_LEN - 1, 0);
    put_octal(block + DEVMINOR, NUMBER_LEN - 1, 0);
    /* Six digits, a NUL and a space, as POSIX tar writes it. */
    put_octal(block + CHECKSUM, 6, checksum_of(block));
    block[CHECKSUM + 7] = ' ';
    return 0;
}

size_t tl_tar_padding(uint64_t size)
{
    return (size_t)((TL_TAR_BLOCK - size % TL_TAR_BLOCK) % TL_TAR_BLOCK);
}

/*
 * A numeric field: optional leading spaces, 1 or more octal digits, then only NULs or spaces
 * to its end. 0 and *value, or TL_EINVAL.
 */
static int get_octal(const uint8_t *field, size_t len, uint64_t *value)
{
    size_t i = 0;
    uint64_t number = 0;
    int digits = 0;
    while (i < len && field[i] == ' ')
        i++;
    for (; i < len && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (number > (UINT64_MAX >> 3))
            return TL_EINVAL;
        number = number * 8 + (uint64_t)(field[i] - '0');
    }
    if (digits == 0)
        return TL_EINVAL;
    for (; i < len; i++)
        if (field[i] != '\0' && field[i] != ' ')
            return TL_EINVAL;
    *value = number;
    return 0;
}

/* A text field holds a NUL within it (an empty one is all NULs). */
static int terminated(const uint8_t *field, size_t len)
{
    return memchr(field, '\0', len) != NULL;
}

int tl_tar_header_read(const uint8_t block[TL_TAR_BLOCK], tl_tar_entry_t *entry,
                       const char **problem)
{
    static const uint8_t zeros[TL_TAR_BLOCK];
    uint64_t stored_sum, size, mtime, mode;
    memset(entry, 0, sizeof *entry);
    if (memcmp(block, zeros, TL_TAR_BLOCK) == 0)
        return 1;
    *problem = "not a ustar header";
    if (memcmp(block + MAGIC, magic, sizeof magic) != 0)
        return TL_EINVAL;
    *problem = "the header's checksum field is not a number";
    if (get_octal(block + CHECKSUM, CHECKSUM_LEN, &stored_sum) != 0)
        return TL_EINVAL;
    *problem = "the header's checksum does not match (the header is damaged)";
    if (stored_sum != checksum_of(block))
        return TL_EINVAL;
    *problem = "the header's size, time or mode is not an octal number";
    if (get_octal(block + SIZE, TIME_LEN, &size) != 0 ||
        get_octal(block + MTIME, TIME_LEN, &mtime) != 0 ||
        get_octal(block + MODE, NUMBER_LEN, &mode) != 0 || size > TL_TAR_SIZE_MAX ||
        mtime > (uint64_t)TL_TAR_MTIME_MAX)
        return TL_EINVAL;
    switch (block[TYPE]) {
    case '0':
    case '\0':
        entry->type = TL_TAR_FILE;
        break;
    case '5':
        entry->type = TL_TAR_DIRECTORY;
        break;
    default:
        /* Links, devices, pax and GNU extension headers: nothing a bundle holds. */
        *problem = "unsupported entry type (only files and directories)";
        return TL_EINVAL;
    }
    *problem = "a name that does not end within its field, or a prefix field (names are at most "
               "99 bytes)";
    if (!terminated(block + NAME, NAME_LEN) || block[PREFIX] != '\0' ||
        !terminated(block + LINKNAME, LINKNAME_LEN) || !terminated(block + UNAME, OWNER_LEN) ||
        !terminated(block + GNAME, OWNER_LEN))
        return TL_EINVAL;
    memcpy(entry->name, block + NAME, strlen((const char *)block + NAME) + 1);
    *problem = "a name that is absolute, holds '..', an empty component or other than printable "
               "ASCII";
    if (!tl_tar_name_valid(entry->name, entry->type))
        return TL_EINVAL;
    *problem = "a directory with content";
    if (entry->type == TL_TAR_DIRECTORY && size != 0)
        return TL_EINVAL;
    entry->size = size;
    entry->mtime = (int64_t)mtime;
    entry->mode = (unsigned)(mode & 0777);
    *problem = NULL;
    return 0;
}
