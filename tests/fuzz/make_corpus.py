#!/usr/bin/env python3
"""Writes the seed corpora for tests/fuzz from the wire format in docs/protocol.md.

Run from the repository root: python3 tests/fuzz/make_corpus.py
The files are committed; rerun after a format change.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def frame(t, payload, version=1):
    return struct.pack(">IBB", len(payload) + 2, version, t) + payload


MSGS = {
    "hello": (1, struct.pack(">HHI", 1, 1, 0) + s("tierline-agent/0.1.0")),
    "hello_future": (1, struct.pack(">HHI", 1, 7, 0xFFFF) + s("x")),
    "ping": (2, struct.pack(">Q", 42)),
    "pong": (3, struct.pack(">Q", 2**64 - 1)),
    "goodbye": (4, struct.pack(">I", 30005) + s("frame length out of bounds")),
    "enroll": (16, s("ABCD-EFGH-JKLM") + s("laptop-7") + s("Debian GNU/Linux 12")),
    "enroll_result": (17, struct.pack(">I", 0) + s("D-1") + s("enrolled")),
    "open": (32, struct.pack(">III", 3, 2 * 1024 * 1024, 65536) + s("exec")
             + s('{"argv":["uname","-a"],"pty":false}')),
    "confirm": (33, struct.pack(">IIII", 3, 9, 1 << 20, 32768)),
    "refuse": (34, struct.pack(">II", 3, 30013) + s("too many channels")),
    "data": (35, struct.pack(">IB", 9, 0) + b"hello world\n"),
    "data_stderr": (35, struct.pack(">IB", 9, 1) + b"oops\n"),
    "window": (36, struct.pack(">II", 9, 1 << 20)),
    "eof": (37, struct.pack(">I", 9)),
    "close": (38, struct.pack(">IBI", 9, 1, 0) + s("")),
    "close_signal": (38, struct.pack(">IBI", 9, 3, 0xFFFFFFFF) + s("KILL")),
    "input_ack": (39, struct.pack(">IIB", 9, 12, 1)),
    "control": (64, struct.pack(">I", 7) + s('{"type":"ticket.create","title":"printer"}')),
    "control_nested": (64, struct.pack(">I", 0) + s('{"a":[1,2,{"b":null}],"c":"\\u00e9"}')),
    # Malformed on purpose: each must be rejected with its own error.
    "bad_json": (64, struct.pack(">I", 7) + s('{"type":')),
    "json_not_object": (64, struct.pack(">I", 7) + s("[1,2,3]")),
    "trailing": (2, struct.pack(">Q", 1) + b"x"),
    "short": (33, struct.pack(">II", 3, 9)),
    "string_overrun": (4, struct.pack(">I", 0) + struct.pack(">I", 1000) + b"abc"),
    "unknown_type": (200, b"whatever"),
    "bad_stream": (35, struct.pack(">IB", 9, 7) + b"x"),
    "nul_in_text": (4, struct.pack(">I", 0) + s(b"a\x00b")),
    "input_ack_zero": (39, struct.pack(">IIB", 9, 0, 0)),
}


def main():
    for sub in ("frame", "msg"):
        os.makedirs(os.path.join(ROOT, sub), exist_ok=True)
    for name, (t, payload) in MSGS.items():
        with open(os.path.join(ROOT, "msg", name), "wb") as f:
            f.write(bytes([t]) + payload)

    # Frame corpus: first byte picks the chunk size used by the fuzz target.
    stream = b"".join(frame(t, p) for t, p in MSGS.values())
    frames = {
        "many": b"\x00" + stream,
        "many_split3": b"\x02" + stream,
        "one": b"\x05" + frame(2, struct.pack(">Q", 1)),
        "empty_payload": b"\x01" + frame(37, b""),
        "truncated": b"\x03" + frame(35, struct.pack(">IB", 1, 0) + b"abcdef")[:-3],
        "too_large": b"\x00" + struct.pack(">IBB", 256 * 1024 + 3, 1, 35),
        "too_small": b"\x00" + struct.pack(">IBB", 1, 1, 35),
        "bad_version": b"\x00" + frame(2, struct.pack(">Q", 1), version=9),
        "garbage": b"\x04GET / HTTP/1.1\r\nHost: relay\r\n\r\n",
        "tls_hello": b"\x00\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),
    }
    for name, data in frames.items():
        with open(os.path.join(ROOT, "frame", name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
