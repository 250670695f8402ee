#!/usr/bin/env python3
"""Escalation that repeats nothing, end to end (docs/desk.md "Escalation", "Repeated
diagnostics"): a real relay, a real enrolled agent running real commands, runbooks, a shell and
diagnostics, and the stock OpenSSH client for the technicians. Each case runs in its own
process:

    escalation.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys

import technicians
from technicians import Desk, Terminal, write_catalogue, write_policy
import tlcase
from tlcase import case, check, wait_for

# Sessions the policy grants without asking, so the fixture runs unattended.
POLICY = [{"roles": ["tier1", "tier2"], "scopes": ["exec", "diag", "fix", "shell"]}]


def canonical(value):
    """docs/desk.md "The summary's canonical form", written from the spec with the stdlib."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return re.sub(r"(?<!\\)((?:\\\\)*)\\u([0-9a-f]{4})",
                  lambda m: m.group(1) + "\\u" + m.group(2).upper(), text)


def unattended_desk():
    return Desk(agent_options=["--policy", write_policy(POLICY),
                               "--runbooks", write_catalogue()])


def ticket_json(desk, ticket, user="alice"):
    return desk.ssh_json(user, "ticket", "show", ticket)


def tier_changes(desk, ticket_id):
    """The ticket's typed history of tier changes, as the SLA clocks replay it."""
    number = int(ticket_id.split("-")[1])
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(desk.relay.dir, "relay.db"), uri=True)
    try:
        return db.execute("SELECT value, actor, reason FROM ticket_changes WHERE ticket_id = ? "
                          "AND field = 'tier' ORDER BY id", (number,)).fetchall()
    finally:
        db.close()


def make_lead(desk, name):
    """users.lead, set in the store: the relay reads it when a ticket is moved."""
    db = sqlite3.connect(os.path.join(desk.relay.dir, "relay.db"), timeout=30)
    try:
        db.execute("UPDATE users SET lead = 1 WHERE name = ?", (name,))
        db.commit()
    finally:
        db.close()



def escalations_in_audit(desk):
    return [e for e in desk.audit() if e["action"] in ("ticket.escalate", "ticket.deescalate")]


@case
def case_escalation_freezes_the_twelve_things_tried():
    desk = unattended_desk()
    t = desk.ticket
    desk.ssh("alice", "ticket", "take", t)
    # 7 commands (one fails), 2 runbooks, 1 shell, 1 more diagnostics: with the diagnostics the
    # ticket was sent with, 12 things tried, all run for real on the machine.
    for i in range(7):
        status, out, _ = desk.ssh("bob", "run", t, "--", "sh", "-c",
                                  "'echo step-%d; exit %d'" % (i, 3 if i == 4 else 0),
                                  check_status=None)
        check(status == (3 if i == 4 else 0) and out == "step-%d\n" % i,
              "run %d: %d %r" % (i, status, out))
    desk.ssh("alice", "fix", t, "say-word", "WORD=hello")
    desk.ssh("alice", "fix", t, "say-word", "WORD=again")
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", t])
    try:
        term.expect("granted")
        term.type("echo in-the-shell-$((6*7))\n")
        term.expect("in-the-shell-42")
        term.type("exit 0\n")
        check(term.wait() == 0, "the shell ended with %r" % term.status)
    finally:
        term.kill()
    wait_for("the recording on the ticket", lambda: desk.evidence_of_kind("recording"))
    desk.ssh("bob", "diag", t)
    desk.ssh("alice", "ticket", "note", t, "restarted", "cups;", "still", "offline")

    _, out, _ = desk.ssh("alice", "ticket", "escalate", t, "--to", "tier2", "--reason",
                         "'the queue stalls again after a restart'")
    check(re.match(r"%s escalated from tier 1 to tier 2; 12 already tried \(summary "
                   r"sha256:[0-9a-f]{64}\)\n%s no longer assigned to alice: it waits in tier "
                   r"2's queue\n$" % (t, t), out), "escalate said: %r" % out)

    shown = ticket_json(desk, t, "bob")
    check(shown["tier"] == 2 and shown["assignee"] is None, "the ticket moved: %r" % shown)
    escalation = shown["escalation"]
    summary = escalation["summary"]
    counts = {k: len(summary[k]) for k in ("diagnostics", "commands", "runbooks", "shells",
                                           "self_help")}
    check(counts == {"diagnostics": 2, "commands": 7, "runbooks": 2, "shells": 1,
                     "self_help": 0} and summary["tried"] == 12,
          "the summary's rows: %r" % counts)
    check(escalation["from_tier"] == 1 and escalation["to_tier"] == 2 and
          escalation["by"] == "tech:alice" and
          escalation["reason"] == "the queue stalls again after a restart",
          "the move: %r" % {k: v for k, v in escalation.items() if k != "summary"})
    # The hash is of the canonical text, which anyone can rebuild from the summary.
    check(hashlib.sha256(canonical(summary).encode()).hexdigest() ==
          escalation["summary_sha256"], "summary_sha256 is not the canonical text's")

    # Each row points at the real evidence: the transcript of what ran, with its exit status.
    evidence = {e["hash"]: e for e in shown["evidence"]}
    for i, row in enumerate(summary["commands"]):
        check(row["by"] == "tech:bob" and row["exit_status"] == (3 if i == 4 else 0),
              "command %d: %r" % (i, row))
        transcript = json.loads(desk.relay.evidence_bytes(row["sha256"]))
        check(evidence[row["sha256"]]["kind"] == "command" and
              transcript["argv"] == row["argv"] and
              transcript["exit_status"] == row["exit_status"] and
              transcript["stdout"]["text"] == "step-%d\n" % i,
              "command %d's transcript: %r" % (i, transcript))
    check([r["runbook"] for r in summary["runbooks"]] == ["say-word", "say-word"] and
          [r["args"] for r in summary["runbooks"]] == [{"WORD": "hello"}, {"WORD": "again"}] and
          all(evidence[r["sha256"]]["kind"] == "runbook" for r in summary["runbooks"]),
          "runbooks: %r" % summary["runbooks"])
    shell = summary["shells"][0]
    check(shell["by"] == "tech:bob" and evidence[shell["sha256"]]["kind"] == "recording",
          "shell: %r" % shell)
    diags = summary["diagnostics"]
    check([d["via"] for d in diags] == ["ticket", "diag"] and diags[0]["sha256"] == desk.evidence
          and diags[1]["by"] == "tech:bob", "diagnostics: %r" % diags)
    check([n["text"] for n in summary["notes"]] == ["restarted cups; still offline"] and
          summary["title"] == "the printer says it is offline",
          "notes and words: %r %r" % (summary["notes"], summary["title"]))

    # ticket show begins with it, as text, never as JSON.
    _, text, _ = desk.ssh("bob", "ticket", "show", t)
    head = text.split("\n%s  " % t)[0]
    check(text.startswith("Escalated from tier 1 to tier 2 by alice at ") and
          "Tried before this escalation: 12 (summary sha256:%s)" % escalation["summary_sha256"]
          in head and "  Commands (7):\n" in head and "  Runbooks (2):\n" in head and
          "  Shell sessions (1):\n" in head and "  Diagnostics (2):\n" in head and
          "exit 3  transcript %s  sh -c 'echo step-4; exit 3'" %
          summary["commands"][4]["sha256"][:12] in head and '{"' not in head,
          "ticket show's first lines:\n" + head)

    # The SLA clocks see the move; the timeline and the audit log hold it.
    check(tier_changes(desk, t)[-1] == ("2", "tech:alice",
                                         "the queue stalls again after a restart"),
          "tier history: %r" % tier_changes(desk, t))
    moved = [e for e in shown["events"] if e["kind"] == "ticket.escalated"]
    check(len(moved) == 1 and moved[0]["details"]["summary_sha256"] ==
          escalation["summary_sha256"] and moved[0]["details"]["previous_assignee"] == "alice",
          "timeline: %r" % moved)
    audited = escalations_in_audit(desk)
    check(len(audited) == 1 and audited[0]["subject"] == t and
          audited[0]["details"]["summary_sha256"] == escalation["summary_sha256"],
          "audit: %r" % audited)
    desk.relay.verify_audit()


@case
def case_the_summary_stays_frozen_and_the_next_move_makes_another():
    desk = unattended_desk()
    t = desk.ticket
    desk.ssh("alice", "ticket", "escalate", t, "--to", "tier2", "--reason", "needs-a-shell")
    first = ticket_json(desk, t)["escalation"]
    desk.ssh("bob", "run", t, "--", "true")
    desk.ssh("bob", "ticket", "take", t)
    # Frozen: what happened since is not in it.
    again = ticket_json(desk, t)["escalation"]
    check(again["summary"] == first["summary"] and again["summary_sha256"] ==
          first["summary_sha256"], "the frozen summary changed")
    # Through the console this time: the relay's words, passed through.
    status, out, err = desk.console("bob", "ticket", "escalate", t, "--to", "tier3",
                               "--reason", "kernel driver", "--json")
    check(status == 0, "tierline ticket escalate: %d %r" % (status, err))
    moved = json.loads(out)
    check(moved["reason"] == "kernel driver", "the reason's words: %r" % moved["reason"])
    check(moved["direction"] == "escalated" and moved["from_tier"] == 2 and
          moved["to_tier"] == 3 and moved["tried"] == 2 and
          moved["previous_assignee"] == "bob" and len(moved["summary"]["commands"]) == 1,
          "escalate --json: %r" % moved)
    latest = ticket_json(desk, t)["escalation"]
    check(latest["escalations"] == 2 and latest["summary_sha256"] == moved["summary_sha256"] !=
          first["summary_sha256"], "latest: %r" % latest)


@case
def case_bad_escalations_are_refused_and_change_nothing():
    desk = unattended_desk()
    t = desk.ticket
    before = desk.relay.ticket(t)
    audit_before = len(desk.audit())
    refusals = [
        (["--to", "tier5", "--reason", "x"], 2, "tierline: --to wants tier1, tier2, tier3 or tier4"),
        (["--to", "tier0", "--reason", "x"], 2, "tierline: --to wants tier1, tier2, tier3 or tier4"),
        (["--to", "vendors", "--reason", "x"], 2, "tierline: --to wants tier1"),
        (["--to", "tier2"], 2, "tierline: ticket escalate needs --reason TEXT"),
        (["--reason", "x"], 2, "tierline: ticket escalate needs --to"),
        (["--to", "tier1", "--reason", "x"], 1, "tierline: %s is already in tier 1" % t),
    ]
    for words, status, message in refusals:
        got, out, err = desk.ssh("alice", "ticket", "escalate", t, *words, check_status=None)
        check(got == status and err.startswith(message) and out == "",
              "escalate %s: exit %d, %r %r" % (" ".join(words), got, out, err))
        if status == 2:
            check("usage: ticket escalate T-N --to" in err, "no usage line: %r" % err)
    got, _, err = desk.ssh("alice", "ticket", "escalate", "T-99", "--to", "tier2", "--reason",
                           "x", check_status=None)
    check(got == 1 and "no ticket T-99" in err, "no such ticket: %d %r" % (got, err))
    # Roles that may not move tickets at all.
    for user in ("audrey", "vera"):
        got, _, err = desk.ssh(user, "ticket", "escalate", t, "--to", "tier2", "--reason", "x",
                               check_status=None)
        check(got == 77 and "needs ticket.escalate" in err, "%s: %d %r" % (user, got, err))
    # A resolved ticket is reopened first.
    desk.ssh("alice", "ticket", "resolve", t, "done")
    got, _, err = desk.ssh("alice", "ticket", "escalate", t, "--to", "tier2", "--reason", "x",
                           check_status=None)
    check(got == 1 and "%s is resolved; reopen it first (ticket reopen %s)" % (t, t) in err,
          "escalate a resolved ticket: %d %r" % (got, err))
    after = desk.relay.ticket(t)
    check(after["tier"] == before["tier"] and
          [e["kind"] for e in after["events"]] == [e["kind"] for e in before["events"]] +
          ["ticket.resolved"], "a refused escalation changed the ticket: %r" % after["events"])
    check(escalations_in_audit(desk) == [], "a refused escalation was audited as done")
    check(ticket_json(desk, t)["escalation"] is None, "an escalation was kept")
    check(len([e for e in desk.audit()[audit_before:] if e["action"] == "access.denied"]) == 2,
          "the two denials are not in the audit log")


@case
def case_who_may_move_a_ticket_and_denials_are_audited():
    desk = unattended_desk()
    t = desk.ticket
    # bob (tier2) does not escalate from tier 1's queue a ticket he does not hold.
    got, out, err = desk.ssh("bob", "ticket", "escalate", t, "--to", "tier3", "--reason", "x",
                             check_status=None)
    check(got == 77 and out == "" and err.startswith(
        "tierline: permission denied: %s is in tier 1's queue: a tier2 account escalates "
        "tickets of its own tier's queue; a lead or an admin may escalate it" % t),
          "bob: %d %r" % (got, err))
    denied = [e for e in desk.audit() if e["action"] == "access.denied"]
    check(denied and denied[-1]["actor"] == "tech:bob" and denied[-1]["subject"] == t and
          denied[-1]["details"]["needs"] == "ticket.escalate" and
          "tier 1's queue" in denied[-1]["details"]["reason"], "denial: %r" % denied)
    # alice (tier1) escalates from her own queue; she may not take it back.
    desk.ssh("alice", "ticket", "escalate", t, "--to", "tier2", "--reason", "x")
    got, _, err = desk.ssh("alice", "ticket", "escalate", t, "--to", "tier1", "--reason", "y",
                           check_status=None)
    check(got == 77 and "only a lead or an admin may give %s back to tier 1" % t in err,
          "alice de-escalates: %d %r" % (got, err))
    # bob now holds it: he may give it back, and says so.
    desk.ssh("bob", "ticket", "take", t)
    _, out, _ = desk.ssh("bob", "ticket", "escalate", t, "--to", "tier1", "--reason",
                         "'a cookbook fix'")
    check(out.startswith("%s de-escalated from tier 2 to tier 1" % t), "bob: %r" % out)
    _, text, _ = desk.ssh("alice", "ticket", "show", t)
    check(text.startswith("De-escalated from tier 2 to tier 1 by bob at ") and
          "Tried before this de-escalation: 1" in text, "show: %r" % text[:300])
    check(ticket_json(desk, t)["events"][-1]["kind"] == "ticket.deescalated", "timeline")
    check(escalations_in_audit(desk)[-1]["action"] == "ticket.deescalate", "audit")
    # A lead moves any ticket, to any tier; so does an admin.
    got, _, _ = desk.ssh("carol", "ticket", "escalate", t, "--to", "tier4", "--reason", "x",
                         check_status=None)
    check(got == 77, "carol escalated from another tier's queue before she was a lead")
    make_lead(desk, "carol")
    desk.ssh("carol", "ticket", "escalate", t, "--to", "tier4", "--reason", "'vendor case'")
    desk.ssh("adam", "ticket", "escalate", t, "--to", "tier3", "--reason", "'not yet'")
    check([v for v, _, _ in tier_changes(desk, t)] == ["1", "2", "1", "4", "3"],
          "tier history: %r" % tier_changes(desk, t))
    desk.relay.verify_audit()


@case
def case_the_same_diagnostics_within_a_day_warn_and_show_the_earlier():
    desk = unattended_desk()
    t = desk.ticket
    status, out, err = desk.ssh("bob", "diag", t, "--json", check_status=None)
    check(status == 0, "diag: %d %r" % (status, err))
    # The ticket came with diagnostics minutes ago: the technician is told before the user is
    # asked, with when, the hash and who.
    warning = ("tierline: warning: the same diagnostics of D-1 were taken ")
    check(warning in err and "by the machine, sent with the ticket: evidence %s diagnostics.json "
          "on %s" % (desk.evidence[:12], t) in err and
          "read them with: evidence get %s %s" % (t, desk.evidence[:12]) in err and
          err.index(warning) < err.index("waiting for the user's consent"),
          "no warning before the consent: %r" % err)
    first = json.loads(out)
    check(first["repeats"]["sha256"] == desk.evidence and first["repeats"]["ticket"] == t and
          first["repeats"]["by"].startswith("agent:"), "diag --json: %r" % first)
    # The next run names the latest, whoever took it, on any ticket of the device.
    second_ticket, _, _, _ = desk.agent.help("the scanner too")
    _, _, err = desk.ssh("alice", "diag", t)
    check("on %s" % second_ticket in err and "sent with the ticket" in err,
          "the device's other ticket: %r" % err)
    _, out, err = desk.ssh("alice", "diag", t, "--json")
    earlier = json.loads(out)["repeats"]
    check(earlier["by"] == "tech:alice" and "by alice: evidence %s" % earlier["sha256"][:12]
          in err, "the latest run: %r %r" % (earlier, err))
    # A warning, not a refusal: every run was kept.
    fresh = [e for e in desk.evidence_of_kind("diagnostics")
             if e["name"].startswith("diagnostics-")]
    check(len(fresh) == 3, "diagnostics kept: %r" % fresh)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("escalation.py BIN_DIR", "tl-esc-", setup_globals, track_popen=True,
                         home=True))
