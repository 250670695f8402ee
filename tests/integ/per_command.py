#!/usr/bin/env python3
"""Consent one command at a time, end to end (docs/consent.md "One command at
a time", "A shell grant ends with its shell"): a real relay, a real enrolled
agent and the stock OpenSSH client. The user answers with tierline-agent
approve/deny, as a script at the machine would. Each case runs in its own
process.
"""
import json
import os
import sys

import relay_agent
import technicians
import tlcase
from technicians import Desk, Terminal, write_policy
from tlcase import case, check, wait_for

BIN = None
WORK = None


def command_question(desk, technician="bob"):
    """Waits for a question about one command and returns it."""
    return wait_for("a command question from " + technician,
                    lambda: next((q for q in desk.agent.pending()
                                  if q.get("technician") == technician and
                                  "command_line" in q), None))


def command_decisions(desk):
    return [e["details"] for e in desk.audit() if e["action"] == "consent.command"]


@case
def case_each_command_is_asked_and_a_declined_one_runs_nothing():
    desk = Desk()
    tech = desk.spawn("bob", "run", desk.ticket, "--", "echo", "hi")
    question = desk.agent.question("bob")
    check(question.get("each_possible") is True and "command_line" not in question,
          "the grant question: %r" % question)
    desk.agent.cli("approve", question["id"], "--each")
    # The grant alone runs nothing: the command itself is asked, exactly.
    asked = command_question(desk)
    check(asked["command_line"] == '"echo" "hi"' and asked["command"] == ["echo", "hi"] and
          asked["ticket"] == desk.ticket and asked["reason"],
          "the command question: %r" % asked)
    check(tech.poll() is None, "the command ended before the user answered")
    desk.agent.cli("approve", asked["id"])
    out, err = tech.communicate(timeout=60)
    check(tech.returncode == 0 and out == b"hi\n", "after yes: exit %d, %r %r" % (
        tech.returncode, out, err))

    # The next command under the same grant is asked again; no refuses it.
    marker = os.path.join(WORK, "x")
    tech = desk.spawn("bob", "run", desk.ticket, "--", "touch", marker)
    asked = command_question(desk)
    check(asked["command_line"] == '"touch" "%s"' % marker, "asked: %r" % asked)
    check([q for q in desk.agent.pending() if "command_line" not in q] == [],
          "a new grant was asked for instead of the command")
    desk.agent.cli("deny", asked["id"])
    _, err = tech.communicate(timeout=60)
    check(tech.returncode != 0 and b"the user declined this command" in err,
          "declined: exit %d, stderr %r" % (tech.returncode, err))
    check(not os.path.exists(marker), "a declined command ran on the machine")

    # Spaces, quotes and backslashes are visible as they are: the relay refuses control
    # characters in a command line (an agent's own escaping of those is a unit test).
    tech = desk.spawn("bob", "run", desk.ticket, "--", "printf", "'a  b'", "'say \"hi\" \\e[2J'")
    asked = command_question(desk)
    line = asked["command_line"]
    check(line == '"printf" "a  b" "say \\"hi\\" \\\\e[2J"', "command shown as %r" % line)
    out, _ = desk.agent.cli("pending")
    check(line in out, "pending shows %r" % out)
    desk.agent.cli("deny", asked["id"])
    tech.communicate(timeout=60)

    # Every decision is on the ticket and in the audit log, and the transcript says so.
    decisions = wait_for("three command decisions audited",
                         lambda: len(command_decisions(desk)) >= 3 and command_decisions(desk))
    check([d["decision"] for d in decisions] == ["allowed", "declined", "declined"] and
          all(d["by"] == "user" for d in decisions) and decisions[0]["argv"] == ["echo", "hi"] and
          decisions[1]["argv"] == ["touch", marker], "audited: %r" % decisions)
    transcripts = desk.evidence_of_kind("command")
    first = json.loads(desk.relay.evidence_bytes(transcripts[0]["hash"]))
    check(first.get("consent") == {"asked": "each command", "decision": "allowed", "by": "user"},
          "transcript: %r" % first)
    desk.relay.verify_audit()


@case
def case_an_unanswered_command_is_not_run():
    desk = Desk(agent_options=["--consent-timeout", "4s"])
    marker = os.path.join(WORK, "late")
    tech = desk.spawn("bob", "run", desk.ticket, "--", "touch", marker)
    desk.agent.cli("approve", desk.agent.question("bob")["id"], "--each")
    command_question(desk)
    _, err = tech.communicate(timeout=60)
    check(tech.returncode != 0 and b"nobody answered" in err,
          "unanswered: exit %d, stderr %r" % (tech.returncode, err))
    check(not os.path.exists(marker), "an unanswered command ran")
    decisions = wait_for("the decision audited", lambda: command_decisions(desk))
    check(decisions[0]["decision"] == "unanswered", "audited: %r" % decisions)


@case
def case_a_technician_who_leaves_withdraws_the_question():
    desk = Desk()
    tech = desk.spawn("bob", "run", desk.ticket, "--", "echo", "first")
    desk.agent.cli("approve", desk.agent.question("bob")["id"], "--each")
    desk.agent.cli("approve", command_question(desk)["id"])
    tech.communicate(timeout=60)
    marker = os.path.join(WORK, "after-leaving")
    tech = desk.spawn("bob", "run", desk.ticket, "--", "touch", marker)
    asked = command_question(desk)
    tech.kill()
    tech.wait()
    wait_for("the question withdrawn", lambda: desk.agent.pending() == [])
    _, err = desk.agent.cli("approve", asked["id"], expect=None)
    check("no open question" in err, "approve after the technician left: %r" % err)
    check(not os.path.exists(marker), "the command ran after its technician left")


@case
def case_each_is_refused_for_a_shell():
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        question = desk.agent.question("bob")
        check(question.get("ends_with_shell") is True and
              question.get("each_possible") is False, "shell question: %r" % question)
        _, err = desk.agent.cli("approve", question["id"], "--each", expect=None)
        check("a shell cannot be asked command by command" in err, "--each on a shell: %r" % err)
        check(desk.agent.pending() != [], "the refused answer settled the question")
        desk.agent.cli("deny", question["id"])
        term.wait()
    finally:
        term.kill()


def shell_grants(desk):
    return [g for g in desk.agent.grants() if "shell" in g["scopes"]]


@case
def case_a_shell_grant_ends_with_its_shell_unless_kept():
    desk = Desk()
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"])
        term.expect("granted")
        term.type("echo in-$((2+3))\n")
        term.expect("in-5")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    ended = wait_for("the grant ended with its shell",
                     lambda: [g for g in shell_grants(desk) if not g["live"]])
    check(ended[0].get("end_reason") == "shell ended", "grant: %r" % ended)
    wait_for("the end on the ticket's audit trail",
             lambda: any(e["action"] == "grant.end" and
                         e["details"].get("reason") == "shell ended" for e in desk.audit()))
    # A second shell asks again; kept, the grant outlives the shell.
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        desk.agent.cli("approve", desk.agent.question("bob")["id"], "--keep")
        term.expect("granted")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    live = [g for g in shell_grants(desk) if g["live"]]
    check(len(live) == 1 and not live[0].get("ends_with_shell"), "kept grant: %r" % live)
    term = Terminal(desk.ssh_argv("bob", tty=True) + ["join", desk.ticket])
    try:
        term.expect("by existing")
        check(desk.agent.pending() == [], "a kept grant asked again")
        term.type("exit\n")
        term.wait()
    finally:
        term.kill()
    check([g for g in shell_grants(desk) if g["live"]], "the kept grant ended with its shell")


@case
def case_policy_allows_only_the_commands_it_lists():
    policy = write_policy([{"roles": ["tier2"], "scopes": ["exec"], "commands": ["echo"]}])
    desk = Desk(agent_options=["--policy", policy])
    _, out, _ = desk.ssh("bob", "run", desk.ticket, "--", "echo", "listed")
    check(out == "listed\n", "a listed command: %r" % out)
    marker = os.path.join(WORK, "unlisted")
    status, _, err = desk.ssh("bob", "run", desk.ticket, "--", "touch", marker,
                              check_status=None)
    check(status != 0 and "policy" in err and "does not allow this command" in err,
          "an unlisted command: exit %d, %r" % (status, err))
    check(not os.path.exists(marker), "an unlisted command ran")
    check(desk.agent.pending() == [], "the policy should have decided without asking")
    decisions = wait_for("both decisions audited",
                         lambda: len(command_decisions(desk)) >= 2 and command_decisions(desk))
    check([(d["decision"], d["by"]) for d in decisions] ==
          [("allowed", "policy"), ("declined", "policy")], "audited: %r" % decisions)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("per_command.py BIN_DIR", "tl-percmd-", setup_globals,
                         track_popen=True, home=True))
