/*
 * SFTP version 3 (draft-ietf-secsh-filexfer-02), the dialect OpenSSH's sftp
 * and scp (which speaks SFTP by default since OpenSSH 9.0) use: bytes in,
 * bytes out, no I/O.
 *
 * The relay terminates the technicians' SFTP sessions itself (docs/protocol.md
 * "Files"): everything here sees input from an outside client, so every read
 * is bounded. A packet is at most TL_SFTP_MAX_PACKET bytes (as OpenSSH's own
 * server); a path at most TL_SFTP_MAX_PATH, a handle at most
 * TL_SFTP_MAX_HANDLE, extended attributes at most TL_SFTP_MAX_EXTENDED pairs.
 * Anything longer is malformed; malformed input ends that client's session
 * only. Decoded requests point into the packet they came from: nothing is
 * copied and nothing outlives the caller's buffer.
 *
 * The virtual tree (tl_sftp_resolve) is the relay's view: "/" lists the
 * tickets a technician may act on, "/T-42/etc/hostname" is /etc/hostname on
 * ticket T-42's machine. tl_sftp_machine_path_check is what the agent checks
 * of every path the relay hands it, whatever the relay did before.
 */
#ifndef TL_SFTP_H
#define TL_SFTP_H

#include "proto/buf.h"

#include <stddef.h>
#include <stdint.h>

#define TL_SFTP_VERSION 3
/* Longest packet (the length field excluded), as OpenSSH's sftp-server takes. */
#define TL_SFTP_MAX_PACKET (256u * 1024u)
#define TL_SFTP_MAX_PATH 4096u
/* Handles this side issues are short; v3 allows 256 bytes, nothing longer is ever ours. */
#define TL_SFTP_MAX_HANDLE 256u
#define TL_SFTP_MAX_EXTENDED 64u
/* The most data one READ is answered with (OpenSSH's client asks for 32 KiB). */
#define TL_SFTP_MAX_READ (64u * 1024u)

enum tl_sftp_type {
    TL_SFTP_INIT = 1,
    TL_SFTP_VERSION_REPLY = 2,
    TL_SFTP_OPEN = 3,
    TL_SFTP_CLOSE = 4,
    TL_SFTP_READ = 5,
    TL_SFTP_WRITE = 6,
    TL_SFTP_LSTAT = 7,
    TL_SFTP_FSTAT = 8,
    TL_SFTP_SETSTAT = 9,
    TL_SFTP_FSETSTAT = 10,
    TL_SFTP_OPENDIR = 11,
    TL_SFTP_READDIR = 12,
    TL_SFTP_REMOVE = 13,
    TL_SFTP_MKDIR = 14,
    TL_SFTP_RMDIR = 15,
    TL_SFTP_REALPATH = 16,
    TL_SFTP_STAT = 17,
    TL_SFTP_RENAME = 18,
    TL_SFTP_READLINK = 19,
    TL_SFTP_SYMLINK = 20,
    TL_SFTP_STATUS = 101,
    TL_SFTP_HANDLE = 102,
    TL_SFTP_DATA = 103,
    TL_SFTP_NAME = 104,
    TL_SFTP_ATTRS = 105,
    TL_SFTP_EXTENDED = 200,
    TL_SFTP_EXTENDED_REPLY = 201,
};

enum tl_sftp_status {
    TL_SFTP_OK = 0,
    TL_SFTP_EOF = 1,
    TL_SFTP_NO_SUCH_FILE = 2,
    TL_SFTP_PERMISSION_DENIED = 3,
    TL_SFTP_FAILURE = 4,
    TL_SFTP_BAD_MESSAGE = 5,
    TL_SFTP_NO_CONNECTION = 6,
    TL_SFTP_CONNECTION_LOST = 7,
    TL_SFTP_OP_UNSUPPORTED = 8,
};

/* OPEN's pflags. */
#define TL_SFTP_FXF_READ 0x01u
#define TL_SFTP_FXF_WRITE 0x02u
#define TL_SFTP_FXF_APPEND 0x04u
#define TL_SFTP_FXF_CREAT 0x08u
#define TL_SFTP_FXF_TRUNC 0x10u
#define TL_SFTP_FXF_EXCL 0x20u

/* Which members of tl_sftp_attrs_t are present. */
#define TL_SFTP_ATTR_SIZE 0x01u
#define TL_SFTP_ATTR_UIDGID 0x02u
#define TL_SFTP_ATTR_PERMISSIONS 0x04u
#define TL_SFTP_ATTR_ACMODTIME 0x08u
#define TL_SFTP_ATTR_EXTENDED 0x80000000u

typedef struct tl_sftp_attrs {
    uint32_t flags; /* TL_SFTP_ATTR_*; EXTENDED is read past, never kept or sent */
    uint64_t size;
    uint32_t uid, gid;
    uint32_t permissions; /* st_mode: type and permission bits */
    uint32_t atime, mtime;
} tl_sftp_attrs_t;

/* One request from a client. Strings point into the packet and are not NUL-terminated. */
typedef struct tl_sftp_request {
    uint8_t type;     /* enum tl_sftp_type; a type not listed there is kept as sent */
    uint32_t id;      /* the request id (0 for INIT) */
    uint32_t version; /* INIT */
    const uint8_t *path;
    size_t path_len; /* OPEN, STAT, LSTAT, OPENDIR, REALPATH, REMOVE, MKDIR, RMDIR, SETSTAT,
                        READLINK; RENAME's and SYMLINK's first */
    const uint8_t *path2;
    size_t path2_len; /* RENAME's new path, SYMLINK's second */
    const uint8_t *handle;
    size_t handle_len; /* CLOSE, READ, WRITE, FSTAT, FSETSTAT, READDIR */
    uint64_t offset;   /* READ, WRITE */
    uint32_t length;   /* READ: bytes asked for */
    const uint8_t *data;
    size_t data_len; /* WRITE */
    uint32_t pflags; /* OPEN */
    tl_sftp_attrs_t attrs;
    const uint8_t *extension;
    size_t extension_len; /* EXTENDED: its name; what follows is not read */
} tl_sftp_request_t;

/*
 * The next whole packet at the front of in (a u32 length, then that many
 * bytes): 1 with *payload and *len set (the caller consumes 4 + *len bytes
 * when done with it), 0 if more bytes are needed, TL_EFRAME_SIZE for a length
 * of 0 or over TL_SFTP_MAX_PACKET (the stream cannot be resynchronised).
 */
int tl_sftp_next_packet(const uint8_t *in, size_t in_len, const uint8_t **payload, size_t *len);

/*
 * Decodes one packet. 0 on success; TL_EMSG_MALFORMED for a packet of a
 * known type whose fields do not fit, are over their caps, or leave bytes
 * over; TL_EMSG_TYPE for a type this module does not decode (req->type and,
 * if present, req->id are set, so the answer can be OP_UNSUPPORTED).
 */
int tl_sftp_parse_request(const uint8_t *payload, size_t len, tl_sftp_request_t *req);

/* Replies, appended to out (all or nothing: TL_EFULL past out's cap, TL_ENOMEM). */
int tl_sftp_put_version(tl_buf_t *out);
int tl_sftp_put_status(tl_buf_t *out, uint32_t id, uint32_t status, const char *message);
int tl_sftp_put_handle(tl_buf_t *out, uint32_t id, const void *handle, size_t len);
int tl_sftp_put_data(tl_buf_t *out, uint32_t id, const void *data, size_t len);
int tl_sftp_put_attrs(tl_buf_t *out, uint32_t id, const tl_sftp_attrs_t *attrs);

/* A NAME reply of count entries: begin, put each entry, then end (which writes the length). */
typedef struct tl_sftp_name_reply {
    size_t start; /* where the packet begins in out's unconsumed bytes */
    uint32_t count, put;
} tl_sftp_name_reply_t;

int tl_sftp_name_begin(tl_buf_t *out, tl_sftp_name_reply_t *reply, uint32_t id, uint32_t count);
int tl_sftp_name_put(tl_buf_t *out, tl_sftp_name_reply_t *reply, const char *filename,
                     const char *longname, const tl_sftp_attrs_t *attrs);
/* TL_EINVAL if fewer or more entries were put than announced. */
int tl_sftp_name_end(tl_buf_t *out, tl_sftp_name_reply_t *reply);

/* A path in the relay's virtual tree, resolved. */
typedef struct tl_sftp_vpath {
    int root;        /* 1: "/" itself, the list of tickets (ticket and path are empty) */
    char ticket[24]; /* "T-42" */
    int64_t ticket_id;
    char path[TL_SFTP_MAX_PATH + 1]; /* on the machine: absolute, normalised ("/" for the ticket) */
} tl_sftp_vpath_t;

/*
 * Resolves a client's path: relative paths start at "/"; empty and "."
 * components go; ".." takes the previous component away and may not climb
 * above "/" (TL_EDENIED). The first component must name a ticket ("T-42",
 * TL_ENOTFOUND otherwise). Control characters, invalid UTF-8 and NUL are
 * refused (TL_EINVAL), as is a machine path longer than TL_SFTP_MAX_PATH.
 * *why, if not NULL, gets a sentence for the client on failure.
 */
int tl_sftp_resolve(const uint8_t *path, size_t len, tl_sftp_vpath_t *out, const char **why);

/*
 * What the agent accepts as a machine path from the relay: absolute, no
 * empty, "." or ".." component, no trailing "/" (but "/" itself), no control
 * character, valid UTF-8, at most TL_SFTP_MAX_PATH bytes. 0 or TL_EINVAL.
 */
int tl_sftp_machine_path_check(const char *path);

#endif
