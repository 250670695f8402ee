#!/usr/bin/env python3
"""A ticket's whole life at the desk, on real processes (docs/desk.md): a real relay, a real
enrolled agent on which the technicians' diagnostics, runbooks and commands really run, the
stock OpenSSH client for every technician, the relay's admin command for the vendor's access.

The user asks for help and self-help tries first: the machine really has a full /var (a small
image mounted in a private mount namespace, as in selfhelp.py), the matching article's fix is
applied and does not help, so the ticket opens with what was shown and tried; tier 1 answers, runs diagnostics and a runbook, and escalates; tier 2
sees all of that without asking, runs a command, finds a known problem and escalates; tier 3
sees both tiers' work, hands the ticket to the vendor with a follow-up; the vendor sees the
ticket and answers; tier 3 resolves it and the report counts it. At each hand-over the next
tier's own view is checked for what the tiers before did. Each case runs in its own process:

    desk_life.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import sys

import selfhelp
import technicians
from technicians import Desk, write_catalogue, write_policy
import tlcase
from tlcase import case, check, run, wait_for

# Sessions the policy grants without asking, so the life runs unattended.
POLICY = [{"roles": ["tier1", "tier2", "tier3"], "scopes": ["exec", "diag", "fix"]}]


def relay_admin(desk, *words):
    return run(technicians.BIN + "/tierline-relay", *(list(words) + ["--data", desk.relay.dir]))


def queue(desk, user, *words):
    return [t["id"] for t in desk.ssh_json(user, "tickets", *words)["tickets"]]


def tried(summary):
    """What a frozen summary lists: (section, who) for every row, in order."""
    return [(section, row["by"]) for section in ("diagnostics", "commands", "runbooks",
                                                 "shells", "self_help")
            for row in summary[section]]


@case
def case_a_ticket_lives_from_the_user_to_the_vendor_and_into_the_report():
    desk = Desk(ticket=False, agent_options=["--policy", write_policy(POLICY), "--runbooks",
                                             write_catalogue()])

    # Tier 0: self-help on the machine; its fix frees nothing, so a ticket opens with the rows.
    out, err, filler = selfhelp.full_var_help(desk, selfhelp.write_kb(),
                                              selfhelp.write_runbooks(remove=False),
                                              "my disk is full and printing stopped", "--fix", "1")
    check(filler and "Not solved" in err, "self-help: %r" % err)
    t = out.strip()
    check(t == "T-1", "the ticket: %r\n%s" % (out, err))
    shown = desk.ssh_json("alice", "ticket", "show", t)
    tried_by_user = [e["kind"] for e in shown["events"] if e["kind"].startswith("selfhelp.")]
    check(tried_by_user == ["selfhelp.shown", "selfhelp.applied"],
          "tier 1 sees what the user tried: %r" % tried_by_user)

    # Tier 1: the ticket is in alice's queue; she takes it, answers, checks and tries a fix.
    check(queue(desk, "alice") == [t], "tier 1's queue")
    check(queue(desk, "bob") == [], "tier 2's queue before the escalation")
    desk.ssh("alice", "ticket", "take", t)
    desk.ssh("alice", "ticket", "note", t, "looking", "at", "your", "printer", "now")
    desk.ssh("alice", "diag", t)
    _, out, _ = desk.ssh("alice", "fix", t, "say-word", "WORD=cups")
    check("word=cups" in out, "the runbook ran on the machine: %r" % out)
    desk.ssh("alice", "ticket", "escalate", t, "--to", "tier2", "--reason",
             "'restart did not bring the queue back'")

    # Tier 2 finds it in its queue with what tier 1 did, without asking anyone.
    check(queue(desk, "bob") == [t] and queue(desk, "alice") == [], "queues after tier 1")
    shown = desk.ssh_json("bob", "ticket", "show", t)
    first = shown["escalation"]
    check(first["from_tier"] == 1 and first["to_tier"] == 2 and first["by"] == "tech:alice" and
          first["reason"] == "restart did not bring the queue back", "the move: %r" %
          {k: v for k, v in first.items() if k != "summary"})
    check(tried(first["summary"]) == [("diagnostics", "agent:D-1"), ("diagnostics", "tech:alice"),
                                      ("runbooks", "tech:alice"), ("self_help", "agent:D-1"),
                                      ("self_help", "agent:D-1")],
          "tier 2 sees: %r" % tried(first["summary"]))
    _, text, _ = desk.ssh("bob", "ticket", "show", t)
    check("say-word" in text and "restart did not bring the queue back" in text,
          "tier 2's ticket show: %r" % text[:800])
    desk.ssh("bob", "ticket", "take", t)
    _, out, _ = desk.ssh("bob", "run", t, "--", "sh", "-c", "'echo queue-stalled'")
    check(out == "queue-stalled\n", "the command ran on the machine: %r" % out)
    # Is it an existing issue? A new one: a known problem, this ticket its first instance.
    desk.ssh("bob", "problem", "open", "Print", "queue", "stalls", "after", "CUPS", "update",
             "--from", t, "--workaround", "'print to the second queue'")
    desk.ssh("bob", "ticket", "escalate", t, "--to", "tier3", "--reason",
             "'needs a fix in the CUPS setup'")

    # Tier 3 sees both tiers' work and the known problem first.
    check(queue(desk, "carol") == [t] and queue(desk, "bob") == [], "queues after tier 2")
    shown = desk.ssh_json("carol", "ticket", "show", t)
    second = shown["escalation"]
    check(second["from_tier"] == 2 and second["to_tier"] == 3 and second["by"] == "tech:bob",
          "the second move: %r" % {k: v for k, v in second.items() if k != "summary"})
    check(tried(second["summary"]) == [("diagnostics", "agent:D-1"), ("diagnostics", "tech:alice"),
                                       ("commands", "tech:bob"), ("runbooks", "tech:alice"),
                                       ("self_help", "agent:D-1"), ("self_help", "agent:D-1")],
          "tier 3 sees: %r" % tried(second["summary"]))
    check(second["summary"]["commands"][0]["argv"] == ["sh", "-c", "echo queue-stalled"],
          "the command: %r" % second["summary"]["commands"])
    check(shown["problem"]["id"] == "P-1", "the known problem: %r" % shown.get("problem"))
    _, text, _ = desk.ssh("carol", "ticket", "show", t)
    check(text.startswith("Known problem P-1, workaround: print to the second queue\n"),
          "tier 3's ticket show: %r" % text[:300])

    # Tier 4: carol hands it to the vendor with a follow-up; the vendor's account sees it.
    desk.ssh("carol", "ticket", "take", t)
    _, out, _ = desk.ssh("carol", "ticket", "vendor", t, "--vendor", "'ACME Print'", "--case",
                         "AC-7731", "--follow-up", "2d")
    check(out.startswith("%s waiting-vendor (was open): ACME Print, case AC-7731; follow up "
                         "by " % t), "hand-off: %r" % out)
    relay_admin(desk, "user", "grant", "vera", t)
    check(queue(desk, "vera") == [t], "the vendor's queue")
    seen = desk.ssh_json("vera", "ticket", "show", t)
    check(seen["escalation"]["summary_sha256"] == second["summary_sha256"] and
          seen["vendor_case"] == "AC-7731", "the vendor sees what was tried")
    listed = desk.ssh_json("carol", "tickets", "--tier", "all")["tickets"]
    check(listed[0]["status"] == "waiting-vendor" and listed[0]["follow_up"] is not None,
          "carol's listing: %r" % listed)
    check(queue(desk, "carol", "--follow-up-due") == [], "a follow-up two days on is not due")
    desk.ssh("vera", "ticket", "note", t, "firmware", "4.1", "fixes", "the", "stall")
    events = desk.ssh_json("carol", "ticket", "show", t)["events"]
    check(events[-1]["kind"] == "note" and events[-1]["actor"] == "tech:vera",
          "the vendor's answer: %r" % events[-1])

    # Tier 3 resolves it and documents the fix on the known problem.
    desk.ssh("carol", "ticket", "resolve", t, "firmware", "4.1", "installed")
    desk.ssh("carol", "problem", "state", "P-1", "fixed", "--fix", "'note:firmware 4.1'")
    shown = desk.ssh_json("alice", "ticket", "show", t)
    check(shown["status"] == "resolved", "resolved: %r" % shown["status"])

    # The report counts the ticket once, where it ended, and each escalation where it left.
    report = desk.ssh_json("adam", "report")
    total = report["total"]
    check((total["opened"], total["resolved"], total["escalated"], total["first_responses"]) ==
          (1, 1, 2, 1), "the report's total: %r" % total)
    tiers = {}
    for r in report["rows"]:
        counts = tiers.setdefault(r["tier"], [0, 0, 0])
        for i, name in enumerate(("opened", "resolved", "escalated")):
            counts[i] += r[name]
    check(tiers == {1: [0, 0, 1], 2: [0, 0, 1], 3: [1, 1, 0]},
          "opened, resolved, escalated per tier: %r" % tiers)
    check([(p["id"], p["state"], p["tickets"]) for p in report["problems"]] ==
          [("P-1", "fixed", 1)], "the problems: %r" % report["problems"])

    # Closed for good: the close, like each session's end, is covered by a signed checkpoint of
    # the audit log made right after it (docs/audit-format.md §14).
    desk.ssh("carol", "ticket", "close", t, "the", "vendor", "confirmed")
    def covered():
        log = desk.audit()
        ends = [e["seq"] for e in log if e["action"] in ("session.end", "ticket.close")]
        sizes = [e["details"]["size"] for e in log if e["action"] == "audit.checkpoint"]
        return ends and all(any(size >= seq for size in sizes) for seq in ends), ends, sizes
    wait_for("checkpoints after the sessions and the close", lambda: covered()[0])
    _, ends, sizes = covered()
    check(len(ends) >= 4 and len(sizes) >= 2, "ends %r, checkpoint sizes %r" % (ends, sizes))

    # Every step is in the audit log, which still verifies.
    actions = [e["action"] for e in desk.audit() if e["subject"] in (t, "P-1")]
    for step in ("ticket.create", "selfhelp.shown", "selfhelp.applied", "ticket.escalate",
                 "problem.open", "ticket.vendor", "problem.state"):
        check(step in actions, "%s missing from the audit log: %r" % (step, actions))
    check(actions.count("ticket.escalate") == 2, "escalations audited: %r" % actions)
    desk.relay.verify_audit()


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("desk_life.py BIN_DIR", "tl-life-", setup_globals, track_popen=True,
                         home=True))
