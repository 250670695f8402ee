#!/usr/bin/env python3
"""Replaying a session and proving it unaltered (docs/technicians.md "Replaying a session",
docs/audit-format.md §21): a real relay and agent, a real joined session typed at a terminal, the
stock OpenSSH client. An auditor with SSH access and the relay's audit public key finds the
session, replays it, downloads the cast and the proofs, and checks them with python3 and openssl
alone (docs/audit_proof.py). Each case runs in its own process:

    replay.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import gzip
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import zlib

import relay_agent
import technicians
from technicians import Desk, Terminal
import tlcase
from tlcase import case, check, wait_for

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROOF_TOOL = os.path.join(SOURCE, "docs", "audit_proof.py")


def type_command(term):
    term.type("echo typed-$((6*7))\n")
    term.expect("typed-42")


def recorded_session(typing=type_command, **desk_options):
    """A desk whose ticket has one joined session, typed at a terminal (typing(term), then exit)
    and recorded; returns the desk, the session's grant and the recording's hash as its
    session.end entry gives it. desk_options go to Desk()."""
    desk = Desk(**desk_options)
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        typing(term)
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))
    ends = wait_for("session.end with its recording",
                    lambda: [e for e in desk.audit() if e["action"] == "session.end"
                             and "recording" in e["details"]])
    return desk, ends[0]["details"]["grant"], ends[0]["details"]["recording"]


def audit_pubkey(desk):
    out, _ = tlcase.run(relay_agent.BIN + "/tierline-relay", "audit", "pubkey", "--data",
                        desk.relay.dir)
    return out.splitlines()[0]


def wait_checkpoint_covers(desk, entries):
    """The session's end asks for a checkpoint: wait until the latest covers entries."""
    wait_for("a checkpoint covering %d entries" % entries,
             lambda: desk.ssh_json("audrey", "audit", "checkpoint")["size"] >= entries)


def write(name, data):
    path = os.path.join(technicians.WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def flip_in_recording(desk, sha256, old, new):
    """Changes the stored recording's content (old text for new, as long), leaving it a valid
    gzip and zlib stream stored under its old name."""
    path = os.path.join(desk.relay.dir, "evidence", sha256[:2], sha256)
    with open(path, "rb") as f:
        cast = gzip.decompress(zlib.decompress(f.read()))
    check(old in cast, "%r not in the recording" % old)
    with open(path, "wb") as f:
        f.write(zlib.compress(gzip.compress(cast.replace(old, new, 1))))


@case
def case_an_auditor_finds_replays_and_proves_a_session():
    desk, grant, recording = recorded_session()
    # The session's end ends its grant on the machine: its grant.end entry is a marker too.
    wait_for("the grant's end on the record",
             lambda: [e for e in desk.audit() if e["action"] == "grant.end" and
                      e["details"].get("grant") == grant])
    # Found by ticket, with nothing but SSH.
    found = desk.ssh_json("audrey", "audit", "search", "--ticket", desk.ticket)["entries"]
    sessions = {e["details"]["grant"] for e in found if e["action"] == "session.start"}
    check(sessions == {grant}, "sessions on %s: %r, expected %r" % (desk.ticket, sessions, grant))
    # Replayed: what was typed (its echo) and printed, and the markers, escaped.
    status, out, err = desk.ssh("audrey", "replay", grant, "--speed", "4", "--idle-limit", "0.5")
    check("echo typed-$((6*7))" in out and "typed-42" in out, "replay shows %r" % out[-2000:])
    check("[marker 1 at " in out and "audit: consent.granted by " in out,
          "no consent marker in %r" % out[-2000:])
    check(re.search(r"\[marker \d+ at \d+:[0-9.]+: audit: grant\.end by \S+ \(seq \d+\)\]",
                    out),
          "no grant-end marker in %r" % out[-2000:])
    replays = [e for e in desk.audit() if e["action"] == "session.replay"]
    check(len(replays) == 1 and replays[0]["actor"] == "tech:audrey" and
          replays[0]["details"]["outcome"] == "played" and
          replays[0]["details"]["recording"] == recording and replays[0]["subject"] == desk.ticket,
          "the replay's own entry: %r" % [e for e in desk.audit() if "replay" in e["action"]])
    # At a terminal too (ssh -t), where q stops it; here it plays to its end.
    term = Terminal(desk.ssh_argv("audrey", tty=True) + ["replay", grant, "--idle-limit", "0.2"])
    try:
        term.expect("typed-42")
        check(term.wait() == 0, "replay at a terminal: %r" % term.seen[-500:])
        check(b"[marker 1 at " in term.seen, "no marker at the terminal: %r" % term.seen[-500:])
    finally:
        term.kill()
    # --search lists where the text was printed, and the markers; it plays nothing.
    found = json.loads(desk.ssh("audrey", "replay", grant, "--search", "typed-42", "--json")[1])
    check(len(found["matches"]) >= 1 and found["recording"] == recording,
          "--search: %r" % found)
    markers = found["markers"]
    check(markers and markers[0]["source"] == "audit" and
          markers[0]["text"].startswith("audit: consent.granted"), "markers: %r" % markers)
    # --from a marker, by number or by text: the replay starts with it, and what came before
    # it is not shown.
    last = markers[-1]
    for chosen in (str(last["index"]), last["text"][-12:]):
        # SSH sends one command line: a text with spaces is quoted to stay one word.
        _, late, _ = desk.ssh("audrey", "replay", grant, "--from", shlex.quote(chosen))
        check(late.lstrip("\r\n").startswith("[marker %d at " % last["index"]),
              "--from %s: %r" % (chosen, late[:300]))
        if last["time"] > found["matches"][-1]["time"]:
            check("typed-42" not in late, "--from %s shows what came before: %r" % (chosen, late))
    # The cast, for any player: the recording's events with the log's markers added.
    _, cast, _ = desk.ssh("audrey", "replay", grant, "--cast", text=False)
    lines = cast.decode().splitlines()
    check(json.loads(lines[0])["version"] == 2, "not asciicast v2: %r" % lines[0])
    # The recording, byte for byte, hashes to what its entry says; the cast is its content.
    _, blob, _ = desk.ssh("audrey", "evidence", "get", desk.ticket, recording, text=False)
    check(hashlib.sha256(blob).hexdigest() == recording, "the recording's bytes hash elsewhere")
    own = gzip.decompress(blob).decode().splitlines()
    added = [line for line in lines if line.startswith("[") and '"audit: ' in line]
    check([line for line in lines if line not in added] == own and len(added) >= 1,
          "the cast is not the recording plus markers: %d lines, %d added" % (len(lines),
                                                                              len(added)))
    # Every entry of the session proved with python3 and openssl alone.
    entries = desk.audit()
    wait_checkpoint_covers(desk, max(e["seq"] for e in entries
                                     if e["details"].get("grant") == grant))
    _, out, _ = desk.ssh("audrey", "audit", "prove", "--session", grant, "--json")
    proofs = json.loads(out)["proofs"]
    actions = [json.loads(p["entry"])["action"] for p in proofs]
    for wanted in ("consent.granted", "session.start", "session.end", "session.recorded",
                   "grant.end"):
        check(wanted in actions, "%s not proved: %r" % (wanted, actions))
    vkey = audit_pubkey(desk)
    for i, proof in enumerate(proofs):
        path = write("proof-%d.json" % i, json.dumps(proof).encode())
        proc = subprocess.run([sys.executable, PROOF_TOOL, path, vkey], capture_output=True,
                              timeout=60)
        check(proc.returncode == 0 and b"proof OK" in proc.stdout, "proof %d: %r" % (i, proc))
    named = [json.loads(p["entry"]) for p in proofs
             if json.loads(p["entry"])["action"] == "session.recorded"]
    check(named[0]["details"]["sha256"] == hashlib.sha256(blob).hexdigest(),
          "the proved entry does not name the recording's bytes")


@case
def case_input_typed_while_echo_is_off_is_a_marker_and_never_shown():
    """`read -s` turns echo off: what is typed then is recorded as "input hidden: N bytes", a
    marker of the replay, and the replay shows neither it nor the secret (as
    integ.technicians.case_a_password_typed_in_a_session_is_never_recorded records it)."""
    password = "Zq7-hunter-61x"

    desk, grant, _ = recorded_session(typing=lambda term: technicians.type_a_secret(term, password))
    hidden = "input hidden: %d bytes" % (len(password) + 1)
    _, out, _ = desk.ssh("audrey", "replay", grant, "--speed", "4", "--idle-limit", "0.5")
    check(re.search(r"\[marker \d+ at \d+:[0-9.]+: %s\]" % hidden, out) and
          "got-%d" % len(password) in out,
          "no %r marker in %r" % (hidden, out[-2000:]))
    check(password not in out, "the replay shows the secret")
    found = json.loads(desk.ssh("audrey", "replay", grant, "--search", "got-", "--json")[1])
    check([m for m in found["markers"] if m["text"] == hidden and m["source"] != "audit"],
          "markers: %r" % found["markers"])
    # --from the marker, by its text: the replay starts there.
    _, late, _ = desk.ssh("audrey", "replay", grant, "--from", shlex.quote("input hidden"))
    first = late.lstrip("\r\n").split("\n", 1)[0]
    check(first.startswith("[marker ") and hidden in first,
          "--from input hidden: %r" % late[:300])


@case
def case_a_byte_flipped_in_a_recording():
    desk, grant, recording = recorded_session()
    flip_in_recording(desk, recording, b"typed-42", b"typed-43")
    status, out, err = desk.ssh("audrey", "replay", grant, check_status=1)
    check(out == "" and recording in err and "does not match" in err, "refusal: %r" % err)
    stored = err.split("hash to ")[1].split()[0]
    check(len(stored) == 64 and stored != recording, "the stored hash is not named: %r" % err)
    _, out, err = desk.ssh("audrey", "replay", grant, "--force")
    check("WARNING" in err and "typed-43" in out, "--force: %r / %r" % (err, out[-500:]))
    outcomes = [e["details"]["outcome"] for e in desk.audit() if e["action"] == "session.replay"]
    check(outcomes == ["refused", "forced"], "replay entries: %r" % outcomes)
    status, out, err = desk.ssh("audrey", "audit", "verify", check_status=1)
    check("recording BROKEN" in err and recording in err, "audit verify: %r" % err)
    verdict = json.loads(desk.ssh("audrey", "audit", "verify", "--json", check_status=1)[1])
    check(not verdict["ok"] and verdict["recordings"]["bad"][0]["sha256"] == recording,
          "verdict: %r" % verdict)


@case
def case_bad_input_is_refused_and_changes_nothing():
    desk, grant, _ = recorded_session()
    # A session without a recording: a command run.
    tech = desk.spawn("bob", "run", desk.ticket, "--", "true")
    desk.agent.cli("approve", desk.agent.question("bob")["id"])
    tech.communicate(timeout=60)
    check(tech.returncode == 0, "the run: exit %d" % tech.returncode)
    before = open(os.path.join(desk.relay.dir, "audit.log"), "rb").read()
    cases = [
        (["no-such-session"], 1, "no session no-such-session"),
        ([grant, "--speed", "0"], 2, "--speed wants"),
        ([grant, "--speed", "-1"], 2, "--speed wants"),
        ([grant, "--speed", "1e9"], 2, "--speed wants"),
        ([grant, "--speed", "1000"], 2, "--speed wants"),
        ([grant, "--idle-limit", "0"], 2, "--idle-limit wants"),
        ([grant, "--idle-limit", "soon"], 2, "--idle-limit wants"),
        ([grant, "--from", "no-such-marker"], 2, "no marker"),
        ([grant, "--from", "99"], 2, "no marker"),
        ([grant, "--search", "x", "--cast"], 2, "one or the other"),
        (["bad/grant"], 2, "SESSION is"),
    ]
    for words, status, text in cases:
        got, out, err = desk.ssh("audrey", "replay", *words, check_status=None)
        check(got == status and text in err and out == "",
              "replay %r: exit %d, expected %d with %r; stderr %r" % (words, got, status, text,
                                                                     err))
    runs = [e["details"]["grant"] for e in desk.audit() if e["action"] == "session.start"
            and e["details"].get("grant") != grant]
    if runs:
        got, _, err = desk.ssh("audrey", "replay", runs[0], check_status=None)
        check(got == 1 and "has no recording" in err, "a run: exit %d, %r" % (got, err))
    after = open(os.path.join(desk.relay.dir, "audit.log"), "rb").read()
    check(after.startswith(before), "the audit log was rewritten")
    # Each ssh command logs in (login.ok); the run's end asks for a checkpoint. Nothing else.
    added = {json.loads(line)["action"] for line in after[len(before):].decode().splitlines()}
    check(added <= {"login.ok", "audit.checkpoint"}, "bad input was recorded: %r" % added)


@case
def case_a_replay_is_withheld_while_the_log_cannot_be_written():
    desk, grant, _ = recorded_session()
    control = os.path.join(technicians.WORK, "audrey.control")
    base = desk.ssh_argv("audrey")[:-1]

    def logins():
        return len([e for e in desk.audit()
                    if e["action"] == "login.ok" and e["actor"] == "tech:audrey"])

    before = logins()
    # Logged in before the log is spoiled (a login is itself audited), on a shared connection.
    master = subprocess.Popen(base + ["-o", "ControlMaster=yes", "-o", "ControlPath=" + control,
                                      "-N", "audrey@127.0.0.1"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shared = base + ["-o", "ControlPath=" + control, "audrey@127.0.0.1"]
    log = os.path.join(desk.relay.dir, "audit.log")
    try:
        wait_for("the shared connection", lambda: os.path.exists(control))
        # Its login is in the log before the log is spoiled: the relay writes it once the
        # client is in, which may be after the client has made its control socket.
        wait_for("audrey's login in the audit log", lambda: logins() > before)
        # The last line altered: the relay refuses to write after a line that fails its check.
        with open(log, "rb") as f:
            data = f.read()
        last = data.rstrip(b"\n").rfind(b"\n") + 1
        altered = data[:last] + data[last:].replace(b'"time":"2', b'"time":"1', 1)
        check(altered != data, "the last line has no time")
        os.rename(log, log + ".away")
        with open(log, "wb") as f:
            f.write(altered)
        for words in ([], ["--cast"], ["--search", "typed"]):
            proc = subprocess.run(shared + ["replay", grant] + words, capture_output=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
            err = proc.stderr.decode(errors="replace")
            check(proc.returncode == 1 and proc.stdout == b"" and "cannot be recorded" in err,
                  "replay %r without a log: %d %r %r" % (words, proc.returncode,
                                                         proc.stdout[:200], err))
        os.rename(log + ".away", log)
    finally:
        master.kill()
        master.wait(timeout=20)


@case
def case_the_console_writes_a_cast_file():
    desk, grant, recording = recorded_session()
    path = os.path.join(technicians.WORK, "session.cast")
    status, out, err = desk.console("audrey", "replay", grant, "--output", path)
    check(status == 0, "tierline replay --output: %d %r" % (status, err))
    with open(path) as f:
        lines = f.read().splitlines()
    check(json.loads(lines[0])["version"] == 2 and any("typed-42" in line for line in lines),
          "the cast file: %r" % lines[:3])
    status, out, err = desk.console("audrey", "replay", grant, "--output", "")
    check(status == 2, "an empty file name: %d %r" % (status, err))


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("replay.py BIN_DIR", "tl-replay-", setup_globals, track_popen=True,
                         home=True))
