#!/usr/bin/env python3
"""Hand-over of control of a shell (docs/technicians.md "Hand-over of control"),
end to end: a real relay and enrolled agent (technicians.py's Desk), and
technicians at real keyboards: the stock OpenSSH client (ssh -tt) in real
pseudo-terminals. Each case runs in its own process:

    handover.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import gzip
import json
import sys

import technicians
import tlcase
from technicians import Desk, Terminal
from tlcase import case, check, wait_for

# A second tier-2 technician, for two takers at once.
technicians.ROLES["dave"] = "tier2"


def approve(desk, technician):
    desk.agent.cli("approve", desk.agent.question(technician)["id"])


def join(desk, technician, *options):
    return Terminal(desk.ssh_argv(technician, tty=True) + ["join", desk.ticket] + list(options))


def open_shell(desk, technician="bob"):
    """technician's join, granted, its shell answering."""
    shell = join(desk, technician)
    approve(desk, technician)
    shell.expect("granted")
    shell.type("echo ready-$((2*3))\n")
    shell.expect("ready-6")
    return shell


def ask(desk, technician, *options, granted=False):
    """technician's join --take, granted (or under the live grant it has) and asking."""
    taker = join(desk, technician, "--take", *options)
    if granted:
        taker.expect("(by existing)")
    else:
        approve(desk, technician)
    taker.expect("asking ")
    return taker


def controls(desk):
    return [e for e in desk.audit() if e["action"] == "session.control"]


def shell_markers(desk):
    """The markers of the shell's recording (the one recording on the ticket)."""
    recordings = wait_for("the shell's recording", lambda: desk.evidence_of_kind("recording"))
    check(len(recordings) == 1, "recordings: %r" % recordings)
    cast = gzip.decompress(desk.relay.evidence_bytes(recordings[0]["hash"])).decode()
    events = [json.loads(line) for line in cast.splitlines()[1:]]
    return [e[2] for e in events if e[1] == "m"], events


def shell_grant(desk):
    return next(e["details"]["grant"] for e in desk.audit()
                if e["action"] == "session.start" and not e["details"].get("take"))


def kill_all(*terms):
    for term in terms:
        if term is not None:
            term.kill()


@case
def case_control_handed_over_when_asked():
    desk = Desk()
    bob = open_shell(desk)
    carol = None
    try:
        carol = ask(desk, "carol")
        bob.expect("carol asks for control of this shell")
        bob.expect("type ~y to hand over")
        # OpenSSH passes "~y" after a newline on (it is none of its own escapes).
        bob.type("~y")
        carol.expect("carol is in control of the shell on %s now (handed over by bob)" %
                     desk.ticket)
        bob.expect("carol is in control")
        carol.type("echo from-carol-$((4*4))\n")
        carol.expect("from-carol-16")
        bob.expect("from-carol-16")  # bob watches now
        bob.type("echo from-bob-$((9*9))\n")
        carol.type("echo again-$((5*5))\n")
        carol.expect("again-25")
        check(b"from-bob-81" not in carol.seen and b"from-bob-81" not in bob.seen,
              "the one who handed over still types into the shell")
        carol.type("exit 3\n")
        check(carol.wait() == 3, "carol: %r" % carol.seen[-400:])
        check(bob.wait() == 3, "bob: %r" % bob.seen[-400:])
    finally:
        kill_all(bob, carol)
    found = controls(desk)
    check(len(found) == 1 and found[0]["actor"] == "tech:carol" and
          found[0]["details"]["from"] == "bob" and found[0]["details"]["to"] == "carol" and
          found[0]["details"]["outcome"] == "handed" and "reason" not in found[0]["details"] and
          found[0]["subject"] == desk.ticket, "session.control entries: %r" % found)
    check("session.control" in [e["kind"] for e in desk.relay.ticket(desk.ticket)["events"]],
          "no session.control on the timeline")
    markers, events = shell_markers(desk)
    check("control carol from bob (handed over)" in markers, "markers: %r" % markers)
    typed = "".join(e[2] for e in events if e[1] == "i")
    check("echo from-carol" in typed and "~y" not in typed and "from-bob" not in typed,
          "typed input in the recording: %r" % typed)
    # replay shows the marker, as it shows every marker of the recording.
    grant = shell_grant(desk)
    found = json.loads(desk.ssh("audrey", "replay", grant, "--search", "again-25", "--json")[1])
    check(any("control carol from bob (handed over)" in m["text"] for m in found["markers"]),
          "replay's markers: %r" % found["markers"])
    _, out, _ = desk.ssh("audrey", "replay", grant, "--speed", "8", "--idle-limit", "0.2")
    check("control carol from bob (handed over)" in out, "replay: %r" % out[-1500:])
    desk.relay.verify_audit()


@case
def case_control_refused_stays_where_it_was():
    desk = Desk()
    bob = open_shell(desk)
    carol = None
    try:
        carol = ask(desk, "carol")
        bob.expect("carol asks for control of this shell")
        bob.type("~n")
        check(carol.wait() == 1, "carol: %r" % carol.seen[-400:])
        check(b"bob refused to hand over control of the shell on " + desk.ticket.encode()
              in carol.seen, "carol was told %r" % carol.seen[-400:])
        bob.expect("you keep control")
        # A '~' followed by anything else reaches the shell as typed.
        bob.type("echo still-bob-$((7*7))\n")
        bob.expect("still-bob-49")
        bob.type("exit\n")
        check(bob.wait() == 0, "bob: %r" % bob.seen[-400:])
    finally:
        kill_all(bob, carol)
    found = controls(desk)
    check([e["details"]["outcome"] for e in found] == ["refused"], "entries: %r" % found)
    markers, _ = shell_markers(desk)
    check(not any(m.startswith("control ") for m in markers), "a marker for no change: %r" % markers)
    desk.relay.verify_audit()


@case
def case_control_taken_after_the_wait_only_with_a_reason():
    desk = Desk(relay_options=["--take-wait-ms", "2000"])
    bob = open_shell(desk)
    carol = None
    try:
        # No answer and no reason: nothing changes.
        carol = ask(desk, "carol")
        check(carol.wait(timeout=60) == 1, "carol without a reason: %r" % carol.seen[-400:])
        check(b"bob did not answer within 2 s" in carol.seen, "told %r" % carol.seen[-400:])
        bob.expect("withdrawn (no answer)")
        # With a reason: taken, and the reason is escaped wherever it is shown.
        # (a C1 CSI: the command line takes no C0 control characters)
        carol = ask(desk, "carol", "--reason", "'bob is away\u009b2J: printer escalation'",
                    granted=True)
        carol.expect("carol is in control of the shell on %s now (taken from bob)" % desk.ticket,
                     timeout=60)
        bob.expect("carol is in control")
        check(b"\xc2\x9b" not in bob.seen and b"bob is away\\u009b2J" in bob.seen,
              "the reason reached bob's terminal unescaped: %r" % bob.seen[-600:])
        carol.type("echo forced-$((8*8))\n")
        carol.expect("forced-64")
        # The one in control leaves: control goes back to bob, whose shell it is.
        carol.kill()
        bob.expect("carol left; control of the shell is back with you")
        bob.type("echo back-$((3*3))\n")
        bob.expect("back-9")
        bob.type("exit\n")
        check(bob.wait() == 0, "bob: %r" % bob.seen[-400:])
    finally:
        kill_all(bob, carol)
    found = controls(desk)
    check([e["details"]["outcome"] for e in found] == ["unanswered", "forced"] and
          found[1]["details"]["reason"] == "bob is away\u009b2J: printer escalation",
          "entries: %r" % found)
    markers, _ = shell_markers(desk)
    check(any(m.startswith("control carol from bob (forced): bob is away\\u009b2J") for m in markers)
          and "control bob from carol (returned)" in markers, "markers: %r" % markers)
    desk.relay.verify_audit()


@case
def case_take_refused_without_a_live_shell_or_a_free_request():
    desk = Desk()
    # No shell on the ticket: nobody is asked.
    status, _, err = desk.ssh("carol", "join", desk.ticket, "--take", check_status=None)
    check(status == 2 and "join needs a terminal" in err, "no terminal: %d %r" % (status, err))
    lone = join(desk, "carol", "--take")
    check(lone.wait() == 1 and b"has no live shell to take over" in lone.seen,
          "no shell: %r" % lone.seen[-400:])
    # --take and --observe together: a usage error.
    both = join(desk, "carol", "--take", "--observe")
    check(both.wait() == 2 and b"--take and --observe exclude each other" in both.seen,
          "both: %r" % both.seen[-400:])
    # A vendor only observes: never takes.
    vendor = join(desk, "vera", "--take")
    check(vendor.wait() == 77, "vendor take: %r" % vendor.seen[-400:])
    check(desk.agent.pending() == [], "someone was asked: %r" % desk.agent.pending())
    bob = open_shell(desk)
    carol = dave = None
    try:
        # Two takers at once: the first asks, the other is told.
        carol = ask(desk, "carol")
        dave = join(desk, "dave", "--take")
        check(dave.wait() == 1 and b"carol is asking for control of the shell" in dave.seen,
              "the second taker: %r" % dave.seen[-400:])
        # The taker leaves while waiting: the request is withdrawn, bob keeps the shell.
        carol.type("\x03")
        check(carol.wait() == 0, "carol left: %r" % carol.seen[-400:])
        bob.type("exit 5\n")
        check(bob.wait() == 5, "bob: %r" % bob.seen[-400:])
    finally:
        kill_all(bob, carol, dave)
    # The session ended: taking it is refused like any ticket without a shell.
    late = join(desk, "carol", "--take")
    check(late.wait() == 1 and b"has no live shell to take over" in late.seen,
          "late take: %r" % late.seen[-400:])
    check(controls(desk) == [], "a change of control was recorded: %r" % controls(desk))
    desk.relay.verify_audit()


if __name__ == "__main__":
    sys.exit(tlcase.main("handover.py BIN_DIR", "tl-handover-", technicians.setup_globals,
                         track_popen=True, home=True))
