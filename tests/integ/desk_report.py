#!/usr/bin/env python3
"""The desk's report end to end (docs/desk.md "Report"): a real relay, real enrolled agents
opening tickets, technicians working them with the stock OpenSSH client and the console, and
`report` read back as JSON, text and CSV. Each case runs in its own process:

    desk_report.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import subprocess
import sys
import time

import technicians
from technicians import Desk
import tlcase
from tlcase import case, check



def row(report, tier, severity):
    found = [r for r in report["rows"] if r["tier"] == tier and r["severity"] == severity]
    check(len(found) == 1, "one row T%d/%s in %r" % (tier, severity, report["rows"]))
    return found[0]


def by_tier(report):
    """(tier, opened, resolved, escalated) per tier, whatever the severities."""
    tiers = {}
    for r in report["rows"]:
        counts = tiers.setdefault(r["tier"], [0, 0, 0])
        for i, name in enumerate(("opened", "resolved", "escalated")):
            counts[i] += r[name]
    return [(tier,) + tuple(counts) for tier, counts in sorted(tiers.items())]


def utc_text(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def wait_past(instant):
    """Sleeps until the wall clock is past instant (seconds), at most 3 s."""
    for _ in range(40):
        if time.time() > instant + 0.05:
            return
        time.sleep(0.1)
    raise tlcase.Failure("the clock did not pass %s" % utc_text(instant))


@case
def case_a_day_of_the_desk_is_counted_per_tier():
    desk = Desk()
    t1 = desk.ticket
    t2, _, _, _ = desk.agent.help("the screen flickers after lunch")
    t3, _, _, _ = desk.agent.help("cannot reach the intranet")
    # t1: a note to the user is its first response; t2 resolved; t3 escalated to tier 2.
    desk.ssh("alice", "ticket", "note", t1, "restarting the print spooler now")
    desk.ssh("alice", "ticket", "resolve", t2, "cable replaced")
    desk.ssh("alice", "ticket", "escalate", t3, "--to", "tier2", "--reason",
             "'proxy settings look right'")
    desk.ssh("bob", "problem", "open", "Printers", "offline", "--from", t1)

    report = desk.ssh_json("alice", "report")
    period = report["period"]
    check(0 < period["until_ms"] - period["since_ms"] <= 7 * 86400000 and
          period["until_ms"] - period["since_ms"] == 7 * 86400000,
          "default period is the last 7 days: %r" % period)
    total = report["total"]
    check((total["opened"], total["resolved"], total["escalated"]) == (3, 1, 1),
          "opened/resolved/escalated: %r" % total)
    # The resolution is a first response too (docs/desk.md "What counts as a first response").
    check(total["first_responses"] == 2 and total["first_responses_within_6h"] == 2,
          "first responses: %r" % total)
    # Tickets are counted where they are now; the escalation where it left from.
    tier1 = row(report, 1, "S3")
    tier2 = row(report, 2, "S3")
    check((tier1["opened"], tier1["resolved"], tier1["escalated"]) == (2, 1, 1),
          "tier 1 row: %r" % tier1)
    check((tier2["opened"], tier2["resolved"], tier2["escalated"]) == (1, 0, 0),
          "tier 2 row: %r" % tier2)
    check([(p["id"], p["tickets"], p["devices"], p["state"]) for p in report["problems"]] ==
          [("P-1", 1, 1, "investigating")], "problems: %r" % report["problems"])

    _, text, _ = desk.ssh("alice", "report")
    check(text.startswith("Report from ") and "\nTIER/SEV " in text and "\nall " in text and
          "P-1 " in text, "text: %r" % text)
    _, csv, _ = desk.ssh("carol", "report", "--csv")
    lines = csv.split("\r\n")
    check(lines[0].startswith("tier,severity,opened,resolved,escalated,") and
          any(l.startswith("all,all,3,1,1,") for l in lines) and
          any(l.startswith("P-1,investigating,1,1,") for l in lines), "csv: %r" % csv)
    # The console has it from the relay's help, with the same answer.
    status, out, err = desk.console("audrey", "report", "--json")
    check(status == 0 and json.loads(out)["total"] == total, "console: %d %r %r" % (
        status, out[:300], err))

    # A period before any of it counts nothing.
    empty = desk.ssh_json("adam", "report", "--since", "2020-01-01", "--until", "2020-01-31")
    check(empty["total"]["opened"] == 0 and empty["rows"] == [] and
          empty["period"]["until_ms"] - empty["period"]["since_ms"] == 31 * 86400000,
          "an old period: %r" % empty)


@case
def case_the_report_is_as_the_period_ended():
    desk = Desk()
    ticket = desk.ticket
    other, _, _, _ = desk.agent.help("the VPN drops every ten minutes")
    # An instant after the tickets were opened and before they move, to the second.
    end = int(time.time()) + 1
    wait_past(end)
    desk.ssh("alice", "ticket", "resolve", ticket, "spooler restarted")
    desk.ssh("alice", "ticket", "escalate", other, "--to", "tier2", "--reason", "'needs logs'")
    before = desk.ssh_json("alice", "report", "--until", utc_text(end))
    check(by_tier(before) == [(1, 2, 0, 0)] and before["total"]["first_responses"] == 0,
          "at the end of the period: %r" % before)
    now = desk.ssh_json("alice", "report")
    check(by_tier(now) == [(1, 1, 1, 1), (2, 1, 0, 0)] and now["total"]["first_responses"] == 1,
          "now: %r" % now)
    # Reopened: no longer resolved at the end of a period that includes the reopening.
    desk.ssh("alice", "ticket", "reopen", ticket)
    check(desk.ssh_json("alice", "report")["total"]["resolved"] == 0, "reopened still resolved")


@case
def case_bad_input_is_refused_with_a_clear_error():
    desk = Desk()
    cases = [
        (["--since", "yesterday"], "tierline: --since: 'yesterday' is not a date YYYY-MM-DD or "
                                   "a time YYYY-MM-DDTHH:MMZ (UTC)\n"),
        (["--until", "2026-02-30"], "tierline: --until: '2026-02-30' is not a date YYYY-MM-DD "
                                    "or a time YYYY-MM-DDTHH:MMZ (UTC)\n"),
        (["--since", "2026-03-02", "--until", "2026-03-01"],
         "tierline: --since must be before --until\n"),
        (["--json", "--csv"], "tierline: --json and --csv: choose one\n"),
        (["--bogus"], None),
    ]
    for words, message in cases:
        status, out, err = desk.ssh("alice", "report", *words, check_status=None)
        check(status == 2 and out == "", "%r: exit %d, out %r" % (words, status, out))
        if message is not None:
            check(err.startswith(message) and "usage: report " in err,
                  "%r: %r" % (words, err))
    # A vendor account sees only the tickets handed to it: no report, and the refusal is kept.
    before = len(desk.audit())
    status, out, err = desk.ssh("vera", "report", check_status=None)
    check(status == 77 and out == "" and "permission denied" in err, "vendor: %d %r" % (
        status, err))
    denied = [e for e in desk.audit()[before:] if e["action"] == "access.denied"]
    check(len(denied) == 1 and denied[0]["actor"] == "tech:vera", "audit: %r" % denied)


def setup_globals(bin_dir, work):
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("desk_report.py BIN_DIR", "tl-report-", setup_globals, track_popen=True,
                         home=True))
