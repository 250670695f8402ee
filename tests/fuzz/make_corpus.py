#!/usr/bin/env python3
"""Writes the seed corpora for tests/fuzz from the formats in docs/: the wire
format (protocol.md), command lines (technicians.md), the audit log
(audit-format.md), consent policies and requests and runbook metadata
(consent.md), enrollment strings, the console's config file, and the text
the diagnostics probes read (diagnostics.md). Each target's input layout is
described at the top of its tests/fuzz/fuzz_TARGET.c.

Run from the repository root: python3 tests/fuzz/make_corpus.py
The files are committed; rerun after a format change. Seeds that reproduce
a fixed bug are not written here: they are committed by hand under
corpus/TARGET/regression-*.
"""
import base64
import glob
import hashlib
import json
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


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# ---- command lines (docs/technicians.md "Command lines") ----

CMDLINES = {
    "tickets": "tickets",
    "tickets_filters": "tickets --tier 1 --status open --mine --json",
    "show": "ticket show T-1",
    "note_single": "note T-3 'printer is back, it''s fine'",
    "note_double": 'note T-3 "say \\"hi\\" and \\\\ and \\n"',
    "run": "run T-1 --for 15m --reason 'disk full' -- df -h /var",
    "fix": "fix T-1 restart-service SERVICE=cups.service",
    "escaped": "run T-2 -- sh -c echo\\ \\$HOME\\ \\*",
    "joined": "a'b c'd\"e f\"g''h",
    "empty_word": "note T-1 ''",
    "blanks": " \t\n tickets \t --json \n",
    "unterminated_single": "note T-1 'oops",
    "unterminated_double": 'note T-1 "oops',
    "trailing_backslash": "note T-1 oops\\",
    "control": "note T-1 a\x1b[2Jb",
    "control_quoted": "note T-1 'a\x07b'",
    "del": "note T-1 a\x7fb",
    "tab_in_quotes": "note T-1 'a\tb\nc'",
    "utf8": "note T-1 'caf\u00e9 \u2603'",
    "many_words": " ".join(["w"] * 65),
    "max_words": " ".join(["w"] * 64),
    "nul_words": "run\0T-1\0--\0sh\0-c\0echo 'a' \"b\"\0\0x\ty",
    "long_line": "note T-1 " + "x" * 8190,
}

# ---- the audit log (docs/audit-format.md) ----

GENESIS = "0" * 64


def audit_line(seq, actor, action, subject, details, prev, time="2026-11-23T19:04:05.123Z"):
    body = "{" + ",".join([
        '"seq":%d' % seq,
        '"time":' + json.dumps(time),
        '"actor":' + json.dumps(actor),
        '"action":' + json.dumps(action),
        '"subject":' + json.dumps(subject),
        '"details":' + json.dumps(details, separators=(",", ":")),
        '"prev":"%s"' % prev,
    ])
    digest = hashlib.sha256(body.encode()).hexdigest()
    return body + ',"hash":"%s"}\n' % digest, digest


def audit_log(entries):
    prev, lines = GENESIS, []
    for seq, (actor, action, subject, details) in enumerate(entries, 1):
        line, prev = audit_line(seq, actor, action, subject, details, prev)
        lines.append(line)
    return "".join(lines)


AUDIT_ENTRIES = [
    ("admin", "relay.init", "", {"fingerprint": "SHA256:" + "A" * 43, "listen": "0.0.0.0:7443"}),
    ("agent:D-1", "ticket.create", "T-1", {"title": "printer \u00e9 \\u0000", "tier": 1}),
    ("tech:alice", "session.start", "T-1", {"scopes": ["shell", "diag"], "nested": {"a": [1, None, True]}}),
    ("tech:bob", "evidence.add", "T-1", {"sha256": "ab" * 32, "size": 12345}),
]


def audit_seeds():
    log = audit_log(AUDIT_ENTRIES)
    lines = log.splitlines(keepends=True)
    seeds = {
        "valid": b"\x04" + log.encode(),
        "valid_fixup": b"\x02" + log.encode(),
        "partial_tail": b"\x04" + log.encode() + b'{"seq":5,"ti',
        "empty": b"\x04",
        "swapped": b"\x04" + (lines[0] + lines[2] + lines[1]).encode(),
        "edited": b"\x00" + log.replace("printer", "scanner").encode(),
        "edited_fixup": b"\x06" + log.replace("printer", "scanner").encode(),
        "not_ascii": b"\x02" + log.encode().replace(b"printer", b"pr\xc3\xa9nter"),
        "crlf": b"\x06" + log.replace("\n", "\r\n").encode(),
        "bad_members": b"\x06" + log.replace('"actor"', '"actr"').encode(),
        "dup_members": b"\x02" + log.replace('"subject":"T-1"', '"subject":"T-1","subject":"x"').encode(),
        "deep": b"\x02" + audit_line(1, "a", "b", "", {}, GENESIS)[0].replace(
            '"details":{}', '"details":' + "{\"a\":" * 40 + "1" + "}" * 40).encode(),
        "bad_time": b"\x02" + log.replace("19:04:05.123Z", "19:04:05Z").encode(),
        "seq_zero": b"\x02" + log.replace('{"seq":1,', '{"seq":0,').encode(),
        "seq_huge": b"\x02" + log.replace('{"seq":1,', '{"seq":99999999999999999999,').encode(),
        "garbage": b"\x04not json at all\n\n{}\n",
    }
    for name, (actor, action, subject, details) in zip(
            ["entry_init", "entry_ticket", "entry_session", "entry_evidence"], AUDIT_ENTRIES):
        seeds[name] = (b"\x01" + struct.pack("<Q", 1) + actor.encode() + b"\0" + action.encode()
                       + b"\0" + subject.encode() + b"\0"
                       + json.dumps(details, separators=(",", ":")).encode())
    seeds["entry_nul_in_details"] = (b"\x01" + struct.pack("<Q", 7) + b"tech:a\0note.add\0T-1\0"
                                     + b'{"text":"a\\u0000b"}')
    seeds["entry_del"] = b"\x01" + struct.pack("<Q", 2) + b"tech:a\x7f\0note.add\0T-1\0{}"
    seeds["entry_bad_action"] = b"\x01" + struct.pack("<Q", 3) + b"tech:a\0Note.Add\0T-1\0{}"
    seeds["entry_seq_max"] = b"\x01" + struct.pack("<Q", 2**63 - 1) + b"a\0b\0\0{}"
    seeds["entry_seq_over"] = b"\x01" + struct.pack("<Q", 2**63) + b"a\0b\0\0{}"
    return seeds


# ---- consent (docs/consent.md, docs/protocol.md 7.6) ----

POLICY = {
    "unattended": [
        {"roles": ["tier2", "tier3"], "scopes": ["diag", "exec", "shell", "fix"],
         "max_duration": "2h", "days": ["mon", "tue", "wed", "thu", "fri"],
         "from": "08:00", "to": "18:00"},
        {"roles": ["tier1"], "scopes": ["diag"], "from": "22:00", "to": "06:00", "days": ["fri"]},
        {"roles": ["tier4"], "scopes": ["observe"], "max_duration": 900},
    ],
    "consent_timeout": "2m",
}


def question(role, scopes, wday, hour, minute, asked):
    return bytes([role, scopes, wday, hour, minute]) + struct.pack(">I", asked)[1:]


def consent_seeds():
    text = json.dumps(POLICY, indent=2)
    seeds = {
        "policy_weekday": b"\x00" + question(1, 0b1101, 2, 9, 30, 3600) + text.encode(),
        "policy_night": b"\x00" + question(0, 1, 6, 3, 0, 86400) + text.encode(),
        "policy_outside": b"\x00" + question(1, 1, 0, 12, 0, 60) + text.encode(),
        "policy_empty": b"\x00" + question(0, 1, 1, 1, 1, 1) + b"{}",
        "policy_unknown_member": b"\x00" + question(0, 1, 1, 1, 1, 1)
        + b'{"unattended":[{"roles":["tier1"],"scopes":["diag"],"max_duraton":"1h"}]}',
        "policy_bad_day": b"\x00" + question(0, 1, 1, 1, 1, 1)
        + b'{"unattended":[{"roles":["tier1"],"scopes":["diag"],"days":["fr"]}]}',
        "policy_admin": b"\x00" + question(5, 1, 1, 1, 1, 1)
        + b'{"unattended":[{"roles":["admin"],"scopes":["diag"]}]}',
        "policy_same_time": b"\x00" + question(0, 1, 1, 1, 1, 1)
        + b'{"unattended":[{"roles":["tier1"],"scopes":["diag"],"from":"08:00","to":"08:00"}]}',
        "policy_int_timeout": b"\x00" + question(0, 1, 1, 1, 1, 1) + b'{"consent_timeout":86400}',
        "policy_not_json": b"\x00" + question(0, 1, 1, 1, 1, 1) + b'{"unattended":[',
    }
    request = {"type": "session.request", "ticket": "T-42", "technician": "alice",
               "role": "tier2", "scopes": ["shell"], "reason": "join T-42", "duration_s": 3600}
    seeds["request"] = b"\x01" + json.dumps(request).encode()
    for name, change in {
        "request_all_scopes": {"scopes": ["diag", "fix", "exec", "shell", "files", "observe"]},
        "request_dup_scope": {"scopes": ["diag", "diag"]},
        "request_escape": {"reason": "\x1b]0;PWNED\x07"},
        "request_nul": {"technician": "al\u0000ice"},
        "request_short": {"duration_s": 59},
        "request_long_reason": {"reason": "r" * 1025},
        "request_auditor": {"role": "auditor"},
    }.items():
        body = dict(request)
        body.update(change)
        seeds[name] = b"\x01" + json.dumps(body).encode()
    seeds["request_not_object"] = b"\x01[1,2]"
    return seeds


# ---- runbook metadata (docs/consent.md "Runbooks") ----

def runbook_seeds():
    here = os.path.dirname(os.path.abspath(__file__))
    shipped = os.path.join(here, "..", "..", "agent", "runbooks")
    args = {
        "stop-process": (0x00, {"PID": "1234", "SIGNAL": "KILL"}),
        "restart-service": (0x82, {"SERVICE": "cups.service"}),
        "clean-temp": (0x01, {"OLDER_THAN_DAYS": "7"}),
        "compress-logs": (0x82, {"DIR": "/var/log", "MIN_SIZE_MB": "50"}),
        "renew-dhcp": (0x02, {"INTERFACE": "eth0"}),
        "flush-dns": (0x03, {}),
    }
    seeds = {}
    for path in sorted(glob.glob(os.path.join(shipped, "*.json"))):
        name = os.path.basename(path)[:-5]
        with open(path, "rb") as f:
            meta = f.read()
        choice, given = args.get(name, (0, {}))
        seeds["shipped_" + name] = meta + b"\0" + bytes([choice]) + json.dumps(given).encode()
    base = {"name": "say-word", "description": "Say a word", "min_role": "tier1",
            "privileged": False, "timeout": "90s",
            "params": [{"name": "WORD", "pattern": "^[a-z]{1,16}$", "required": True,
                        "description": "the word"},
                       {"name": "TIMES", "pattern": "^a|b$", "description": "alternation"}]}
    variants = {
        "ok": ({}, 0x00, {"WORD": "hello", "TIMES": "a"}),
        "alternation": ({}, 0x00, {"WORD": "hello", "TIMES": "ab"}),
        "missing_required": ({}, 0x00, {"TIMES": "b"}),
        "unknown_param": ({}, 0x00, {"WORD": "x", "OTHER": "y"}),
        "not_string": ({}, 0x00, {"WORD": 5}),
        "nul_value": ({}, 0x00, {"WORD": "a\u0000b"}),
        "long_value": ({}, 0x00, {"WORD": "a" * 1025}),
        "args_array": ({}, 0x00, ["WORD", "x"]),
        "auditor": ({}, 0x04, {"WORD": "x"}),
        "privileged_tier2": ({"privileged": True}, 0x01, {"WORD": "x"}),
        "privileged_root": ({"privileged": True, "min_role": "tier3"}, 0x82, {"WORD": "x"}),
        "misspelt": ({"requried": True}, 0x00, {}),
        "bad_pattern": ({"params": [{"name": "X", "pattern": "^([a-$", "description": "x"}]}, 0, {}),
        "unanchored": ({"params": [{"name": "X", "pattern": "a", "description": "x"}]}, 0, {}),
        "escaped_dollar": ({"params": [{"name": "X", "pattern": "^a\\$", "description": "x"}]}, 0, {}),
        "dup_param": ({"params": [{"name": "X", "pattern": "^a$", "description": "x"},
                                  {"name": "X", "pattern": "^b$", "description": "y"}]}, 0, {}),
        "bad_timeout": ({"timeout": "25h"}, 0, {}),
        "bad_name": ({"name": "Say_Word"}, 0, {}),
        "control_description": ({"description": "a\x1b[2Jb"}, 0, {}),
        "backref": ({"params": [{"name": "X", "pattern": "^(a+)\\1$", "description": "x"}]},
                    0, {"X": "aaaa"}),
    }
    for name, (change, choice, given) in variants.items():
        meta = dict(base)
        meta.update(change)
        seeds[name] = json.dumps(meta).encode() + b"\0" + bytes([choice]) + json.dumps(given).encode()
    seeds["not_json"] = b'{"name":"x",\0\0{}'
    return seeds


# ---- enrollment strings (proto/enrollment.h, docs/protocol.md 7.2) ----

FINGERPRINT = "SHA256:" + base64.b64encode(hashlib.sha256(b"relay").digest()).decode().rstrip("=")

ENROLLMENT = {
    "dns": "tl1:K7QX-2M9P-4RTW-8HJC@relay.example.com:7443#" + FINGERPRINT,
    "ipv4": "tl1:K7QX2M9P4RTW8HJC@192.0.2.7:7443#" + FINGERPRINT,
    "ipv6": "tl1:k7qx 2m9p 4rtw 8hjc@[2001:db8::7]:7443#" + FINGERPRINT,
    "lookalikes": "tl1:K7QX-2M9P-4RTW-8HJO@relay:1#" + FINGERPRINT.replace("A", "l"),
    "port_zero": "tl1:K7QX-2M9P-4RTW-8HJC@relay:0#" + FINGERPRINT,
    "port_big": "tl1:K7QX-2M9P-4RTW-8HJC@relay:65536#" + FINGERPRINT,
    "no_brackets": "tl1:K7QX-2M9P-4RTW-8HJC@2001:db8::7:7443#" + FINGERPRINT,
    "short_code": "tl1:K7QX-2M9P-4RTW@relay:7443#" + FINGERPRINT,
    "hash_before_at": "tl1:K7QX#2M9P-4RTW-8HJC@relay:7443",
    "code_only": "k7qx-2m9p-4rtw-8hjc",
    "code_u": "K7QX-2M9P-4RTW-8HJU",
    "long_host": "tl1:K7QX-2M9P-4RTW-8HJC@" + "a" * 254 + ":7443#" + FINGERPRINT,
}

# ---- the console's config file (docs/technicians.md "The console") ----

CONFIG = {
    "full": "# tierline console\nrelay = relay.example.com:2222\nuser = alice\n"
            "identity = ~/.ssh/id_ed25519\nhost_key = " + FINGERPRINT + "\n",
    "ipv6": "relay = [2001:db8::1]:2200\n",
    "bare_ipv6": "relay = 2001:db8::1\nport = 22\n",
    "crlf": "relay = r\r\nport = 2222\r\n",
    "twice": "user = a\nuser = b\n",
    "unknown": "colour = blue\n",
    "no_equals": "relay relay.example.com\n",
    "no_value": "relay =\n",
    "nul": "user = a\0b\n",
    "long_line": "identity = /" + "x" * 5000 + "\n",
    "bad_port": "port = 65536\n",
    "bad_key": "host_key = SHA256:short\n",
    "control_identity": "identity = /tmp/a\x1bb\n",
    "comment_only": "\n# nothing\n   \n\t# still nothing\n",
}

# ---- relay.conf and agent.conf (docs/configuration.md) ----

SETTINGS = {
    "full": "# relay\ndata_dir = /var/lib/tierline\nlisten = 0.0.0.0:7443\n"
            "ssh_listen = [::1]:2222\nheartbeat_ms = 20000\nssh_max_connections = 256\n"
            "metrics_listen = off\nmetrics_public = no\nlog_level = debug\n",
    "crlf": "log_level = warn\r\nssh_idle_timeout_ms = 1000\r\n",
    "twice": "log_level = info\nlog_level = warn\n",
    "unknown": "colour = blue\n",
    "section": "[web]\nlisten = 127.0.0.1:8443\n",
    "bad_section": "[web\n",
    "no_equals": "listen 127.0.0.1:7443\n",
    "no_value": "listen =\n",
    "nul": "log_level = de\0bug\n",
    "long_line": "data_dir = /" + "x" * 5000 + "\n",
    "range": "ssh_max_connections = 65537\n",
    "relative": "data_dir = var/lib\n",
    "escape": "\x1b]0;title\x07 = 1\n",
    "c1_value": "data_dir = /a\xc2\x9bb\n",
    "comment_only": "\n# nothing\n   \n\t# still nothing\n",
    "desk": "sla_zone = Europe/Berlin\nsla_hours = mon-tue,thu-fri 09:00-17:00; wed 09:00-12:00 "
            "13:00-17:00\nsla_holidays = 2026-12-25, 2026-12-24 09:00-12:00\n"
            "sla_s2 = 1h 8h, tier3 - 16h\nsla_vendor = 24h\nretention_recordings = 90\n"
            "retention_events = forever\n",
    "desk_bad": "sla_hours = fri-mon 09:00-17:00\nsla_s1 = 8h 4h\nretention_events = 0\n",
    "desk_24x7": "sla_hours = 24x7\nsla_holidays = 2026-12-25\n",
    "desk": "sla_zone = Europe/Berlin\nsla_hours = mon-tue,thu-fri 09:00-17:00; wed 09:00-12:00 "
            "13:00-17:00\nsla_holidays = 2026-12-25, 2026-12-24 09:00-12:00\n"
            "sla_s2 = 1h 8h, tier3 - 16h\nsla_vendor = 24h\nretention_recordings = 90\n"
            "retention_events = forever\n",
    "desk_bad": "sla_hours = fri-mon 09:00-17:00\nsla_s1 = 8h 4h\nretention_events = 0\n",
    "desk_24x7": "sla_hours = 24x7\nsla_holidays = 2026-12-25\n",
}

# ---- the relay's command list, as the console reads and caches it (docs/console.md) ----

HELP_DOC = {"name": "alice", "role": "tier2", "commands": [
    {"name": "tickets", "usage": "tickets [--tier N] [--json]", "summary": "list tickets",
     "options": [{"name": "--tier", "value": "N", "help": "only tickets at tier N"},
                 {"name": "--json", "value": None, "help": "a JSON array"}],
     "example": "tickets --tier 2", "capability": "tickets.read"},
    {"name": "ticket show", "usage": "ticket show T-N [--json]", "summary": "a ticket",
     "options": [], "example": "ticket show T-1", "capability": "tickets.read"},
    {"name": "run", "usage": "run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]",
     "summary": "run a command on the machine",
     "options": [{"name": "--reason", "value": "TEXT", "help": "why"},
                 {"name": "--for", "value": "DURATION", "help": "how long"},
                 {"name": "--", "value": None, "help": "the end of run's options"}],
     "example": "run T-1 -- systemctl status cups\nrun T-1 ls", "capability": "run"}]}


def cache_doc(help_doc, **changes):
    cache = {"version": 1, "relay": "r", "port": 2222, "user": "alice",
             "fetched_ms": 1764795780123, "help": help_doc}
    cache.update(changes)
    return json.dumps(cache)


COMMANDS = {
    "help": b"\x00" + json.dumps(HELP_DOC).encode(),
    "built_in": b"\x00" + json.dumps({"commands": HELP_DOC["commands"][:1]}).encode(),
    "hostile": b"\x00" + json.dumps({"name": "a\x1b[5m", "commands": [
        {"name": "x", "usage": "x \x9b31m\u202e", "summary": "\x1b]0;PWNED\x07",
         "options": [{"name": "--y", "value": "V\tW", "help": "a\nb"}],
         "example": "x\x1b[2J\n\nx"}]}).encode(),
    "twice": b"\x00" + json.dumps({"commands": [HELP_DOC["commands"][0]] * 2}).encode(),
    "bad_name": b"\x00" + json.dumps({"commands": [{"name": "a b c", "usage": "u",
                                                     "summary": "s"}]}).encode(),
    "duplicate_key": b"\x00" + b'{"commands": [], "commands": []}',
    "not_json": b"\x00" + b'{"commands": [{"name": "x", "usage": ',
    "cache": b"\x01" + cache_doc(HELP_DOC).encode(),
    "cache_other_user": b"\x01" + cache_doc(HELP_DOC, user="mallory").encode(),
    "cache_version_2": b"\x01" + cache_doc(HELP_DOC, version=2).encode(),
    "cache_bad_help": b"\x01" + cache_doc({"commands": [{"name": "X"}]}).encode(),
}

# ---- small fields (proto/addr.c, proto/cli.c, relay/store/store.c, proto/keys.c) ----

ED25519_BLOB = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(range(32))
SSH_KEY = "ssh-ed25519 " + base64.b64encode(ED25519_BLOB).decode()

FIELDS = {
    "addr4": "127.0.0.1:7443",
    "addr6": "[::1]:2222",
    "addr_name": "relay.example.com:443",
    "addr_no_port": "relay.example.com",
    "addr_bare6": "::1:80",
    "addr_big_port": "1.2.3.4:65536",
    "uint": "0042",
    "uint_max": "18446744073709551615",
    "uint_19": "9999999999999999999",
    "duration_s": "90s",
    "duration_d": "1000000000d",
    "duration_bare": "3600",
    "ticket": "T-42",
    "device": "D-7",
    "ticket_zero": "T-0",
    "ticket_long": "T-12345678901234567",
    "key": SSH_KEY + " alice@laptop\n",
    "key_crlf": SSH_KEY + "\r\n",
    "key_bad_b64": SSH_KEY[:-2] + "A=",
    "key_rsa": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== bob",
    "fingerprint": FINGERPRINT,
}

# ---- redaction and probe text (docs/diagnostics.md) ----

REDACT = {
    "password": "password=hunter2 token: abc --secret x api_key='k'",
    "bearer": "Authorization: Bearer abc.def.ghi\nAuthorization: Basic dXNlcjpwYXNz",
    "url": "fetching https://user:p%40ss@example.com/path?token=abc&x=1",
    "pem": "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
           "-----END OPENSSH PRIVATE KEY-----\nafter",
    "pem_open": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "tokens": "AKIAIOSFODNN7EXAMPLE ghp_16C7e42F292c6912E7710c838347Ae178B4a "
              "xoxb-123456789012-abcdefghijkl eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "entropy": "value Zk9yVGhlV2luITIwMjQhU2VjcmV0S2V5ISFBQkM= and 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    "already": "password=[REDACTED] [REDACTED PRIVATE KEY]",
    "quotes": "secret=\"unterminated  password='also",
    "utf8": "mot de passe: caf\u00e9 password=\u00e9\u00e9\u00e9",
    "nul": "password=a\0b token=c",
}

PROBES = {
    "os_release": b"\x00# c\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
                  b"VERSION_ID='12'\nVERSION_CODENAME=\"say \\\"hi\\\"\"\ngarbage\nID=\n",
    "routes": b"\x01Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
              b"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
              b"wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n\0"
              b"00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
              b"fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n",
    "resolv": b"\x02# generated\nnameserver 10.0.0.53\nnameserver\t2001:db8::53 # primary\n"
              b"search corp.example lab.example\noptions edns0 timeout:2\nnameserver\n; c\n",
    "services": b"\x03cups.service loaded failed failed CUPS Scheduler\n"
                b"\xe2\x97\x8f nfs.mount    loaded failed failed   /mnt/nfs\nshort line\n",
    "logs": b"\x19partial\n" + b"".join(b"line %d\n" % i for i in range(60))
            + b"-- Boot 1234 --\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
            + b"y" * 1500,
    "logs_bad_utf8": b"\x04caf\xc3 \xff\xfe line\n\xed\xa0\x80 surrogate\n",
    "sockets_tcp": b"\x06  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
                   b"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0\n"
                   b"   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0 20 4 30 10 -1\n",
    "sockets_tcp6": b"\x45  sl  local_address                         remote_address                        st\n"
                    b"   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A "
                    b"00000000:00000000 00:00000000 00000000   105        0 3333 1 0 100 0 0 10 0\n",
}



def utmp(kind, user, line, host, pid, when):
    """One struct utmpx as glibc lays it out on x86_64 (384 bytes)."""
    return struct.pack("<hhi32s4s32s256shhiii4i20s", kind, 0, pid, line.encode(), b"",
                       user.encode(), host.encode(), 0, 0, 0, when, 0, 0, 0, 0, 0, b"")


# The first byte picks the parser of fuzz_probe_outputs.c (modulo 12).
PROBE_OUTPUTS = {
    "lpstat": b"\x00printer Office is idle.  enabled since Tue 01 Dec 2026 09:00:00 AM UTC\n"
              b"printer Broken disabled since Tue 01 Dec 2026 08:00:00 AM UTC -\n\tPaper jam\n"
              b"printer Lab now printing Lab-17.  enabled since x\n"
              b"system default destination: Office\n\0"
              b"Lab-17                  alice             1024   Tue 01 Dec 2026\n"
              b"Broken-3                carol              512   Tue 01 Dec 2026\n",
    "lpstat_no_jobs": b"\x30no system default destination\n",
    "proc_wireless": b"\x01Inter-| sta-|   Quality        |   Discarded packets\n"
                     b" face | tus | link level noise |  nwid  crypt   frag  retry   misc\n"
                     b" wlan0: 0000   54.  -56.  -256        0      0      0      0    157\n",
    "iw_dev": b"\x02phy#0\n\tInterface wlan0\n\t\tifindex 3\n\t\tssid Cafe Net\n"
              b"\t\ttype managed\n\t\tchannel 6 (2437 MHz), width: 20 MHz\n",
    "iw_link": b"\x03Connected to 00:11:22:33:44:55 (on wlan0)\n\tSSID: Cafe Net\n"
               b"\tfreq: 2437.0\n\tsignal: -61 dBm\n\ttx bitrate: 72.2 MBit/s\n",
    "iw_not_connected": b"\x03Not connected.\n",
    "nmcli": b"\x04 :Neighbours:40:11:wlp2s0\n*:Cafe\\:Net \\\\ 2:72:6:wlp2s0\n",
    "dpkg": b"\x05ii \nrc \niU \niF \nhi \niiR\n",
    "apt": b"\x06Listing...\n"
           b"openssl/stable-security,stable-security 3.0.15 amd64 [upgradable from: 3.0.14]\n"
           b"bash/stable 5.2.15-2+b7 amd64 [upgradable from: 5.2.15-2+b2]\n",
    "rpm": b"\x07bash\nglibc\nkernel\n",
    "dmesg": b"\x08kern  :emerg : [    0.205087] RDSEED32 is broken.\n"
             b"kern  :err   : [   12.000001] ata1: COMRESET failed\n"
             b"kern  :warn  : [    0.361033] amd_pstate: CPPC disabled.\n"
             b"               Please enable it.\n",
    "dmesg_cut": b"\x14rr   : [1] half a line\nkern  :err   : [2] whole\n",
    "kmsg": b"\xf93,42,5000123,-;ata1: COMRESET failed\n SUBSYSTEM=scsi\n",
    "kmsg_small": b"\x1512,7,1,c;from user space",
    "stat": b"\x0a4242 (tierline (x) y) S 1 4242 4242 0 -1 4194560 1520 0 0 0 12 3 0 0 20 0 3 0 "
            b"424242 12345 678\n",
    "utmp": b"\x0b" + utmp(7, "alice", "tty1", "", 700, 1796112000)
            + utmp(7, "bob", "pts/0", "198.51.100.7\x1b[2J", 801, 1796115600)
            + utmp(8, "carol", "pts/1", "", 900, 0),
}


# ---- the technicians' and admins' arguments (docs/technicians.md, relay/cmd/) ----

CMDARGS = {
    "tickets_filters": "tickets --tier 2 --status waiting-vendor --assignee bob --json",
    "tickets_mine_last": "tickets --assignee bob --mine",
    "tickets_bad_tier": "tickets --tier 04",
    "tickets_unknown": "tickets -x --bogus extra",
    "show": "ticket show T-42 --json",
    "show_extra": "ticket show T-42 T-43",
    "note": "ticket note T-1 the queue --json was 'stuck -- really'",
    "note_dashes": "ticket note T-1 -- --json --reason",
    "note_not_utf8": b"ticket note T-1 'caf\xe9'",
    "resolve_empty": "ticket resolve T-1 ''",
    "evidence_get": "evidence get T-9 0123abcdef",
    "evidence_get_upper": "evidence get T-9 0123ABCDEF",
    "diag": "diag T-1 --reason 'checking the network' --for 1h30m --json",
    "diag_options_first": "diag --for 15m T-1",
    "diag_bad_for": "diag T-1 --for 1h30",
    "run": "run T-1 --for 90m --reason why -- ls -l --reason",
    "run_no_dashes": "run T-1 --version --for 2m",
    "run_nothing": "run T-1 --reason x --",
    "join_observe": "join T-1 --observe --for 60",
    "fix": "fix T-1 restart-service SERVICE=cups --reason r UNIT=x.service",
    "fix_twice": "fix T-1 x A=1 A=2",
    "fix_bad_name": "fix T-1 Bad_Name",
    "runbooks": "runbooks T-1 --json",
    "help": "help --json",
    "whoami_extra": "whoami x",
    "admin_init": "x --data /tmp/d --listen 127.0.0.1:7443 --ssh-listen [::1]:2222 --json",
    "admin_enroll": "x --data d --ttl 15m --count 10000 --note 'for bob' --address h:1",
    "admin_ticket": "x show T-1 --data d -- --json",
    "admin_user": "x add bob --role tier2 --key bob.pub --data d",
    "admin_missing": "x --data",
}


# ---- the desk's SLA configuration and TZif zones (docs/desk.md "SLA clocks") ----

OFFICE_HOURS = {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}
SLA_TARGETS = {
    "S1": {"first_response": "30m", "resolution": "4h"},
    "S2": {"first_response": "1h", "resolution": "8h", "tier3": {"resolution": "16h"}},
    "S3": {"first_response": "4h", "resolution": "16h"},
    "S4": {"first_response": "6h", "resolution": "40h"},
}


def desk(calendar, targets=None, **more):
    sla = {"calendar": calendar, "targets": SLA_TARGETS if targets is None else targets}
    sla.update(more)
    return json.dumps({"sla": sla}, indent=1)


def tzif(transitions, types, footer, version=b"2", leaps=0):
    """A TZif file (RFC 8536): transitions [(time, type)], types [(utoff, isdst)]."""
    chars = b"LMT\0STD\0DST\0"

    def block(size):
        fmt = ">q" if size == 8 else ">i"
        data = b"".join(struct.pack(fmt, t) for t, _ in transitions)
        data += bytes(i for _, i in transitions)
        data += b"".join(struct.pack(">iBB", off, dst, 4 + 4 * dst) for off, dst in types)
        data += chars + b"\0" * (leaps * (size + 4))
        header = b"TZif" + (version if version != b"1" else b"\0") + bytes(15)
        header += struct.pack(">6I", 0, 0, leaps, len(transitions), len(types), len(chars))
        return header + data

    if version == b"1":
        return block(4)
    return block(4) + block(8) + b"\n" + footer + b"\n"


def desk_config_seeds():
    berlin = {"zone": "Europe/Berlin", "hours": OFFICE_HOURS,
              "holidays": ["2026-12-25", {"date": "2026-12-24", "hours": "09:00-12:00"}]}
    seeds = {
        "office": desk(berlin, vendor="24h"),
        "always": desk({"24x7": True, "zone": "Europe/Berlin"}),
        "always_utc": desk({"24x7": True}),
        "lunch": desk({"zone": "America/New_York",
                       "hours": {"mon": ["09:00-12:00", "13:00-17:00"], "sat": "10:00-14:00"}}),
        "night_shift": desk({"zone": "Australia/Lord_Howe",
                             "hours": {"mon": "22:00-24:00", "tue": ["00:00-06:00", "22:00-24:00"]}}),
        "dst_hours": desk({"zone": "America/Nuuk", "hours": {"sun": "00:00-24:00", "sat": "22:00-24:00"}}),
        "half_hour_zone": desk({"zone": "Asia/Kolkata", "hours": {"wed": "00:00-00:01"}},
                               {k: {"first_response": "1m", "resolution": "2m"} for k in SLA_TARGETS}),
        "sparse": desk({"zone": "UTC", "hours": {"sun": "09:00-09:01"}},
                       {k: {"first_response": "1m", "resolution": "8h"} for k in SLA_TARGETS}),
        "tiers": desk(berlin, {k: dict(v, tier1={"first_response": "10m"}, tier4={"resolution": "80h"})
                               for k, v in SLA_TARGETS.items()}),
        "unknown_zone": desk({"zone": "Mars/Olympus_Mons", "hours": OFFICE_HOURS}),
        "impossible_time": desk({"zone": "UTC", "hours": {"mon": "25:00-26:00"}}),
        "backwards": desk({"zone": "UTC", "hours": {"fri": "17:00-09:00"}}),
        "overlap": desk({"zone": "UTC", "hours": {"tue": ["09:00-12:00", "11:00-17:00"]}}),
        "unknown_day": desk({"zone": "UTC", "hours": {"monday": "09:00-17:00"}}),
        "holiday_twice": desk({"zone": "UTC", "hours": OFFICE_HOURS,
                               "holidays": ["2026-12-25", {"date": "2026-12-25"}]}),
        "bad_date": desk({"zone": "UTC", "hours": OFFICE_HOURS, "holidays": ["2026-02-29"]}),
        "no_hours": desk({"zone": "UTC"}),
        "unknown_severity": desk(berlin, dict(SLA_TARGETS, S5={"first_response": "1h", "resolution": "2h"})),
        "negative": desk(berlin, dict(SLA_TARGETS, S1={"first_response": "-30m", "resolution": "4h"})),
        "zero": desk(berlin, dict(SLA_TARGETS, S1={"first_response": "0m", "resolution": "4h"})),
        "days": desk(berlin, dict(SLA_TARGETS, S1={"first_response": "1h", "resolution": "2d"})),
        "first_after_resolution": desk(berlin, dict(SLA_TARGETS, S1={"first_response": "8h", "resolution": "4h"})),
        "duplicate_member": '{"sla": {"vendor": "1h", "vendor": "2h"}}',
        "not_json": '{"sla": {"calendar": ',
        "no_section": '{"queues": {}}',
        "escape_in_key": '{"sla": {"\\u001b[2J": 1}}',
    }
    seeds["tzif_rule"] = tzif([(1774832400, 2), (1792976400, 1)], [(3208, 0), (3600, 0), (7200, 1)],
                              b"CET-1CEST,M3.5.0,M10.5.0/3")
    seeds["tzif_v1"] = tzif([(0, 1)], [(0, 0), (-18000, 0)], b"", version=b"1")
    seeds["tzif_no_footer_rule"] = tzif([], [(19800, 0)], b"")
    seeds["tzif_leap"] = tzif([], [(0, 0)], b"UTC0", leaps=1)
    seeds["tzif_cut"] = tzif([(1774832400, 1)], [(3600, 0), (7200, 1)], b"CET-1")[:-9]
    return seeds


def classify_seeds():
    """The ticket's text, a NUL byte, the diagnostics document (docs/desk.md): a few of the
    labelled tickets, and documents the classifier must refuse."""
    fixture = os.path.join(os.path.dirname(ROOT), "..", "fixtures", "desk", "classify_tickets.json")
    with open(fixture, encoding="utf-8") as f:
        tickets = {t["id"]: t for t in json.load(f)["tickets"]}
    seeds = {}
    for tid in ("t01", "t04", "t11", "t12", "t23", "t29", "t30"):
        t = tickets[tid]
        doc = json.dumps(t["diagnostics"], separators=(",", ":"), ensure_ascii=False)
        seeds["ticket_" + tid] = (t["title"] + "\n" + t["description"]).encode() + b"\0" + doc.encode()
    seeds["text_only"] = "I can\u2019t log in, the printer won't print. Nobody can work!".encode()
    seeds["text_not_utf8"] = b"Dr\xfccker \xff\xfe jammed \x1b[2J locked\x07out"
    bare = b'{"schema":1,"sections":{}}'
    seeds["doc_bare"] = b"help\0" + bare
    seeds["doc_array"] = b"x\0[1,2]"
    seeds["doc_schema_2"] = b"x\0" + b'{"schema":2,"sections":{}}'
    seeds["doc_duplicate"] = b"x\0" + b'{"schema":1,"schema":1,"sections":{}}'
    seeds["doc_bad_percent"] = b"x\0" + (b'{"schema":1,"sections":{"disks":{"mounts":'
                                         b'[{"mount":"/var","used_percent":150}]}}}')
    seeds["doc_hostile_names"] = b"disk full\0" + json.dumps({"schema": 1, "sections": {
        "disks": {"mounts": [{"mount": "/mnt/\x1b]0;x\x07 %\n", "used_percent": 99}],
                  "unreadable": [{"mount": "/mnt/\u202e", "error": "Stale\u0085"}]},
        "services": {"failed_units": [{"unit": "getty@\x1b.service"}, {"unit": "a.mount"}]},
        "logs": {"lines": ["x[1]: segfault at 0", "\u2028 I/O error", "Out of memory"]},
        "processes": {"top_cpu": [{"name": "XMRig", "cpu_percent": 1e6}]}}}).encode()
    seeds["doc_timed_out"] = b"slow\0" + (b'{"schema":1,"sections":{"disks":'
                                         b'{"error":"timed out after 5000 ms"}}}')
    return seeds


def cond_seeds():
    """A condition, a NUL byte, a diagnostics report (docs/kb.md "Conditions")."""
    report = {"schema": 1, "sections": {
        "disks": {"mounts": [{"mount": "/", "used_percent": 41.5, "read_only": False},
                             {"mount": "/var", "used_percent": 97.31, "read_only": False}]},
        "memory": {"available_bytes": 104857600, "swap_used_percent": 80.5},
        "network": {"default_routes": [], "dns": {"nameservers": ["127.0.0.53"]},
                    "interfaces": [{"name": "eth0", "up": True, "addresses": ["169.254.3.4/16"]}]},
        "services": {"failed_units": [{"unit": "cups\x1b.service", "active": "failed"}]},
        "time": {"error": "timed out after 5000 ms"},
        "logs": {"lines": ["Out of memory: Killed process 1", "ok"]}}}
    doc = json.dumps(report, separators=(",", ":")).encode()
    conditions = {
        "any_where": 'any disks.mounts where (mount == "/var" and used_percent > 90)',
        "units": "memory.available_bytes < 200MiB and memory.swap_used_percent > 50%",
        "count": "count(network.default_routes) == 0 or missing network.dns.nameservers",
        "contains": 'network.dns.nameservers contains "127.0.0.53"',
        "value": 'any logs.lines where value contains "Out of memory"',
        "nested": 'any network.interfaces where (up == true and any addresses where '
                  'value startswith "169.254.")',
        "unknown": "not (time.synchronised == true) or time.synchronised == false",
        "all_none": "all disks.mounts where read_only == false and none services.failed_units "
                    'where active != "failed"',
        "exists": "exists time.synchronised or missing time.kernel.offset_us",
        "bad_field": "disks.mount == 1",
        "bad_type": 'memory.used_percent == "high"',
        "bad_string": 'system.hostname == "a\\nb',
        "deep": "not " * 20 + "exists cpu.model",
    }
    seeds = {name: text.encode() + b"\0" + doc for name, text in conditions.items()}
    seeds["alone"] = b"exists cpu.model"
    seeds["not_a_report"] = b"exists cpu.model\0[1,2]"
    return seeds


def article_seeds():
    """Knowledge-base articles (docs/kb.md "Articles"): good ones and the mistakes the parser
    names."""
    good = ("---\nid: var-nearly-full\ntitle: /var is nearly full\ncategory: disk\n"
            "when: any disks.mounts where (mount == \"/var\"\n  and used_percent > 90)\n"
            "runbook: clean-journal\nparam: KEEP=200M\nwords: full, space, logs\n---\n"
            "# /var is nearly full\n\nLogs live under /var.\n")
    return {
        "good": good,
        "crlf": good.replace("\n", "\r\n"),
        "recheck": ("---\nid: ntp\ntitle: Clock\ncategory: other\nwhen: time.synchronised == "
                    "false\nrecheck: time.synchronised != true\n---\nTurn on NTP.\n"),
        "no_header": "id: x\n",
        "open_header": "---\nid: x\n",
        "unknown_key": "---\nid: x\ncolour: red\n---\nx\n",
        "twice": "---\nid: x\nid: y\n---\nx\n",
        "bad_condition": "---\nid: x\ntitle: t\ncategory: disk\nwhen: disks.mount == 1\n---\nx\n",
        "param_alone": ("---\nid: x\ntitle: t\ncategory: disk\nwhen: exists cpu.model\n"
                        "param: A=1\n---\nx\n"),
        "control": "---\nid: x\n---\nbell \a\n",
        "not_utf8": b"---\nid: x\ntitle: caf\xe9\n---\nx\n",
    }


# ---- the user's tickets (docs/protocol.md §7.11-7.12) ----

def ticket_item(ticket="T-1", status="open", with_note=True, **changes):
    item = {"ticket": ticket, "title": "the printer says it is offline", "status": status,
            "updated": 1767261600000}
    if with_note:
        item["note"] = {"text": "Could you switch it on?", "by": "alice", "time": 1767261500000}
    item.update(changes)
    return item


def tickets_seeds():
    def doc(value):
        return json.dumps(value, ensure_ascii=False)
    return {
        "list": doc({"type": "result", "ok": True, "more": False,
                     "tickets": [ticket_item("T-4", "waiting-user"),
                                 ticket_item("T-2", "resolved", with_note=False)]}),
        "list_empty": doc({"type": "result", "ok": True, "more": True, "tickets": []}),
        "list_hostile": doc({"type": "result", "ok": True, "more": False,
                             "tickets": [ticket_item(title="\u001b]0;x\u0007 \u009b2J",
                                                     note={"text": "\u202eevil\n<b>&",
                                                           "by": "bob", "time": 0})]}),
        "list_long_note": doc({"more": False, "tickets": [ticket_item(
            note={"text": "\u00e9" * 600, "by": "a", "time": 1})]}),
        "list_twice": doc({"more": False, "tickets": [ticket_item(), ticket_item()]}),
        "list_bad_time": doc({"more": False, "tickets": [ticket_item(updated=-1)]}),
        "list_null_note": doc({"more": False, "tickets": [ticket_item(note=None)]}),
        "update": doc({"type": "ticket.update", "event": "note",
                       "ticket": ticket_item("T-9", "waiting-user")}),
        "update_resolved": doc({"type": "ticket.update", "event": "ticket.resolved",
                                "ticket": ticket_item("T-9", "resolved")}),
        "update_bad_event": doc({"type": "ticket.update", "event": "Note",
                                 "ticket": ticket_item()}),
        "not_json": "{\"tickets\": [",
    }


def sftp_packet(t, body, req_id=1):
    payload = bytes([t]) + (struct.pack(">I", req_id) if t != 1 else b"") + body
    return struct.pack(">I", len(payload)) + payload


def sftp_seeds():
    """Packet streams as OpenSSH 9's sftp and scp send them (proto/sftp.h)."""
    p = sftp_packet
    none = struct.pack(">I", 0)
    init = p(1, struct.pack(">I", 3))
    pull = init + b"".join([
        p(16, s("."), 1),
        p(7, s("T-1/etc/hostname"), 2),
        p(17, s("T-1/etc/hostname"), 3),
        p(3, s("T-1/etc/hostname") + struct.pack(">I", 1) + none, 4),
        p(5, s("\x00\x00\x00\x01") + struct.pack(">QI", 0, 32768), 5),
        p(5, s("\x00\x00\x00\x01") + struct.pack(">QI", 32768, 32768), 6),
        p(4, s("\x00\x00\x00\x01"), 7),
    ])
    push = init + b"".join([
        p(17, s("/T-1/tmp/"), 2),
        p(3, s("/T-1/tmp/fix.conf") + struct.pack(">I", 0x1A)
          + struct.pack(">II", 0x4, 0o100644), 3),
        p(6, s("\x00\x00\x00\x02") + struct.pack(">Q", 0) + s("listen 631\n"), 4),
        p(10, s("\x00\x00\x00\x02") + struct.pack(">IIII", 0x8, 0, 1764582000,
                                                     1764582000), 5),
        p(4, s("\x00\x00\x00\x02"), 6),
    ])
    listing = init + p(11, s("/"), 1) + p(12, s("d1"), 2) + p(12, s("d1"), 3) + p(4, s("d1"), 4)
    extended_attrs = p(9, s("/T-1/x") + struct.pack(">II", 0x80000000, 2)
                       + s("a") + s("b") + s("c") + s("d"))
    return {
        "pull": pull,
        "push": push,
        "listing": listing,
        "extended_attrs": extended_attrs,
        "extension": init + p(200, s("limits@openssh.com")) + p(200, s("expand-path@openssh.com")
                                                                + s("~/x")),
        "rename_symlink": p(18, s("/T-1/a") + s("/T-1/b")) + p(20, s("/T-1/l") + s("/etc")),
        "dotdot": p(17, s("/T-1/../../etc/passwd")) + p(7, s("..")) + p(7, s("T-1/a/../../..")),
        "control_chars": p(17, s("/T-1/tmp/a\x1b[2J\nb")) + p(17, s("/T-1/\xff\xfe")),
        "not_a_ticket": p(17, s("/etc/passwd")) + p(17, s("/T-0/x")) + p(17, s("/T-99999999999999999999/x")),
        "unknown_type": p(99, b"") + p(0, b""),
        "too_long": struct.pack(">I", 256 * 1024 + 1) + b"\x05",
        "zero_length": struct.pack(">I", 0),
        "string_overrun": p(17, struct.pack(">I", 1000) + b"/T-1"),
        "trailing": p(4, s("h") + b"x"),
        "many_extended": p(9, s("/T-1/x") + struct.pack(">II", 0x80000000, 0xFFFFFFFF)),
        "truncated": pull[:-5],
    }


def more_corpora():
    for name, line in CMDLINES.items():
        write("cmdline", name, line)
    for name, line in CMDARGS.items():
        write("cmdargs", name, line)
    for name, data in audit_seeds().items():
        write("audit", name, data)
    for name, data in consent_seeds().items():
        write("consent", name, data)
    for name, data in runbook_seeds().items():
        write("runbook", name, data)
    for name, text in ENROLLMENT.items():
        write("enrollment", name, text)
    for name, text in CONFIG.items():
        write("config", name, text)
    for name, text in SETTINGS.items():
        write("settings", name, text)
    for name, data in COMMANDS.items():
        write("commands", name, data)
    for name, text in FIELDS.items():
        write("fields", name, text)
    for name, text in REDACT.items():
        write("redact", name, text)
    for name, data in PROBES.items():
        write("probes", name, data)
    for name, data in PROBE_OUTPUTS.items():
        write("probe_outputs", name, data)
    for name, data in desk_config_seeds().items():
        write("desk_config", name, data)
    for name, data in classify_seeds().items():
        write("classify", name, data)
    for name, data in cond_seeds().items():
        write("cond", name, data)
    for name, data in article_seeds().items():
        write("article", name, data)
    for name, data in tickets_seeds().items():
        write("tickets", name, data)
    for name, data in sftp_seeds().items():
        write("sftp", name, data)


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
    more_corpora()


if __name__ == "__main__":
    main()
