#!/usr/bin/env python3
"""Text from another party reaches no terminal raw (docs/technicians.md "Text
from others"): a user opens a ticket whose title and description hold
terminal escapes, a machine enrolls under a hostile host name, technicians
add notes and give reasons with control characters; then every listing that
shows them (ssh, the console, the relay's admin commands, the user's
question on the machine) is read byte by byte. Real relay, real agent, the
stock OpenSSH client. Each case runs in its own process:

    hostile_text.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import queue
import re
import shlex
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import relay_agent
from relay_agent import RawAgent, frame, hello
import ssh_front
import technicians
from technicians import Desk
import tlcase
from tlcase import Failure, case, check, run, wait_for

BIN = None
WORK = None

# What a user typed: an OSC title change ended by BEL, clear screen, a raw
# 8-bit CSI byte (not UTF-8: "\udc9b" is how Python passes the byte 0x9b),
# a CSI as UTF-8 (U+009B), DEL, a right-to-left override, a carriage return
# that would overwrite the line, and a second line.
HOSTILE = ("\x1b]0;PWNED\x07\x1b[2J\udc9b31mred\u009b1mbold\x7fdel\u202eevil"
           "\rfake\nsecond line \x1b[5m")
# The title is the first line: it ends at the carriage return.
HOSTILE_TITLE_SHOWN = "\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31mred\\u009b1mbold\\x7fdel\\u202eevil"


def unsafe(data, allow="\n"):
    """What a terminal must not receive: [(offset, character)] of raw C0 controls other
    than allow, DEL, C1 controls (raw bytes or UTF-8), bytes that are not UTF-8, and the
    bidirectional overrides."""
    text = data.decode("utf-8", errors="surrogateescape")
    bad = []
    for i, c in enumerate(text):
        o = ord(c)
        if ((o < 0x20 and c not in allow) or o == 0x7f or 0x80 <= o <= 0x9f or
                0xdc80 <= o <= 0xdcff or 0x202a <= o <= 0x202e or 0x2066 <= o <= 0x2069):
            bad.append((i, c))
    return bad


def check_shown(what, data, needles, allow="\n"):
    """data (bytes) holds no raw control character and shows every needle (escaped text)."""
    bad = unsafe(data, allow)
    check(not bad, "%s: raw control characters %r in %r" % (what, bad[:8], data[:3000]))
    text = data.decode("utf-8", errors="replace")
    for needle in needles:
        check(needle in text, "%s: %r not shown in:\n%s" % (what, needle, text[:3000]))


def check_json(what, data, allow="\n"):
    """--json output: JSON, and safe on a terminal too."""
    bad = unsafe(data, allow)
    check(not bad, "%s: raw control characters %r in %r" % (what, bad[:8], data[:3000]))
    return json.loads(data)


def ssh_bytes(desk, user, *words, status=0):
    """One technician command, each word quoted for the relay's splitter: (stdout, stderr)."""
    code, out, err = desk.ssh(user, *[shlex.quote(w) for w in words], check_status=None,
                              text=False)
    check(code == status, "ssh %s %r: exit %d, expected %d\n%r\n%r" % (user, words, code, status,
                                                                      out, err))
    return out, err


def relay_admin(desk, *words, status=0):
    proc = subprocess.run([BIN + "/tierline-relay", *words, "--data", desk.relay.dir],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    check(proc.returncode == status, "tierline-relay %r: exit %d\n%r" % (words, proc.returncode,
                                                                        proc.stderr))
    return proc.stdout


def console_bytes(desk, user, *words):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env.update(HOME=WORK, XDG_CONFIG_HOME=os.path.join(WORK, "xdg"),
               TIERLINE_RELAY="127.0.0.1:%d" % desk.relay.ssh_port, TIERLINE_USER=user,
               TIERLINE_IDENTITY=desk.keys[user], TIERLINE_HOST_KEY=desk.relay.fingerprint)
    proc = subprocess.run([BIN + "/tierline", *words], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, env=env)
    check(proc.returncode == 0, "tierline %r: exit %d\n%r" % (words, proc.returncode,
                                                             proc.stderr))
    return proc.stdout


def open_hostile_ticket(desk):
    out, err = run(BIN + "/tierline-agent", "help", HOSTILE, "--state", desk.agent.dir,
                   "--wait-ms", "20000", "--no-wait", timeout=120)
    check(re.fullmatch(r"T-\d+", out.strip()), "help did not open a ticket: %r %r" % (out, err))
    return out.strip()


@case
def case_hostile_ticket_text_is_escaped_in_every_listing():
    desk = Desk(ticket=False)
    ticket = open_hostile_ticket(desk)
    # Stored as typed (the byte that is not UTF-8 as the text \x9b: JSON holds UTF-8 only).
    stored = desk.relay.ticket(ticket)
    check(stored["title"].startswith("\x1b]0;PWNED\x07\x1b[2J\\x9b31mred\u009b1mbold\x7f"),
          "the title was not stored as typed: %r" % stored["title"])
    check("\nsecond line \x1b[5m" in stored["description"],
          "the description was not stored as typed: %r" % stored["description"])

    # Technicians over ssh.
    out, _ = ssh_bytes(desk, "alice", "tickets")
    check_shown("ssh tickets", out, [ticket, "\\x1b]0;PWNED\\x07"])
    out, _ = ssh_bytes(desk, "alice", "ticket", "show", ticket)
    check_shown("ssh ticket show", out, [HOSTILE_TITLE_SHOWN, "evil\\rfake\nsecond line \\x1b[5m"])
    listed = check_json("ssh tickets --json", ssh_bytes(desk, "alice", "tickets", "--json")[0])
    check(listed["tickets"][0]["title"] == stored["title"],
          "--json changed the title: %r" % listed)
    shown = check_json("ssh ticket show --json",
                       ssh_bytes(desk, "alice", "ticket", "show", ticket, "--json")[0])
    check(shown["description"] == stored["description"], "--json changed the description")

    # Notes with what the relay's command line lets through: C1 as UTF-8, a tab, a newline
    # (the relay refuses C0 controls in command lines outright).
    ssh_bytes(desk, "bob", "ticket", "note", ticket, "note\u009b2J\tand\nfake line\u202e!")
    ssh_bytes(desk, "bob", "ticket", "resolve", ticket, "fixed\u009b0m")
    out, _ = ssh_bytes(desk, "alice", "ticket", "show", ticket)
    check_shown("ssh ticket show with notes", out, ["note\\u009b2J"])

    # The console.
    out = console_bytes(desk, "alice", "tickets", "--status", "resolved")
    check_shown("console tickets", out, ["\\x1b]0;PWNED\\x07"])
    out = console_bytes(desk, "alice", "ticket", "show", ticket)
    check_shown("console ticket show", out, [HOSTILE_TITLE_SHOWN, "note\\u009b2J"])
    check_json("console ticket show --json", console_bytes(desk, "alice", "ticket", "show",
                                                           ticket, "--json"))

    # The relay's own admin listings.
    out = relay_admin(desk, "tickets")
    check_shown("tierline-relay tickets", out, ["\\x1b]0;PWNED\\x07"])
    out = relay_admin(desk, "ticket", "show", ticket)
    check_shown("tierline-relay ticket show", out, [HOSTILE_TITLE_SHOWN, "second line \\x1b[5m",
                                                    "note\\u009b2J"])
    check_json("tierline-relay tickets --json", relay_admin(desk, "tickets", "--json"))
    check_json("tierline-relay ticket show --json",
               relay_admin(desk, "ticket", "show", ticket, "--json"))


def enroll_raw(relay, name, hostname):
    """Enrolls a hand-made peer that names itself hostname (bytes): an agent object whose
    key the relay now knows."""
    agent = relay_agent.Agent(name)
    string = relay.code()
    code = re.match(r"tl1:([^@]+)@", string).group(1)
    # The real agent makes the key and certificate; pointed at a closed port it stops there.
    closed = re.sub(r"@127\.0\.0\.1:\d+#", "@127.0.0.1:%d#" % tlcase.free_port(), string)
    agent.enroll(closed, expect=1)
    sock = relay_agent.tls_client(relay, agent)
    sock.settimeout(10)

    def text(value):
        return struct.pack(">I", len(value)) + value

    sock.sendall(hello() + frame(16, text(code.encode()) + text(hostname) +
                                 text(b"Hostile OS \x1b[31m")))
    frames = relay_agent.read_frames(sock)
    results = [payload for msg_type, payload in frames if msg_type == 17]
    check(results and struct.unpack(">I", results[0][:4])[0] == 0,
          "the relay did not enroll the peer: %r" % frames)
    sock.close()
    return agent


@case
def case_hostile_host_name_is_escaped_in_device_and_ticket_listings():
    desk = Desk(ticket=False)
    hostname = b"pc\x1b]0;OWNED\x07\x9b2J\xc2\x9b1m-and-a-rather-long-name"
    agent = enroll_raw(desk.relay, "rogue", hostname)
    raw = RawAgent(desk.relay, agent)
    answer = raw.control(5, {"type": "ticket.create", "request": "r-hostile",
                             "title": "from \x1b[2J the rogue"})
    check(answer.get("ok") is True, "the rogue machine's ticket was refused: %r" % answer)
    raw.sock.close()
    out = relay_admin(desk, "devices")
    check_shown("tierline-relay devices", out, ["pc\\x1b]0;OWNED\\x07", "…",
                                               "Hostile OS \\x1b[31m"])
    check_json("tierline-relay devices --json", relay_admin(desk, "devices", "--json"))
    out, _ = ssh_bytes(desk, "alice", "tickets")
    check_shown("ssh tickets with a hostile host", out, ["from \\x1b[2J the rogue"])
    check("…" in out.decode(), "the clipped host name does not end with …: %r" % out)
    out = relay_admin(desk, "tickets")
    check_shown("tierline-relay tickets with a hostile host", out, ["from \\x1b[2J the rogue"])
    out, _ = ssh_bytes(desk, "alice", "ticket", "show", answer["ticket"])
    check_shown("ssh ticket show with a hostile host", out, ["pc\\x1b]0;OWNED\\x07"])


@case
def case_question_with_hostile_reason_is_escaped_on_the_machine():
    desk = Desk()
    attend = subprocess.Popen([BIN + "/tierline-agent", "attend", "--state", desk.agent.dir],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in attend.stdout],
                     daemon=True).start()
    seen = b""

    def expect(needle):
        nonlocal seen
        deadline = time.monotonic() + 30
        while needle.encode() not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("attend never showed %r; it showed %r" % (needle, seen))
            try:
                seen += lines.get(timeout=left)
            except queue.Empty:
                pass

    try:
        expect("No terminal")
        reason = "please\u009b2J\ttab\nnew line\u202e"
        tech = desk.spawn("bob", "run", desk.ticket, "--reason", shlex.quote(reason), "--",
                          "true")
        question = desk.agent.question("bob")
        check(question["reason"] == reason, "the reason changed on the way: %r" % question)
        expect("question Q-")
        check_shown("attend", seen, ["please\\u009b2J\\ttab\\nnew line\\u202e"])
        out = subprocess.run([BIN + "/tierline-agent", "pending", "--state", desk.agent.dir],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60).stdout
        check_shown("pending", out, ["please\\u009b2J\\ttab\\nnew line\\u202e"])
        check_json("pending --json", subprocess.run(
            [BIN + "/tierline-agent", "pending", "--json", "--state", desk.agent.dir],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60).stdout)
        desk.agent.cli("deny", question["id"])
        _, err = tech.communicate(timeout=60)
        check(tech.returncode == 1 and b"declined" in err, "denied: %r" % err)
    finally:
        attend.kill()
        attend.wait()


@case
def case_console_escapes_what_a_compromised_relay_sends():
    # The relay's SSH front end with canned answers stands in for a relay that sends raw
    # control bytes: the console shows them escaped, lines and a split character intact.
    harness = ssh_front.Harness().start()
    try:
        host_key = os.path.join(WORK, "harness_host_key.pub")
        with open(host_key, "w") as f:
            f.write(open(harness.known_hosts).read().split(" ", 1)[1])
        out, _ = run("ssh-keygen", "-l", "-E", "sha256", "-f", host_key)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
        env.update(HOME=WORK, XDG_CONFIG_HOME=os.path.join(WORK, "xdg"),
                   TIERLINE_RELAY="127.0.0.1:%d" % harness.port, TIERLINE_USER="alice",
                   TIERLINE_IDENTITY=harness.keys["alice"], TIERLINE_HOST_KEY=out.split()[1])
        proc = subprocess.run([BIN + "/tierline", "tickets"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=120, env=env)
        check(proc.returncode == 0, "tierline tickets: exit %d %r" % (proc.returncode,
                                                                    proc.stderr))
        check_shown("console stdout", proc.stdout,
                    ["T-1 \\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m\\u009b1m\\x7f\\u202e ok … café\n",
                     "T-2 plain\tline\n"], allow="\n\t")
        check_shown("console stderr", proc.stderr, ["tierline: \\x1b[31mwarning\\x1b[0m\n"])
    finally:
        harness.stop()


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)
    ssh_front.setup_globals(os.path.join(bin_dir, "ssh_front_harness"), work)


if __name__ == "__main__":
    sys.exit(tlcase.main("hostile_text.py BIN_DIR", "tl-text-", setup_globals, track_popen=True,
                         home=True))
