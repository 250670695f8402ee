/*
 * Error codes shared by every Tierline module.
 *
 * Functions return 0 on success and a negative code on failure. Our own codes
 * live in the -30000 range so they never collide with negated errno values or
 * libuv's UV_E* codes (which are negated errno values or -3000/-4000-ish); any
 * of those may also be returned and tl_strerror() names them all.
 */
#ifndef TL_ERR_H
#define TL_ERR_H

#define TL_ERR_MAP(X)                                                                              \
    X(ENOMEM, -30001, "out of memory")                                                             \
    X(EINVAL, -30002, "invalid argument")                                                          \
    X(ETRUNCATED, -30003, "input ended inside an item")                                            \
    X(EFULL, -30004, "buffer limit reached")                                                       \
    X(EFRAME_SIZE, -30005, "frame length out of bounds")                                           \
    X(EFRAME_VERSION, -30006, "unsupported frame version")                                         \
    X(EMSG_TYPE, -30007, "unknown message type")                                                   \
    X(EMSG_MALFORMED, -30008, "malformed message")                                                 \
    X(EMSG_JSON, -30009, "invalid JSON in message")                                                \
    X(EVERSION, -30010, "no common protocol version")                                              \
    X(ECHANNEL, -30011, "unknown channel")                                                         \
    X(EWINDOW, -30012, "peer exceeded the channel window")                                         \
    X(ECHANNEL_LIMIT, -30013, "too many channels")                                                 \
    X(ECHANNEL_STATE, -30014, "message not valid in the channel's state")                          \
    X(ETLS, -30015, "TLS failure")                                                                 \
    X(EPIN, -30016, "peer key does not match the pinned fingerprint")                              \
    X(EKEY, -30017, "unusable key or certificate")                                                 \
    X(EKEY_PERMS, -30018, "key file is readable by others")                                        \
    X(EIO, -30019, "input/output error")                                                           \
    X(EEXIST, -30020, "already exists")                                                            \
    X(ECLOSED, -30021, "connection closed")                                                        \
    X(ETIMEOUT, -30022, "timed out")                                                               \
    X(EPROTO, -30023, "protocol violation")                                                        \
    X(ENOTFOUND, -30024, "not found")                                                              \
    X(EEXPIRED, -30025, "expired")                                                                 \
    X(EUSED, -30026, "already used")                                                               \
    X(ESTORE, -30027, "storage failure")                                                           \
    X(ESCHEMA, -30028, "store schema is newer than this program")                                  \
    X(EMISMATCH, -30029, "content does not match its announced hash or size")                      \
    X(EDENIED, -30030, "not permitted")                                                            \
    X(ECHANNEL_IN_USE, -30031, "channel id already in use by a live channel")                      \
    X(ENOT_ENROLLED, -30032, "key not enrolled with the relay")                                    \
    X(EAUDIT, -30040, "the relay cannot write its audit log, so it refuses audited actions")       \
    X(EDAMAGED, -30041, "stored content is damaged: it does not match its SHA-256")                \
    X(ERATELIMITED, -30042, "rate limited")                                                        \
    X(EDISABLED, -30043, "account disabled")                                                       \
    X(ESTATE, -30044, "not allowed in its current status")                                         \
    X(EVERIFY, -30050, "a proof or signature does not verify")                                     \
    X(ESIGNATURE, -30061, "signature does not verify")                                             \
    X(ENOTRUST, -30071, "no catalogue signing key is trusted")                                     \
    X(EUNTRUSTED, -30072, "signed by a key that is not trusted")                                   \
    X(EOLDER, -30073, "not newer than the installed version")

enum tl_err {
#define TL_ERR_ENUM(name, value, text) TL_##name = (value),
    TL_ERR_MAP(TL_ERR_ENUM)
#undef TL_ERR_ENUM
};

#define TL_ERR_FIRST (-30001)
#define TL_ERR_LAST (-30099)

/* Human-readable text for any code: ours, negated errno or libuv's. Never NULL. */
const char *tl_strerror(int code);

/* Short symbolic name ("EFRAME_SIZE"), for logs and JSON; "UNKNOWN" if not ours. */
const char *tl_err_name(int code);

/*
 * The code as protocol version 1 and the audit log name it. A code added
 * since, for a case that used to be said with an older code, is given as that
 * older code where a peer or a reader of the records sees it (docs/protocol.md
 * §6, docs/audit-format.md), so deployed agents and audit readers see what
 * they always saw: ERATELIMITED is ETIMEOUT there. Every other code is
 * returned unchanged.
 */
int tl_err_compat(int code);

#endif
