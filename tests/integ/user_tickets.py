#!/usr/bin/env python3
"""The user's side of the ticket end to end: a real relay, real agents, technicians
with the stock OpenSSH client, and a fake notifier program first on the agent's PATH
that records how it was run (the notifier is the boundary: docs/desk.md "The user's
side of the ticket"). Each case runs in its own process:

    user_tickets.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import re
import shlex
import socket
import subprocess
import sys

import relay_agent
import technicians
from relay_agent import RawAgent, Relay
from technicians import ROLES, Desk, SessionAgent
import tlcase
from tlcase import Failure, case, check, free_port, run, wait_for

BIN = None
WORK = None

FAKE_NOTIFIER = r'''#!%(python)s
# A notifier as the agent runs it: records its argv and the session bus it was given.
import json, os, sys, time
with open(%(record)r, "a") as f:
    f.write(json.dumps({"argv": sys.argv, "name": os.path.basename(sys.argv[0]),
                        "bus": os.environ.get("DBUS_SESSION_BUS_ADDRESS")}) + "\n")
# While the hold file is there, this notification is still on its way (bounded: 60 s).
deadline = time.monotonic() + 60
while os.path.exists(%(hold)r) and time.monotonic() < deadline:
    time.sleep(0.05)
'''

# What a desktop session looks like to the agent: a display and a session bus address.
DESKTOP = {"DISPLAY": ":99", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}
SESSION_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")


def fake_notifiers(names=("notify-send",)):
    """A folder holding fake notifier programs; returns (folder, record file, hold file)."""
    folder = os.path.join(WORK, "fakebin")
    os.makedirs(folder, exist_ok=True)
    record = os.path.join(WORK, "notifications.jsonl")
    hold = os.path.join(WORK, "hold")
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(FAKE_NOTIFIER % {"python": sys.executable, "record": record, "hold": hold})
        os.chmod(path, 0o755)
    return folder, record, hold


def notifications(record):
    if not os.path.exists(record):
        return []
    with open(record) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def agent_env(session, path_first=None, only_path=False):
    """The test's environment without any desktop session, then session's variables."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_VARIABLES}
    env.update(session)
    if path_first is not None:
        env["PATH"] = path_first if only_path else path_first + os.pathsep + env.get("PATH", "")
    return env


class NotifyAgent(SessionAgent):
    """The real agent, run with an environment of the test's choosing."""

    def __init__(self, name, extra=(), env=None):
        super().__init__(name, ["--notify-interval", "0s"] + list(extra))
        self.env = env

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BIN + "/tierline-agent", "run", "--state", self.dir, "--backoff-max-ms", "400",
             "--log-level", "debug", "--shell", "/bin/sh"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=self.env)
        wait_for("the agent's control socket", lambda: self.status().get("running"))
        return self

    def tickets(self, expect=0):
        out, err = self.cli("tickets", expect=expect)
        return out, err

    def tickets_json(self):
        out, _ = self.cli("tickets", "--json")
        return json.loads(out)

    def notifier_state(self):
        return self.status().get("notifications", {})


class UserDesk(Desk):
    """A relay with technicians and one running agent (env as given) with one ticket."""

    def __init__(self, env=None, agent_options=()):
        self.relay = Relay("relay")
        self.relay.ssh_port = free_port()
        self.keys = self.relay.add_technicians(ROLES)
        self.known_hosts = self.relay.write_known_hosts()
        self.relay.start()
        wait_for("the SSH port", lambda: self.ssh("alice", "whoami", check_status=None)[0] == 0)
        self.agent = NotifyAgent("agent", agent_options, env)
        self.agent.enroll(self.relay.code())
        self.agent.start()
        wait_for("the agent online", lambda: self.agent.status().get("connected"))
        self.ticket, self.evidence, _, _ = self.agent.help("the printer says it is offline")


def listed(agent, ticket):
    return next((t for t in agent.tickets_json()["tickets"] if t["ticket"] == ticket), None)


# ---- tierline-agent tickets --------------------------------------------------------------

@case
def case_tickets_show_status_and_the_latest_note_in_words():
    desk = UserDesk()
    agent = desk.agent
    out, _ = agent.tickets()
    check(desk.ticket in out and "new: waiting for a technician" in out and
          "the printer says it is offline" in out and "no note from a technician yet" in out,
          "a new ticket: " + out)

    desk.ssh("bob", "ticket", "take", desk.ticket)
    desk.ssh("bob", "ticket", "note", desk.ticket, "looking", "at", "the", "print", "queue")
    item = listed(agent, desk.ticket)
    check(item["status"] == "open" and item["note"]["text"] == "looking at the print queue" and
          item["note"]["by"] == "bob", "--json after a note: %r" % item)
    out, _ = agent.tickets()
    check("open: a technician is on it" in out and
          "latest note from bob" in out and "looking at the print queue" in out,
          "text after a note: " + out)

    # Waiting for the user: the status line says so, with the question.
    _, said, _ = desk.ssh("bob", "ticket", "ask", desk.ticket, "is", "the", "printer",
                          "switched", "on?")
    check("waits for the user" in said, "ticket ask: " + said)
    out, _ = agent.tickets()
    check(re.search(re.escape(desk.ticket) + r"\s+waiting for you: is the printer switched on\?",
                    out), "waiting-user in words: " + out)
    item = listed(agent, desk.ticket)
    check(item["status"] == "waiting-user" and item["status_text"] == "waiting for you" and
          item["note"]["text"] == "is the printer switched on?", "--json waiting: %r" % item)
    shown = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    check(shown["status"] == "waiting-user", "the relay's view: %r" % shown["status"])

    # Resolved: said in words, with the resolution as the latest note.
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "it", "was", "switched", "off")
    out, _ = agent.tickets()
    check(re.search(re.escape(desk.ticket) + r"\s+resolved: it was switched off", out),
          "resolved in words: " + out)
    item = listed(agent, desk.ticket)
    check(item["status"] == "resolved" and item["note"]["text"] == "it was switched off",
          "--json resolved: %r" % item)
    check(agent.tickets_json()["more"] is False, "more: %r" % agent.tickets_json())
    # ticket ask is audited like any change of a ticket.
    actions = [e["action"] for e in desk.audit()]
    check("ticket.ask" in actions, "ticket.ask not audited: %r" % actions)
    desk.relay.verify_audit()


@case
def case_tickets_without_a_running_agent_asks_the_relay_itself():
    desk = UserDesk()
    desk.ssh("alice", "ticket", "note", desk.ticket, "on", "it")
    desk.agent.stop()
    out, err = desk.agent.tickets()
    check(desk.ticket in out and "latest note from alice" in out and "on it" in out,
          "tickets with no agent running: %r %r" % (out, err))
    # The relay down: a clear error, exit 1, nothing printed as a list.
    desk.relay.kill()
    out, err = desk.agent.tickets(expect=1)
    check(out == "" and "tierline-agent tickets: the relay did not answer" in err,
          "tickets with the relay down: %r %r" % (out, err))


@case
def case_another_devices_tickets_never_appear():
    desk = UserDesk()
    other = NotifyAgent("other")
    other.enroll(desk.relay.code())
    other.start()
    wait_for("the other agent online", lambda: other.status().get("connected"))
    other_ticket, _, _, _ = other.help("my VPN drops every hour")
    desk.ssh("bob", "ticket", "note", other_ticket, "for", "the", "other", "machine", "only")
    desk.ssh("bob", "ticket", "note", desk.ticket, "for", "this", "machine")

    mine = [t["ticket"] for t in desk.agent.tickets_json()["tickets"]]
    theirs = [t["ticket"] for t in other.tickets_json()["tickets"]]
    check(mine == [desk.ticket], "this machine lists %r" % mine)
    check(theirs == [other_ticket], "the other machine lists %r" % theirs)
    out, _ = desk.agent.tickets()
    check("VPN" not in out and "other machine only" not in out, "leaked: " + out)

    # Nothing in the request can name another device: the connection's key decides.
    desk.agent.stop()
    raw = RawAgent(desk.relay, desk.agent)
    answer = raw.control(7, {"type": "tickets.list", "device": "D-2", "ticket": other_ticket})
    check(answer.get("ok") is True, "tickets.list: %r" % answer)
    check([t["ticket"] for t in answer["tickets"]] == [desk.ticket],
          "a request naming another device got %r" % answer["tickets"])
    raw.sock.close()


# ---- notifications ------------------------------------------------------------------------

@case
def case_a_technicians_note_runs_the_notifier():
    folder, record, _ = fake_notifiers()
    desk = UserDesk(env=agent_env(DESKTOP, folder))
    desk.ssh("bob", "ticket", "note", desk.ticket, "we", "restarted", "the", "spooler")
    shown = wait_for("a notification", lambda: notifications(record))
    argv = shown[0]["argv"]
    check(shown[0]["name"] == "notify-send", "notifier: %r" % shown[0])
    check("--app-name=Tierline" in argv and "--" in argv, "options: %r" % argv)
    summary, body = argv[argv.index("--") + 1:]
    check(desk.ticket in summary and "new note" in summary, "summary: %r" % summary)
    check("bob: we restarted the spooler" in body and "tierline-agent tickets" in body,
          "body: %r" % body)
    check(desk.agent.notifier_state().get("shown") == 1,
          "status: %r" % desk.agent.notifier_state())
    # A status the user must hear of: waiting for them, with the question.
    desk.ssh("bob", "ticket", "ask", desk.ticket, "please", "print", "a", "test", "page")
    shown = wait_for("a second notification", lambda: notifications(record)[1:])
    argv = shown[0]["argv"]
    summary, body = argv[argv.index("--") + 1:]
    check(summary == "Tierline: %s is waiting for you" % desk.ticket, "summary: %r" % summary)
    check("please print a test page" in body, "body: %r" % body)


@case
def case_a_consent_question_runs_the_notifier_naming_attend():
    folder, record, _ = fake_notifiers()
    desk = UserDesk(env=agent_env(DESKTOP, folder))
    tech = desk.spawn("bob", "run", desk.ticket, "--", "true")
    try:
        question = desk.agent.question("bob")
        shown = wait_for("a notification", lambda: notifications(record))
        argv = shown[0]["argv"]
        summary, body = argv[argv.index("--") + 1:]
        check("--urgency=critical" in argv, "a question is urgent: %r" % argv)
        check("bob (tier2) asks for exec on " + desk.ticket in summary, "summary: %r" % summary)
        check("tierline-agent attend" in body and question["id"] in body, "body: %r" % body)
        desk.agent.cli("deny", question["id"])
    finally:
        tech.kill()
        tech.wait()


@case
def case_no_notifier_without_a_graphical_session():
    folder, record, _ = fake_notifiers()
    # A session bus but no display, as over SSH: not a desktop.
    desk = UserDesk(env=agent_env({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"},
                                  folder))
    desk.ssh("bob", "ticket", "note", desk.ticket, "nobody", "sees", "this", "pop", "up")
    state = wait_for("the notice dropped", lambda: desk.agent.notifier_state().get("skipped"))
    check(notifications(record) == [], "the notifier ran: %r" % notifications(record))
    state = desk.agent.notifier_state()
    check(state["session"] is False and "DISPLAY" in state["why"], "status: %r" % state)
    out, _ = desk.agent.cli("status")
    check("desktop:   no notifications (no graphical session" in out and
          "tierline-agent attend" in out, "status text: " + out)
    check("desktop notifications off: no graphical session" in desk.agent.log_text(),
          "not logged")
    # The note is there all the same.
    out, _ = desk.agent.tickets()
    check("nobody sees this pop up" in out, "tickets: " + out)


@case
def case_the_session_bus_is_found_in_xdg_runtime_dir():
    folder, record, _ = fake_notifiers()
    runtime = os.path.join(WORK, "runtime")
    os.makedirs(runtime, mode=0o700)
    bus = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bus.bind(os.path.join(runtime, "bus"))
    desk = UserDesk(env=agent_env({"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": runtime},
                                  folder))
    desk.ssh("bob", "ticket", "note", desk.ticket, "found", "your", "bus")
    shown = wait_for("a notification", lambda: notifications(record))
    check(shown[0]["bus"] == "unix:path=%s/bus" % runtime, "bus given: %r" % shown[0])
    bus.close()


@case
def case_gdbus_shows_it_when_notify_send_is_missing():
    folder, record, _ = fake_notifiers(("gdbus",))
    # Only the fake gdbus on PATH: no notify-send anywhere.
    desk = UserDesk(env=agent_env(DESKTOP, folder, only_path=True))
    desk.ssh("bob", "ticket", "note", desk.ticket, shlex.quote("it's"), "the", "<b>toner</b>")
    shown = wait_for("a notification", lambda: notifications(record))
    argv = shown[0]["argv"]
    check(shown[0]["name"] == "gdbus" and argv[1:3] == ["call", "--session"] and
          "org.freedesktop.Notifications.Notify" in argv, "gdbus argv: %r" % argv)
    check(not any(a.startswith("-") for a in argv[9:]), "an argument gdbus reads as an option: %r"
          % argv)
    body = argv[13]
    check(body.startswith("'") and body.endswith("'") and
          "bob: it\\'s the &lt;b&gt;toner&lt;/b&gt;" in body, "quoted body: %r" % body)


@case
def case_a_burst_of_updates_is_one_notification():
    folder, record, hold = fake_notifiers()
    desk = UserDesk(env=agent_env(DESKTOP, folder))
    with open(hold, "w"):
        pass
    desk.ssh("bob", "ticket", "note", desk.ticket, "first")
    wait_for("the first notification", lambda: notifications(record))
    # While it is on its way, two more updates come: they wait, merged.
    desk.ssh("bob", "ticket", "note", desk.ticket, "second")
    desk.ssh("bob", "ticket", "ask", desk.ticket, "third:", "try", "again")
    wait_for("two notices pending", lambda: desk.agent.notifier_state().get("pending") == 2)
    check(len(notifications(record)) == 1, "ran again: %r" % notifications(record))
    os.remove(hold)
    shown = wait_for("the merged notification", lambda: notifications(record)[1:])
    wait_for("nothing left pending", lambda: desk.agent.notifier_state().get("pending") == 0 and
             desk.agent.notifier_state().get("running") is False)
    check(len(notifications(record)) == 2, "notifications: %r" % notifications(record))
    argv = shown[0]["argv"]
    summary, body = argv[argv.index("--") + 1:]
    check(summary == "Tierline: 2 notices", "merged summary: %r" % summary)
    check("new note on " + desk.ticket in body and desk.ticket + " is waiting for you" in body and
          body.count("tierline-agent tickets") == 1, "merged body: %r" % body)
    state = desk.agent.notifier_state()
    check(state["shown"] == 2 and state["merged"] == 1, "status: %r" % state)


@case
def case_hostile_note_text_arrives_escaped():
    folder, record, _ = fake_notifiers()
    desk = UserDesk(env=agent_env(DESKTOP, folder))
    # What a command line may carry (C0 controls are refused there): a C1 CSI, a
    # right-to-left override, a tab and a line break, and markup.
    hostile = "\u009b2J<a href='x'>click</a> & \u202eevil\tand\nfake line"
    desk.ssh("bob", "ticket", "note", desk.ticket, shlex.quote(hostile), text=False)
    # Listing: no control reaches the terminal, the note stays on its line; --json keeps it all.
    proc = subprocess.run([BIN + "/tierline-agent", "tickets", "--state", desk.agent.dir],
                          capture_output=True, timeout=60)
    check(proc.returncode == 0, "tickets: %r" % proc.stderr)
    raw = proc.stdout
    for byte in (b"\xc2\x9b", "\u202e".encode(), b"\t", b"\nfake line"):
        check(byte not in raw, "%r reached the terminal: %r" % (byte, raw))
    check(b"\\u009b2J<a href='x'>click</a> & \\u202eevil\\tand\\nfake line" in raw,
          "escaped: %r" % raw)
    item = listed(desk.agent, desk.ticket)
    check(item["note"]["text"] == hostile, "--json changed the text: %r" % item["note"]["text"])
    # Notification: escaped, its lines kept, and markup is text, not markup.
    shown = wait_for("a notification", lambda: notifications(record))
    argv = shown[0]["argv"]
    body = argv[argv.index("--") + 2]
    check("\x9b" not in body and "\u202e" not in body,
          "raw control in the notification: %r" % body)
    check("bob: \\u009b2J&lt;a href='x'&gt;click&lt;/a&gt; &amp; \\u202eevil" in body and
          "\nfake line" in body, "notification body: %r" % body)


# ---- the desktop's side -------------------------------------------------------------------

@case
def case_the_shipped_desktop_files_run_agent_commands():
    import configparser
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = {"autostart/tierline-agent.desktop": ("run", "false"),
             "applications/tierline-agent-attend.desktop": ("attend", "true")}
    for name, (command, terminal) in files.items():
        entry = configparser.ConfigParser(interpolation=None)
        entry.optionxform = str
        with open(os.path.join(source, "packaging", "xdg", name)) as f:
            entry.read_file(f)
        desktop = entry["Desktop Entry"]
        check(desktop["Type"] == "Application" and desktop["Terminal"] == terminal,
              "%s: %r" % (name, dict(desktop)))
        words = desktop["Exec"].split()
        check(words == ["tierline-agent", command], "%s runs %r" % (name, words))
        # The command it runs is one the agent has, as written.
        out, _ = run(BIN + "/tierline-agent", command, "--help")
        check(out.startswith("usage: tierline-agent " + command), "%s --help: %r" % (command, out))


# ---- bad input -----------------------------------------------------------------------------

@case
def case_ticket_ask_refuses_what_it_must_and_changes_nothing():
    desk = UserDesk()
    before = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    status, _, err = desk.ssh("bob", "ticket", "ask", desk.ticket, check_status=None)
    check(status == 2 and "usage: ticket ask T-N TEXT..." in err, "no text: %d %r" % (status, err))
    status, _, err = desk.ssh("bob", "ticket", "ask", "T-99", "hello", check_status=None)
    check(status == 1 and "no ticket T-99" in err, "no ticket: %d %r" % (status, err))
    status, _, err = desk.ssh("audrey", "ticket", "ask", desk.ticket, "hello", check_status=None)
    check(status == 77, "an auditor asked: %d %r" % (status, err))
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "done")
    status, _, err = desk.ssh("bob", "ticket", "ask", desk.ticket, "late", check_status=None)
    check(status == 1 and "is resolved; reopen it first" in err,
          "ask on a resolved ticket: %d %r" % (status, err))
    after = desk.ssh_json("bob", "ticket", "show", desk.ticket)
    asked = [e for e in after["events"] if e["kind"] == "note"]
    check(asked == [] and before["status"] == "new" and after["status"] == "resolved",
          "changed: %r" % after)
    # Bad options of the agent's side.
    out, err = run(BIN + "/tierline-agent", "tickets", "--state", desk.agent.dir, "--wait-ms",
                   "5", expect=2)
    check("--wait-ms wants 100..600000" in err, err)
    out, err = run(BIN + "/tierline-agent", "run", "--state", desk.agent.dir,
                   "--notify-interval", "2d", expect=2)
    check("--notify-interval wants a duration from 0s to 1h" in err, err)


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK
    technicians.BIN, technicians.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("user_tickets.py BIN_DIR", "tl-user-", setup_globals, track_popen=True,
                         home=True))
