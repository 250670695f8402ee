#!/usr/bin/env python3
"""Known problems end to end (docs/desk.md "Known problems"): a real relay, real enrolled
agents opening tickets, the stock OpenSSH client and the console for the technicians. Each
case runs in its own process:

    problems.py BIN_DIR CASE

The diagnostic fingerprint column of a ticket is set by the desk when diagnostics arrive
(docs/desk.md "Diagnostic fingerprints"); here it is written into the store directly, as that
part would, so that the matching is tested on its own. Every wait is bounded.
"""
import json
import os
import sqlite3
import subprocess
import sys

import technicians
from technicians import Desk, SessionAgent
import tlcase
from tlcase import case, check

FP_CUPS = "a45f806ff4710e57c4f687b14bc5ad7bbe83f3a21d81c899f14fbcb672c617ba"


def set_fingerprint(desk, ticket_id, fingerprint):
    db = sqlite3.connect(os.path.join(desk.relay.dir, "relay.db"), timeout=30)
    try:
        db.execute("UPDATE tickets SET fingerprint = ? WHERE id = ?",
                   (fingerprint, int(ticket_id.split("-")[1])))
        db.commit()
    finally:
        db.close()


def second_device(desk, text):
    """Another enrolled machine, opening a ticket of its own: its id."""
    agent = SessionAgent("agent2")
    agent.enroll(desk.relay.code())
    ticket, _, _, _ = agent.help(text)
    return ticket


def problem_actions(desk):
    return [(e["action"], e["subject"]) for e in desk.audit() if e["action"].startswith("problem.")]



@case
def case_a_known_problem_is_offered_linked_counted_and_fixed():
    desk = Desk()
    t1 = desk.ticket
    set_fingerprint(desk, t1, FP_CUPS)
    _, out, _ = desk.ssh("bob", "problem", "open", "Printers", "offline", "after", "CUPS",
                         "update", "--from", t1, "--workaround", "'restart cups'")
    check(out == "P-1 opened (investigating): Printers offline after CUPS update\n"
          "  fingerprint %s, from %s\n%s linked to P-1\n" % (FP_CUPS, t1, t1), "open: %r" % out)

    # A new ticket with the same conditions is offered it first, with the workaround.
    t2, _, _, _ = desk.agent.help("nothing works when I click print")
    set_fingerprint(desk, t2, FP_CUPS)
    _, text, _ = desk.ssh("alice", "ticket", "show", t2)
    check(text.startswith("Existing issue P-1, workaround: restart cups\n"
                          "  P-1 (investigating): Printers offline after CUPS update\n"
                          "  matched by its diagnostic fingerprint\n"
                          "  to link it: problem link %s P-1\n\n%s  " % (t2, t2)),
          "ticket show: %r" % text[:400])
    offers = desk.ssh_json("alice", "ticket", "show", t2)["problem_offers"]
    check([(o["id"], o["by_fingerprint"], o["link"]) for o in offers] ==
          [("P-1", True, "problem link %s P-1" % t2)], "offers: %r" % offers)
    # Another machine's ticket in other words, no fingerprint: offered by its words.
    t3 = second_device(desk, "my printer shows offline since the cups update")
    offers = desk.ssh_json("alice", "ticket", "show", t3)["problem_offers"]
    check([(o["id"], o["by_fingerprint"], o["shared_words"], o["title_words"]) for o in offers]
          == [("P-1", False, 4, 4)], "offers by words: %r" % offers)
    # Unrelated: nothing offered.
    t4, _, _, _ = desk.agent.help("my keyboard types the wrong letters")
    check(desk.ssh_json("alice", "ticket", "show", t4)["problem_offers"] == [], "t4 offered")

    # Tier 1 accepts the offers; the problem counts tickets and distinct devices.
    _, out, _ = desk.ssh("alice", "problem", "link", t2, "P-1")
    check(out == "%s linked to P-1 (investigating): Printers offline after CUPS update\n"
          "workaround: restart cups\n" % t2, "link: %r" % out)
    linked = desk.ssh_json("alice", "problem", "link", t3, "P-1")
    check(linked["ticket"] == t3 and linked["problem"]["tickets"] == 2, "link --json: %r" % linked)
    _, text, _ = desk.ssh("alice", "ticket", "show", t2)
    check(text.startswith("Known problem P-1, workaround: restart cups\n"), "linked: %r" % text)
    listed = desk.ssh_json("carol", "problems")
    check([(p["id"], p["state"], p["tickets"], p["devices"], p["fingerprint"]) for p in listed]
          == [("P-1", "investigating", 3, 2, FP_CUPS)], "problems: %r" % listed)
    _, out, _ = desk.ssh("carol", "problems")
    check(out.startswith("ID      STATE         TICKETS DEVICES UPDATED              TITLE\n"
                         "P-1     investigating       3       2 "), "problems: %r" % out)
    shown = desk.ssh_json("carol", "problem", "show", "P-1")
    check([t["id"] for t in shown["linked"]] == [t1, t2, t3] and
          shown["linked"][2]["device"] == "D-2", "problem show --json: %r" % shown)
    _, out, _ = desk.ssh("carol", "problem", "show", "P-1")
    check("  instances:   3 tickets on 2 devices\n" in out and t3 in out, "show: %r" % out)

    # The workaround changes; the state moves on; fixed, only the open linked tickets are told.
    desk.ssh("bob", "problem", "workaround", "P-1", "print", "to", "the", "other", "queue")
    desk.ssh("bob", "problem", "state", "P-1", "known-error")
    desk.ssh("alice", "ticket", "resolve", t3, "worked", "around")
    _, out, _ = desk.ssh("carol", "problem", "state", "P-1", "fixed", "--fix",
                         "runbook:restart-cups")
    check(out == "P-1 fixed\n2 linked open tickets told\n", "fixed: %r" % out)
    for ticket, told in ((t1, True), (t2, True), (t3, False)):
        events = desk.ssh_json("alice", "ticket", "show", ticket)["events"]
        fixed = [e["details"] for e in events if e["kind"] == "problem.fixed"]
        check(fixed == ([{"problem": "P-1", "title": "Printers offline after CUPS update",
                          "fix": "runbook:restart-cups"}] if told else []),
              "%s told %r" % (ticket, fixed))
    _, text, _ = desk.ssh("alice", "ticket", "show", t1)
    check(text.startswith("Known problem P-1, fixed: runbook:restart-cups\n"), "t1: %r" % text)
    # A fixed problem is offered to no one.
    t5, _, _, _ = desk.agent.help("printers offline after the cups update")
    check(desk.ssh_json("alice", "ticket", "show", t5)["problem_offers"] == [], "offered fixed")
    final = desk.ssh_json("carol", "problem", "show", "P-1")
    check(final["state"] == "fixed" and final["fix"] == "runbook:restart-cups" and
          final["workaround"] == "print to the other queue", "final: %r" % final)
    check(problem_actions(desk) == [("problem.open", "P-1"), ("problem.link", t1),
                                    ("problem.link", t2), ("problem.link", t3),
                                    ("problem.workaround", "P-1"), ("problem.state", "P-1"),
                                    ("problem.state", "P-1")],
          "audit: %r" % problem_actions(desk))
    state = [e for e in desk.audit() if e["action"] == "problem.state"][-1]["details"]
    check(state["told"] == [t1, t2] and state["told_count"] == 2 and state["previous"] ==
          "known-error", "problem.state: %r" % state)
    desk.relay.verify_audit()


@case
def case_bad_problem_input_is_refused_and_changes_nothing():
    desk = Desk()
    t = desk.ticket
    desk.ssh("bob", "problem", "open", "Printer", "offline")
    desk.ssh("bob", "problem", "link", t, "P-1")
    before = (desk.ssh_json("bob", "problems"), desk.relay.ticket(t)["events"],
              problem_actions(desk))
    refusals = [
        (("bob", "problem", "state", "P-1", "fixed"), 2,
         "tierline: a problem is fixed only with its fix named: --fix note:TEXT, kb:REF or "
         "runbook:NAME"),
        (("bob", "problem", "state", "P-1", "fixed", "--fix", "restarted"), 2,
         "tierline: --fix names the fix: note:TEXT, kb:REF (an article) or runbook:NAME"),
        (("bob", "problem", "state", "P-1", "fixed", "--fix", "runbook:Bad_Name"), 2,
         "tierline: --fix runbook:NAME wants a runbook's name"),
        (("bob", "problem", "state", "P-1", "known-error", "--fix", "note:x"), 2,
         "tierline: --fix goes with fixed"),
        (("bob", "problem", "state", "P-1", "investigating"), 2,
         "tierline: a problem's state moves to known-error or fixed"),
        (("bob", "problem", "state", "P-9", "known-error"), 1, "tierline: no problem P-9"),
        (("bob", "problem", "show", "P-9"), 1, "tierline: no problem P-9"),
        (("bob", "problem", "show", "P-0"), 2, "tierline: a problem is named P-N, e.g. P-3"),
        (("bob", "problem", "show", "T-1"), 2, "tierline: a problem is named P-N"),
        (("bob", "problem", "workaround", "P-9", "x"), 1, "tierline: no problem P-9"),
        (("bob", "problem", "link", t, "P-9"), 1, "tierline: no problem P-9"),
        (("bob", "problem", "link", "T-99", "P-1"), 1, "tierline: no ticket T-99"),
        (("bob", "problem", "link", t, "P-1"), 1, "tierline: %s is already linked to P-1" % t),
        (("bob", "problem", "open"), 2, "tierline: problem open needs a title"),
        (("bob", "problem", "open", "x" * 201), 2,
         "tierline: a problem's title is at most 200 bytes"),
        (("bob", "problem", "open", "Title", "--from", "T-99"), 1, "tierline: no ticket T-99"),
        (("bob", "problems", "--state", "broken"), 2,
         "tierline: --state wants investigating, known-error or fixed"),
        # Roles: tier 1 links but does not manage; a vendor reads no problems.
        (("alice", "problem", "open", "Title"), 77, "tierline: permission denied: role tier1 "
         "may not use 'problem open' (needs problems.manage)"),
        (("alice", "problem", "state", "P-1", "known-error"), 77, "tierline: permission denied"),
        (("vera", "problems"), 77, "tierline: permission denied: role tier4 may not use "
         "'problems' (needs problems.read)"),
        (("audrey", "problem", "link", t, "P-1"), 77, "tierline: permission denied"),
    ]
    for words, status, message in refusals:
        got, out, err = desk.ssh(*words, check_status=None)
        check(got == status and err.startswith(message) and out == "",
              "%s: exit %d, stdout %r, stderr %r" % (" ".join(words), got, out, err))
    after = (desk.ssh_json("bob", "problems"), desk.relay.ticket(t)["events"],
             problem_actions(desk))
    check(after == before, "a refused command changed something:\n%r\n%r" % (before, after))
    # States only move forward, and each once.
    desk.ssh("bob", "problem", "state", "P-1", "known-error")
    got, _, err = desk.ssh("bob", "problem", "state", "P-1", "known-error", check_status=None)
    check(got == 1 and "tierline: P-1 is already known-error" in err, "twice: %r" % err)
    desk.ssh("bob", "problem", "state", "P-1", "fixed", "--fix", "'note:firmware 2.1'")
    got, _, err = desk.ssh("bob", "problem", "state", "P-1", "known-error", check_status=None)
    check(got == 1 and "P-1 is fixed and cannot become known-error" in err, "back: %r" % err)
    check(desk.ssh_json("bob", "problem", "show", "P-1")["fix"] == "note:firmware 2.1", "fix")
    # An auditor reads problems; the denials above are on the record.
    check(desk.ssh_json("audrey", "problems")[0]["id"] == "P-1", "auditor reads problems")
    denied = [e for e in desk.audit() if e["action"] == "access.denied"]
    check(len(denied) == 4, "denials audited: %r" % denied)


@case
def case_problems_speak_json_escape_others_text_and_reach_the_console():
    desk = Desk(ticket=False)
    hostile, _, _, _ = desk.agent.help("printer \x1b]0;owned\x07 offline \x1b[2J")
    desk.ssh("bob", "problem", "open", "Printer", "offline", "--from", hostile)
    for words in (("problem", "show", "P-1"), ("ticket", "show", hostile)):
        _, out, _ = desk.ssh("bob", *words)
        check("\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07" in out,
              "%s printed others' text raw: %r" % (" ".join(words), out))
    opened = desk.ssh_json("bob", "problem", "open", "Disk", "full", "--workaround",
                           "'clean /tmp'")
    check(opened["id"] == "P-2" and opened["workaround"] == "clean /tmp" and
          opened["fingerprint"] is None and opened["fix"] is None and opened["tickets"] == 0,
          "open --json: %r" % opened)
    check(desk.ssh_json("bob", "problem", "workaround", "P-2", "reboot") ==
          {"problem": "P-2", "workaround": "reboot"}, "workaround --json")
    state = desk.ssh_json("bob", "problem", "state", "P-2", "fixed", "--fix", "kb:KB-12")
    check(state == {"problem": "P-2", "previous": "investigating", "state": "fixed",
                    "fix": "kb:KB-12", "told": [], "told_count": 0}, "state --json: %r" % state)
    check([p["id"] for p in desk.ssh_json("bob", "problems", "--state", "fixed")] == ["P-2"],
          "problems --state")
    # The console learns the commands from the relay and shows their output escaped too.
    status, out, err = desk.console("bob", "problems")
    check(status == 0 and "P-1" in out and "P-2" in out and "\x1b" not in out,
          "tierline problems: %d %r %r" % (status, out, err))
    status, out, err = desk.console("bob", "problem", "show", "P-1", "--json")
    check(status == 0 and json.loads(out)["linked"][0]["id"] == hostile,
          "tierline problem show: %d %r" % (status, err))
    status, out, _ = desk.console("bob", "problem", "--help")
    check(status == 0 and "problem state" in out and "problem link" in out,
          "tierline problem --help: %r" % out)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("problems.py BIN_DIR", "tl-problems-", setup_globals, track_popen=True,
                         home=True))
