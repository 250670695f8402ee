#!/usr/bin/env python3
"""Retention (docs/desk.md "Retention", docs/audit-format.md §22): a real relay and agent, a ticket
with a recorded session and a command's transcript, a retention of days in DATA/desk.json and
`tierline-relay retention prune --now` judging ages at a later date (nothing sleeps for days).
Pruned payloads leave their tombstones and verification passes, counting them (audit verify over
SSH, audit-verify on the relay host, the bundle with docs/verify_bundle.py); a payload deleted by
hand fails; a held ticket keeps its payloads; replay says a recording was pruned. Each case runs
in its own process:

    retention.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys

import relay_agent
import audit_export
import replay
import technicians
import tlcase
from tlcase import case, check, run, wait_for

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
VERIFIER = os.path.join(SOURCE, "docs", "verify_bundle.py")
DESK_SLA = {"calendar": {"24x7": True},
            "targets": {"S1": {"first_response": "30m", "resolution": "4h"},
                        "S2": {"first_response": "1h", "resolution": "8h"},
                        "S3": {"first_response": "4h", "resolution": "24h"},
                        "S4": {"first_response": "6h", "resolution": "72h"}}}


def relay_cli(*words, expect=0):
    return run(relay_agent.BIN + "/tierline-relay", *words, expect=expect)


def later(days):
    """A UTC time that many days from now, as --now takes it."""
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_retention(desk, retention):
    with open(os.path.join(desk.relay.dir, "desk.json"), "w") as f:
        json.dump({"sla": DESK_SLA, "retention": retention}, f)


def prune(desk, *words, expect=0):
    return relay_cli("retention", "prune", "--data", desk.relay.dir, *words, expect=expect)


def object_path(desk, sha256):
    return os.path.join(desk.relay.dir, "evidence", sha256[:2], sha256)


def ticket_with_a_recording_and_a_transcript():
    """The desk, the session's grant, the recording's hash, the transcript's hash, the
    diagnostics' hash."""
    desk, grant, recording = replay.recorded_session()
    tech = desk.spawn("bob", "run", desk.ticket, "--", "echo", "kept-for-a-while")
    desk.agent.cli("approve", desk.agent.question("bob")["id"])
    tech.communicate(timeout=60)
    check(tech.returncode == 0, "the run: exit %d" % tech.returncode)
    command = wait_for("the transcript on the ticket", lambda: desk.evidence_of_kind("command"))
    diagnostics = desk.evidence_of_kind("diagnostics")
    check(len(diagnostics) == 1, "diagnostics: %r" % diagnostics)
    return desk, grant, recording, command[0]["hash"], diagnostics[0]["hash"]


def audit_verify_ssh(desk, status):
    got, out, err = desk.ssh("audrey", "audit", "verify", check_status=None)
    check(got == status, "audit verify: exit %d, expected %d\n%s%s" % (got, status, out, err))
    verdict = json.loads(desk.ssh("audrey", "audit", "verify", "--json", check_status=status)[1])
    return out + err, verdict


def audit_verify_host(desk, status):
    out, err = relay_cli("audit-verify", "--data", desk.relay.dir, expect=status)
    verdict = json.loads(relay_cli("audit-verify", "--data", desk.relay.dir, "--json",
                                   expect=status)[0])
    return out + err, verdict


@case
def case_pruned_payloads_verify_with_their_tombstones():
    desk, grant, recording, transcript, diagnostics = ticket_with_a_recording_and_a_transcript()
    set_retention(desk, {"recordings": 30, "transcripts": 30, "events": "forever"})
    before = desk.audit()
    # Not yet old enough: nothing goes.
    out, _ = prune(desk, "--now", later(29))
    check("0 references tombstoned, 0 payloads removed" in out, "at 29 days: %r" % out)
    # --dry-run lists what would go, and changes nothing.
    out, _ = prune(desk, "--dry-run", "--now", later(31))
    check(recording in out and transcript in out and diagnostics not in out and
          "2 references would be tombstoned, 2 payloads would be removed" in out, "--dry-run: %r" % out)
    check(os.path.exists(object_path(desk, recording)), "--dry-run removed the recording")
    check([e["action"] for e in desk.audit()[len(before):]] == [],
          "--dry-run wrote %r" % desk.audit()[len(before):])
    # The prune: a tombstone per reference, then the payloads go; the leaves stay.
    out, _ = prune(desk, "--now", later(31))
    check("2 references tombstoned, 2 payloads removed" in out, "prune: %r" % out)
    check(not os.path.exists(object_path(desk, recording)) and
          not os.path.exists(object_path(desk, transcript)) and
          os.path.exists(object_path(desk, diagnostics)), "the wrong payloads went")
    after = desk.audit()
    check(after[:len(before)] == before, "entries before the prune changed")
    tombstones = [e for e in after if e["action"] == "evidence.prune"]
    check(sorted(t["details"]["sha256"] for t in tombstones) == sorted([recording, transcript]),
          "tombstones: %r" % tombstones)
    for t in tombstones:
        check(t["subject"] == desk.ticket and t["actor"] == "admin" and
              t["details"]["policy"]["days"] == 30 and t["details"]["class"] in
              ("recordings", "transcripts") and t["details"]["pruned"].startswith(later(31)[:10]),
              "tombstone: %r" % t)
    # Pruning again finds nothing more.
    out, _ = prune(desk, "--now", later(31))
    check("0 references tombstoned, 0 payloads removed" in out, "a second prune: %r" % out)
    # Verification passes and counts them: over SSH and on the relay host.
    said, verdict = audit_verify_ssh(desk, 0)
    check("2 payloads pruned by retention" in said, "audit verify: %r" % said)
    check(verdict["ok"] and verdict["payloads"]["pruned"] == 2 and
          verdict["recordings"]["pruned"] == 1, "audit verify --json: %r" % verdict)
    said, verdict = audit_verify_host(desk, 0)
    check("2 payloads pruned by retention" in said and verdict["payloads"]["pruned"] == 2,
          "audit-verify: %r %r" % (said, verdict))
    # Replay says the recording was pruned, when and by which policy.
    got, out, err = desk.ssh("audrey", "replay", grant, check_status=None)
    check(got == 1 and out == "" and "was pruned by retention on " + later(31)[:10] in err and
          "recordings kept 30 days" in err, "replay: %d %r" % (got, err))
    # The bundle (the export asks for a checkpoint that covers the tombstones) carries them,
    # lists the pruned items without their files, and verifies with python3.
    _, blob, err = desk.ssh("audrey", "audit", "export", "--ticket", desk.ticket, text=False)
    path = os.path.join(technicians.WORK, "pruned.tar")
    with open(path, "wb") as f:
        f.write(blob)
    vkey = replay.audit_pubkey(desk)
    proc = subprocess.run([sys.executable, VERIFIER, path, "--key", vkey], capture_output=True,
                          text=True, timeout=120)
    check(proc.returncode == 0 and "2 payloads pruned by retention" in proc.stdout,
          "verify_bundle.py: %d %s %s" % (proc.returncode, proc.stdout, proc.stderr))
    timeline = json.loads(audit_export.file_of(blob, "timeline.json"))
    gone = {item["sha256"]: item for item in timeline["evidence"] if "path" not in item}
    check(sorted(gone) == sorted([recording, transcript]) and
          gone[recording]["pruned"]["policy"]["days"] == 30, "timeline.json: %r" % gone)
    entries = audit_export.file_of(blob, "audit/entries.log").decode()
    check(entries.count('"action":"evidence.prune"') == 2, "the bundle's tombstones: %r" % entries)
    # Without its tombstone (its line and its proof taken out), a pruned item fails the verifier.
    lines = entries.splitlines(True)
    drop = [k for k, line in enumerate(lines)
            if '"evidence.prune"' in line and transcript in line]
    proofs = json.loads(audit_export.file_of(blob, "audit/proofs.json"))
    proofs["proofs"] = [p for k, p in enumerate(proofs["proofs"]) if k not in drop]
    stripped = audit_export.rewrite(blob, "audit/entries.log", lambda data: "".join(
        line for k, line in enumerate(lines) if k not in drop).encode())
    stripped = audit_export.rewrite(stripped, "audit/proofs.json",
                                    lambda data: json.dumps(proofs).encode())
    audit_export.WORK = technicians.WORK
    audit_export.expect_fails(stripped, "no-tombstone", vkey, "timeline.json: missing: " +
                              transcript)
    # A payload deleted by hand, with no tombstone: every verifier fails, naming it.
    os.chmod(os.path.dirname(object_path(desk, diagnostics)), 0o700)
    os.remove(object_path(desk, diagnostics))
    said, verdict = audit_verify_ssh(desk, 1)
    check(diagnostics in said and "no tombstone" in said, "audit verify: %r" % said)
    check(not verdict["ok"] and verdict["payloads"]["bad"][0]["sha256"] == diagnostics,
          "audit verify --json: %r" % verdict)
    said, verdict = audit_verify_host(desk, 1)
    check(diagnostics in said and "no tombstone" in said and not verdict["ok"],
          "audit-verify: %r" % said)


@case
def case_a_held_ticket_keeps_its_payloads():
    desk, grant, recording, transcript, _ = ticket_with_a_recording_and_a_transcript()
    set_retention(desk, {"recordings": 1, "transcripts": 1, "events": 1})
    before = len(desk.audit())
    # Only admins and leads hold a ticket; auditors change nothing; each refusal is audited.
    got, _, err = desk.ssh("bob", "ticket", "hold", desk.ticket, "on", "--reason", "x",
                           check_status=None)
    check(got == 77 and "only a lead or an admin" in err, "bob: %d %r" % (got, err))
    got, _, err = desk.ssh("audrey", "ticket", "hold", desk.ticket, "on", "--reason", "x",
                           check_status=None)
    check(got == 77, "the auditor: %d %r" % (got, err))
    denied = [e for e in desk.audit()[before:] if e["action"] == "access.denied"]
    check([e["actor"] for e in denied] == ["tech:bob", "tech:audrey"], "denials: %r" % denied)
    got, _, err = desk.ssh("adam", "ticket", "hold", "T-999", "on", "--reason", "x",
                           check_status=None)
    check(got == 1 and "no ticket T-999" in err, "an unknown ticket: %d %r" % (got, err))
    got, _, err = desk.ssh("adam", "ticket", "hold", desk.ticket, "on", check_status=None)
    check(got == 2 and "--reason" in err, "no reason: %d %r" % (got, err))
    desk.ssh("adam", "ticket", "hold", desk.ticket, "on", "--reason", "litigation-2026-114")
    holds = [e for e in desk.audit() if e["action"] == "ticket.hold"]
    check(len(holds) == 1 and holds[0]["subject"] == desk.ticket and
          holds[0]["details"] == {"hold": "on", "reason": "litigation-2026-114"},
          "ticket.hold: %r" % holds)
    _, shown, _ = desk.ssh("alice", "ticket", "show", desk.ticket)
    check("on legal hold since" in shown and "litigation-2026-114" in shown, "show: %r" % shown)
    check(desk.ssh_json("alice", "ticket", "show", desk.ticket)["hold"]["reason"] ==
          "litigation-2026-114", "ticket show --json has no hold")
    got, _, err = desk.ssh("adam", "ticket", "hold", desk.ticket, "on", "--reason", "again",
                           check_status=None)
    check(got == 1 and "already on legal hold" in err, "held twice: %d %r" % (got, err))
    # Held: nothing goes, however old.
    out, _ = prune(desk, "--now", later(4000))
    check("0 references tombstoned, 0 payloads removed" in out, "held prune: %r" % out)
    check(os.path.exists(object_path(desk, recording)), "a held recording went")
    # Lifted: the next prune takes them.
    desk.ssh("adam", "ticket", "hold", desk.ticket, "off", "--reason", "settled")
    check(desk.ssh_json("alice", "ticket", "show", desk.ticket)["hold"] is None, "still held")
    out, _ = prune(desk, "--now", later(2))
    check("3 references tombstoned, 3 payloads removed" in out, "after the hold: %r" % out)
    check(not os.path.exists(object_path(desk, recording)), "the recording stayed")


@case
def case_bad_input_is_refused_and_nothing_is_lost():
    desk, grant, recording, transcript, _ = ticket_with_a_recording_and_a_transcript()
    log = os.path.join(desk.relay.dir, "audit.log")
    before = open(log, "rb").read()
    for retention, said in (({"recordings": 0}, "retention.recordings: wants a whole number"),
                            ({"recordings": "soon"}, "retention.recordings: wants"),
                            ({"logs": 3}, "retention.logs: unknown class"),
                            ([30], "retention: wants an object")):
        set_retention(desk, retention)
        _, err = prune(desk, "--now", later(400), expect=1)
        check(os.path.join(desk.relay.dir, "desk.json") in err and said in err,
              "%r: %r" % (retention, err))
    # The relay refuses to start with it too, naming the file and the member.
    other = relay_agent.Relay("other")
    with open(os.path.join(other.dir, "desk.json"), "w") as f:
        json.dump({"sla": DESK_SLA, "retention": {"transcripts": -3}}, f)
    _, err = relay_cli("serve", "--data", other.dir, "--listen", "127.0.0.1:%d" % other.port,
                       expect=1)
    check("refusing to serve: %s: retention.transcripts: wants a whole number of days 1..36500 "
          "or \"forever\", not -3" % os.path.join(other.dir, "desk.json") in err, "serve: %r" % err)
    _, err = relay_cli("retention", "prune", "--data", os.path.join(technicians.WORK, "nowhere"),
                       expect=1)
    check("no relay folder at" in err, "a missing folder: %r" % err)
    _, err = prune(desk, "--now", "someday", expect=2)
    check("--now wants" in err, "a bad --now: %r" % err)
    check(open(log, "rb").read() == before and os.path.exists(object_path(desk, recording)),
          "bad input changed something")
    # A tombstone whose payload is still there (an interrupted prune, or a false claim): said,
    # and the payload is still checked against its name.
    set_retention(desk, {"recordings": 1})
    kept = os.path.join(technicians.WORK, "kept-recording")
    shutil.copyfile(object_path(desk, recording), kept)
    prune(desk, "--now", later(2))
    shutil.copyfile(kept, object_path(desk, recording))
    said, verdict = audit_verify_ssh(desk, 0)
    check("tombstoned" in said and "still present" in said and recording in said and
          verdict["payloads"]["still_present"] == 1, "a present tombstoned payload: %r" % said)
    with open(object_path(desk, recording), "r+b") as f:
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 1]))
    said, verdict = audit_verify_ssh(desk, 1)
    check("recording BROKEN" in said and recording in said, "a damaged tombstoned one: %r" % said)
    # The next prune finishes what was interrupted.
    os.remove(object_path(desk, recording))
    shutil.copyfile(kept, object_path(desk, recording))
    out, _ = prune(desk, "--now", later(2))
    check("0 references tombstoned, 1 payload removed" in out, "finishing: %r" % out)
    audit_verify_ssh(desk, 0)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("retention.py BIN_DIR", "tl-retention-", setup_globals, track_popen=True,
                         home=True))
