#!/usr/bin/env python3
"""The three programs' command lines, as a user meets them: every command's
--help (answered locally, with nothing sent or changed), --json on listings
and reports, the relay's ticket filters, the SSH address chosen at init, and
the console honouring ~/.ssh/known_hosts. Real processes on loopback, real
TLS and SSH, real SQLite files. Each case runs in its own process:

    cli.py BIN_DIR CASE

The commands are not listed here: each program's own --help (and the relay's
`help` over SSH) names them, so a new command is tested as soon as it exists.
Every wait is bounded; nothing here measures speed.
"""
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys

import relay_agent
import technicians
from relay_agent import Agent, Relay
from technicians import Desk
import tlcase
from tlcase import Failure, case, check, free_port, keygen, run, wait_for

BIN = None
WORK = None

# Words a command needs before its --help would make sense to a reader; the help
# must come back whatever they are, and nothing they name may happen.
RELAY_ARGS = {"user": ["add", "zed", "--role", "tier1", "--key", "/nonexistent.pub"],
              "ticket": ["show", "T-1"]}
AGENT_ARGS = {"enroll": ["tl1:K7QX-2M9P-4RTW-8HJC@127.0.0.1:9#SHA256:" + "A" * 43],
              "help": ["the printer says it is offline"], "approve": ["Q-1"], "deny": ["Q-1"],
              "end": ["G-1"]}


# A command in `help` over SSH, and in the console's --help: one or two words, then its usage.
SSH_HELP_LINE = r"^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?= |$)"


def program(name, *args, expect=0, env=None, timeout=60):
    return run(os.path.join(BIN, name), *args, expect=expect, env=env, timeout=timeout)


def command_names(help_text, pattern):
    """The command names a program's --help lists, in order, without repeats."""
    names = []
    for match in re.finditer(pattern, help_text, re.M):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


def option_words(text):
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def check_help(out, prefix, name, what):
    """A command's help: its usage, its options (those of the usage line, no more,
    no fewer), and an example of this command."""
    usage_line = out.split("\n", 1)[0]
    check(usage_line.startswith("usage: " + prefix + name),
          "%s: help does not start with 'usage: %s%s':\n%s" % (what, prefix, name, out))
    check(re.search(r"\nExample:\n  %s%s(\s|$)" % (re.escape(prefix), re.escape(name)), out),
          "%s: no example of %s%s:\n%s" % (what, prefix, name, out))
    options = out.split("\nOptions:\n", 1)
    check(len(options) == 2, "%s: no Options section:\n%s" % (what, out))
    listed = set()
    for line in options[1].split("\n\n", 1)[0].splitlines():
        first = line.split()[0].rstrip(",") if line.split() else ""
        if re.fullmatch(r"--?[a-z][a-z-]*", first):
            listed.add(first)
    check({"-h", "--help"} & listed, "%s: -h, --help not among the options:\n%s" % (what, out))
    listed.discard("-h")
    in_usage = option_words(usage_line)
    check(in_usage == listed,
          "%s: the usage line names %s, the options list %s" % (
              what, sorted(in_usage), sorted(listed)))


def documented_fields(help_text):
    """The member names a command's --help gives for its --json output."""
    for line in help_text.splitlines():
        match = re.match(r"^  --json .*?(?:an object|a JSON array of objects): (.*)$", line)
        if match:
            listed = re.sub(r"\([^)]*\)", "", match.group(1))
            return {name.strip() for name in listed.split(",")}
    raise Failure("no documented JSON members in:\n" + help_text)


def check_documented(help_text, value, what):
    """value (an object, or an array of them) has exactly the members --help names."""
    documented = documented_fields(help_text)
    for item in value if isinstance(value, list) else [value]:
        check(set(item) == documented, "%s --json has %s; its --help documents %s" % (
            what, sorted(item), sorted(documented)))


def relay_help(*words):
    return program("tierline-relay", *(list(words) + ["--help"]))[0]


def snapshot(folder):
    """Every file under folder: {relative path: sha256 of its bytes}."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return files


def console_env(**settings):
    """The console with its own home and settings only from the environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env["HOME"] = os.path.join(WORK, "tech-home")
    env.pop("XDG_CONFIG_HOME", None)
    os.makedirs(os.path.join(env["HOME"], ".ssh"), mode=0o700, exist_ok=True)
    env.update(settings)
    return env


def console(*args, env, timeout=60):
    proc = subprocess.run([os.path.join(BIN, "tierline"), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr


# ---- 14: every command answers --help, locally --------------------------------------------

@case
def case_relay_commands_answer_help_and_change_nothing():
    relay = Relay("relay")
    names = command_names(program("tierline-relay", "--help")[0], r"^      tierline-relay (\S+)")
    check(len(names) >= 10, "tierline-relay --help lists only %r" % names)
    before = snapshot(relay.dir)
    new_dir = os.path.join(WORK, "never-made")
    for name in names:
        data = new_dir if name == "init" else relay.dir
        for flag in ("--help", "-h"):
            words = [name] + RELAY_ARGS.get(name, []) + ["--data", data, flag]
            # serve would run until killed: the timeout is the failure.
            out, err = program("tierline-relay", *words, timeout=30)
            check_help(out, "tierline-relay ", name, "tierline-relay " + " ".join(words))
            check(err == "", "%s: stderr %r" % (" ".join(words), err))
    check(not os.path.exists(new_dir), "init --help made " + new_dir)
    check(snapshot(relay.dir) == before, "a --help changed the relay's folder")
    out, _ = program("tierline-relay", "user", "list", "--data", relay.dir, "--json")
    check(json.loads(out) == [], "user add --help added a user: " + out)


@case
def case_agent_commands_answer_help_and_send_nothing():
    relay, agent = relay_agent.enrolled_pair()
    agent.start()
    wait_for("the agent online", lambda: agent.status().get("connected"))
    names = command_names(program("tierline-agent", "--help")[0], r"^  ([a-z][a-z-]*)(?= |$)")
    check(len(names) >= 10 and "help" in names, "tierline-agent --help lists only %r" % names)
    for name in names:
        for flag in ("--help", "-h"):
            words = [name] + AGENT_ARGS.get(name, []) + [flag, "--state", agent.dir]
            out, err = program("tierline-agent", *words, timeout=30)
            check_help(out, "tierline-agent ", name, "tierline-agent " + " ".join(words))
            check(err == "", "%s: stderr %r" % (" ".join(words), err))
    # help --help opened no ticket, queued nothing; the running agent is still the only one.
    check(relay.tickets() == [], "a --help opened a ticket: %r" % relay.tickets())
    status = agent.status()
    check(status.get("queued") == [] and status.get("connected"),
          "after the --help calls the agent says %r" % status)
    check(agent.proc.poll() is None, "the running agent stopped")


@case
def case_ssh_commands_answer_help_without_asking_the_user():
    policy = technicians.write_policy([{"roles": ["tier3"], "scopes": ["exec"]}])
    desk = Desk(agent_options=["--policy", policy])
    _, listing, _ = desk.ssh("carol", "help")
    names = command_names(listing, SSH_HELP_LINE)
    check("run" in names and "ticket show" in names, "carol's help:\n" + listing)
    audit_before = [e for e in desk.audit() if not e["action"].startswith("login.")]
    args = {"ticket show": ["T-1"], "ticket note": ["T-1", "a", "note"], "evidence get":
            ["T-1", "0" * 8], "fix": ["T-1", "flush-dns"], "run": ["T-1"]}
    for name in names:
        needs_ticket = name not in ("tickets", "whoami", "help")
        words = name.split() + args.get(name, ["T-1"] if needs_ticket else [])
        for flag in ("--help", "-h"):
            # run T-1 --help used to ask the user for "--help"; this waits at most a minute.
            _, out, err = desk.ssh("carol", *(words + [flag]))
            check_help(out, "", name, "ssh carol " + " ".join(words + [flag]))
    # A role without the command still gets its help, and a word on what it lacks.
    _, out, _ = desk.ssh("audrey", "run", desk.ticket, "--help")
    check_help(out, "", "run", "ssh audrey run --help")
    check("may not use it: it needs run" in out, "audrey's run --help: " + out)
    _, out, _ = desk.ssh("carol", "ticket", "--help")
    check("usage: ticket show" in out and "usage: ticket resolve" in out, "ticket --help: " + out)
    audit_after = [e for e in desk.audit() if not e["action"].startswith("login.")]
    check(audit_after == audit_before, "a --help reached the audit log: %r" %
          [e["action"] for e in audit_after[len(audit_before):]])
    check(desk.agent.pending() == [] and desk.agent.grants() == [],
          "a --help reached the machine: %r %r" % (desk.agent.pending(), desk.agent.grants()))
    # After the remote command's first word, --help is that command's own (coreutils' echo).
    _, out, _ = desk.ssh("carol", "run", desk.ticket, "/bin/echo", "--help")
    check("Usage: /bin/echo" in out and "usage: run" not in out,
          "run T-1 /bin/echo --help printed %r" % out)


@case
def case_console_commands_answer_help_without_connecting():
    # A listener that must see no connection at all: the console answers before it connects.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    env = console_env(TIERLINE_RELAY="127.0.0.1:%d" % listener.getsockname()[1],
                      TIERLINE_USER="bob", TIERLINE_HOST_KEY="SHA256:" + "A" * 43)
    status, out, err = console("--help", env=env)
    check(status == 0, "tierline --help: %d %s" % (status, err))
    names = command_names(out, SSH_HELP_LINE)
    check("run" in names and "ticket show" in names and "evidence get" in names,
          "tierline --help lists %r" % names)
    for name in names:
        words = name.split() + ([] if name in ("setup", "tickets", "whoami", "help") else ["T-1"])
        for flag in ("--help", "-h"):
            status, out, err = console(*(words + [flag]), env=env)
            what = "tierline " + " ".join(words + [flag])
            check(status == 0 and err == "", "%s: exit %d, stderr %r" % (what, status, err))
            check_help(out, "tierline ", name, what)
    status, out, _ = console("ticket", "--help", env=env)
    check(status == 0 and "usage: tierline ticket note" in out, "ticket --help: %r" % out)
    ready, _, _ = select.select([listener], [], [], 0.5)
    check(not ready, "the console connected to the relay for a --help")
    listener.close()


@case
def case_console_and_relay_name_the_same_commands():
    desk = Desk(ticket=False)
    # Tier 3 holds every command but the auditors' (audit ...): both lists together are all.
    relay_commands = {c["name"]: c["usage"] for user in ("carol", "audrey")
                      for c in desk.ssh_json(user, "help")["commands"]}
    _, out, _ = console("--help", env=console_env())
    console_usage = {}
    for line in out.splitlines():
        match = re.match(SSH_HELP_LINE, line)
        if match:
            console_usage[match.group(1)] = line.strip()
    console_usage.pop("setup", None)  # the console's own, with no relay side
    console_usage.pop("verify-bundle", None)
    console_usage.pop("completion bash", None)
    console_usage.pop("pull", None)  # scp through the relay's SFTP service, no command
    console_usage.pop("push", None)
    check(set(console_usage) == set(relay_commands),
          "the console has %s, the relay %s" % (sorted(console_usage), sorted(relay_commands)))
    for name, usage in relay_commands.items():
        missing = option_words(usage) - option_words(console_usage[name])
        check(not missing, "tierline %s lacks the relay's %s" % (name, sorted(missing)))


# ---- 18: --json on every listing and report; the relay's ticket filters -------------------

@case
def case_relay_reports_as_json():
    data = os.path.join(WORK, "relay")
    ssh_port = free_port()
    out, _ = program("tierline-relay", "init", "--data", data, "--listen", "127.0.0.1:7999",
                     "--ssh-listen", "127.0.0.1:%d" % ssh_port, "--json")
    report = json.loads(out)
    check_documented(relay_help("init"), report, "init")
    check(report["data"] == data and report["listen"] == "127.0.0.1:7999" and
          report["ssh_listen"] == "127.0.0.1:%d" % ssh_port and
          re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", report["fingerprint"]), "init: %r" % report)

    out, _ = program("tierline-relay", "enroll-code", "--data", data, "--count", "3",
                     "--note", "rollout", "--json")
    codes = json.loads(out)
    check_documented(relay_help("enroll-code"), codes, "enroll-code")
    check(len(codes) == 3 and len({c["enrollment"] for c in codes}) == 3, "codes: %r" % codes)
    for code in codes:
        check(set(code) == {"enrollment", "code_id", "expires", "note"} and
              code["note"] == "rollout" and isinstance(code["expires"], int) and
              code["enrollment"].startswith("tl1:") and
              code["enrollment"].endswith("@127.0.0.1:7999#" + report["fingerprint"]),
              "code: %r" % code)

    out, _ = program("tierline-relay", "host-key", "--data", data, "--known-hosts",
                     "relay.example.com:2222", "--json")
    host_key = json.loads(out)
    check_documented(relay_help("host-key"), host_key, "host-key")
    check(host_key["fingerprint"] == report["fingerprint"] and
          host_key["key"].startswith("ssh-ed25519 ") and
          host_key["known_hosts"] == "[relay.example.com]:2222 " + host_key["key"],
          "host-key: %r" % host_key)

    out, _ = program("tierline-relay", "roles", "--json")
    roles = json.loads(out)
    check_documented(relay_help("roles"), roles, "roles")
    check_documented("  --json an object: name, summary, roles", roles["capabilities"],
                     "roles' capabilities")
    check(roles["roles"] == ["tier1", "tier2", "tier3", "tier4", "auditor", "admin"],
          "roles: %r" % roles["roles"])
    by_name = {c["name"]: c for c in roles["capabilities"]}
    check(by_name["run"]["roles"] == ["tier2", "tier3"] and
          by_name["users"]["roles"] == ["admin"] and by_name["run"]["summary"],
          "capabilities: %r" % roles["capabilities"])
    markdown, _ = program("tierline-relay", "roles", "--markdown")
    for capability in by_name:
        check("`%s`" % capability in markdown, capability + " is not in the Markdown table")

    # No relay has served this folder yet: the chain verifies, but no checkpoint signs its entries
    # (docs/audit-format.md §15), so the verdict is "broken" and names them.
    out, _ = program("tierline-relay", "audit-verify", "--data", data, "--json", expect=1)
    verdict = json.loads(out)
    check_documented(relay_help("audit-verify"), verdict, "audit-verify")
    check(verdict["ok"] is False and verdict["verdict"] == "broken" and verdict["entries"] == 4
          and verdict["reason"] is None and re.fullmatch(r"[0-9a-f]{64}", verdict["last_hash"]) and
          verdict["checkpoints"]["bad"]["category"] == "unsigned" and
          verdict["checkpoints"]["unsigned"] == {"first_entry": 1, "last_entry": 4,
                                                 "serving": False},
          "audit-verify: %r" % verdict)
    # A changed entry: the verdict names it, on stdout, and the exit status says so too.
    log = os.path.join(data, "audit.log")
    with open(log) as f:
        lines = f.readlines()
    lines[1] = lines[1].replace("rollout", "rollOUT")
    with open(log, "w") as f:
        f.writelines(lines)
    out, _ = program("tierline-relay", "audit-verify", "--data", data, "--json", expect=1)
    verdict = json.loads(out)
    check(verdict["ok"] is False and verdict["verdict"] == "broken" and
          verdict["bad_line"] == 2 and verdict["entries"] == 1 and verdict["reason"],
          "tampered audit-verify: %r" % verdict)


@case
def case_bad_report_options_are_usage_errors():
    relay = Relay("relay")
    for words, needle in (
            (["enroll-code", "--count", "0"], "--count"),
            (["enroll-code", "--ttl", "soon"], "--ttl"),
            (["enroll-code", "DATA", "--json", "--count"], "missing value for '--count'"),
            (["roles", "--json", "--markdown"], "--markdown or --json"),
            (["audit-verify", "--json", "--bogus"], "unknown option '--bogus'"),
            (["init", "--ssh-listen", "nowhere"], "--ssh-listen"),
            (["init", "--listen", "127.0.0.1:9", "--ssh-listen", "127.0.0.1:9"], "must differ"),
            (["host-key", "--json", "--known-hosts", "nohostport"], "--known-hosts wants"),
            (["tickets", "--tier", "5"], "--tier wants 0, 1, 2, 3 or 4, not '5'"),
            (["tickets", "--tier", "one"], "--tier"),
            (["tickets", "--status", "pending"], "--status wants new, open"),
            (["tickets", "--assignee", "Bob Smith"], "--assignee wants an account name"),
            (["tickets", "DATA", "--json", "--assignee"], "missing value for '--assignee'")):
        data = os.path.join(WORK, "fresh") if words[0] == "init" else relay.dir
        if "DATA" in words:
            at = words.index("DATA")
            words = words[:at] + ["--data", data] + words[at + 1:]
        elif words[0] != "roles":
            words = words + ["--data", data]
        before = snapshot(relay.dir)
        out, err = program("tierline-relay", *words, expect=2)
        check(needle in err and out == "", "%s: stdout %r, stderr %r" % (words, out, err))
        check(snapshot(relay.dir) == before, "%s changed the relay's folder" % words)
    check(not os.path.exists(os.path.join(WORK, "fresh")), "a refused init made its folder")


@case
def case_relay_tickets_show_assignees_and_filter_like_ssh():
    desk = Desk()
    first = desk.ticket
    second, _, _, _ = desk.agent.help("the scanner jams")
    desk.ssh("carol", "ticket", "take", first)
    data = desk.relay.dir

    def relay_ids(*filters):
        out, _ = program("tierline-relay", "tickets", "--data", data, "--json", *filters)
        return [t["id"] for t in json.loads(out)]

    def ssh_ids(*filters):
        # carol works tier 3: every tier and status, as the relay's own listing.
        wider = [] if "--tier" in filters else ["--tier", "all"]
        return [t["id"] for t in
                desk.ssh_json("carol", "tickets", "--status", "all", *(wider + list(filters)))[
                    "tickets"]]

    out, _ = program("tierline-relay", "tickets", "--data", data)
    header = out.splitlines()[0].split()
    check(header[:4] == ["ID", "TIER", "STATUS", "ASSIGNEE"], "header: %r" % header)
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    check(rows[first][3] == "carol" and rows[second][3] == "-", "listing:\n" + out)
    listing = json.loads(program("tierline-relay", "tickets", "--data", data, "--json")[0])
    check([t.get("assignee") for t in listing] == ["carol", None], "JSON: %r" % listing)
    check_documented(relay_help("tickets"), listing, "tierline-relay tickets")
    check_documented(desk.ssh("carol", "tickets", "--help")[1], desk.ssh_json("carol", "tickets"),
                     "ssh tickets")
    check_documented(relay_help("devices"), json.loads(
        program("tierline-relay", "devices", "--data", data, "--json")[0]), "devices")
    check_documented(relay_help("user"), json.loads(
        program("tierline-relay", "user", "list", "--data", data, "--json")[0]), "user list")
    check_documented(desk.ssh("carol", "evidence", "--help")[1],
                     desk.ssh_json("carol", "evidence", first), "ssh evidence")
    for filters, expected in ((["--assignee", "carol"], [first]), (["--status", "open"], [first]),
                              (["--status", "new"], [second]), (["--tier", "1"], [first, second]),
                              (["--tier", "2"], []), (["--assignee", "bob"], []),
                              (["--tier", "1", "--status", "new"], [second])):
        check(relay_ids(*filters) == expected and ssh_ids(*filters) == expected,
              "tickets %s: relay %r, ssh %r, expected %r" % (
                  filters, relay_ids(*filters), ssh_ids(*filters), expected))
    check(ssh_ids("--mine") == [first], "--mine: %r" % ssh_ids("--mine"))
    # The same bad values are refused the same way over SSH: a reason, then the usage.
    for filters, needle in ((["--tier", "9"], "--tier wants 0, 1, 2, 3 or 4, or all"),
                            (["--status", "pending"], "--status wants new, open"),
                            (["--assignee", "Bob Smith"], "--assignee wants an account name"),
                            (["--bogus"], "unknown option '--bogus'")):
        _, out, err = desk.ssh("carol", "tickets", *filters, check_status=2)
        check(needle in err and "usage: tickets" in err and out == "",
              "ssh tickets %s: %r %r" % (filters, out, err))


@case
def case_ssh_help_lists_commands_as_json():
    desk = Desk(ticket=False)
    capabilities = [c["name"] for c in json.loads(
        program("tierline-relay", "roles", "--json")[0])["capabilities"]]
    for user, role in (("alice", "tier1"), ("audrey", "auditor")):
        listing = desk.ssh_json(user, "help")
        help_help = desk.ssh(user, "help", "--help")[1]
        check_documented(help_help, listing, "ssh help")
        each = re.search(r"commands \(each: ([^)]*)\)", help_help)
        check(each, "help --help does not say what each command holds:\n" + help_help)
        check_documented("  --json an object: " + each.group(1), listing["commands"],
                         "ssh help's commands")
        check_documented(desk.ssh(user, "whoami", "--help")[1], desk.ssh_json(user, "whoami"),
                         "ssh whoami")
        check(listing["name"] == user and listing["role"] == role, "help --json: %r" % listing)
        names = [c["name"] for c in listing["commands"]]
        check(all(set(c) == {"name", "usage", "summary", "options", "example", "capability"}
                  for c in listing["commands"]), "help --json entries: %r" % listing["commands"])
        _, text, _ = desk.ssh(user, "help")
        for command in listing["commands"]:
            check(command["usage"] in text, "%s is in help --json, not in help" % command["name"])
            # What the console caches: the same options, values and lines as COMMAND --help.
            own_help = desk.ssh(user, *(command["name"].split() + ["--help"]))[1]
            options = own_help.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
            listed = [re.sub(r"\s{2,}", "  ", line.strip()) for line in options
                      if not line.strip().startswith("-h, --help")]
            as_json = ["%s%s  %s" % (o["name"], " " + o["value"] if o["value"] else "", o["help"])
                       for o in command["options"]]
            check(as_json == listed, "%s: help --json has options %r, its --help %r" % (
                command["name"], as_json, listed))
            check(command["example"] in own_help and command["example"].startswith(
                command["name"]), "%s: example %r" % (command["name"], command["example"]))
            check(command["capability"] in capabilities,
                  "%s: capability %r" % (command["name"], command["capability"]))
        check(("run" in names) == (role == "tier2"), "%s may run? %r" % (role, names))


@case
def case_console_setup_reports_as_json():
    env = console_env()
    config = os.path.join(env["HOME"], ".config", "tierline", "config")
    status, out, err = console("setup", "--relay", "relay.example.com:2200", "--user", "bob",
                               "--json", env=env)
    check(status == 0, "setup --json: %d %s" % (status, err))
    report = json.loads(out)
    check_documented(console("setup", "--help", env=env)[1], report, "setup")
    check(report == {"path": config, "relay": "relay.example.com", "port": 2200, "user": "bob",
                     "identity": os.path.join(env["HOME"], ".ssh", "id_ed25519"),
                     "identity_readable": False, "host_key": None, "dropped_pin": False},
          "setup --json: %r" % report)
    with open(config) as f:
        written = f.read()
    for words, needle in ((["--relay", "bad host", "--user", "bob"], "--relay"),
                          (["--relay", "r", "--user", "bob", "--host-key", "SHA256:x"],
                           "--host-key"),
                          (["--relay", "r", "--json"], "--relay and --user are required")):
        status, out, err = console("setup", *words, "--json", env=env)
        check(status == 2 and needle in err and out == "", "setup %s: %d %r %r" % (
            words, status, out, err))
    with open(config) as f:
        check(f.read() == written, "a refused setup changed the config file")


# ---- 17: one serve for agents and technicians; the console and known_hosts -----------------

@case
def case_init_ssh_listen_lets_one_serve_do_both():
    keys = {"bob": keygen(os.path.join(WORK, "bob"), "bob")}
    relay = Relay.__new__(Relay)
    relay.dir, relay.port, relay.ssh_port = os.path.join(WORK, "relay"), free_port(), free_port()
    relay.proc, relay.env, relay.log_path = None, None, os.path.join(WORK, "relay.log")
    out, _ = program("tierline-relay", "init", "--data", relay.dir, "--listen",
                     "127.0.0.1:%d" % relay.port, "--ssh-listen", "127.0.0.1:%d" % relay.ssh_port)
    check("SSH listener:    127.0.0.1:%d" % relay.ssh_port in out, "init said:\n" + out)
    program("tierline-relay", "user", "add", "bob", "--role", "tier2", "--key",
            keys["bob"] + ".pub", "--data", relay.dir)
    known_hosts = relay_agent.Relay.write_known_hosts(relay)
    log = open(relay.log_path, "a")
    proc = subprocess.Popen([os.path.join(BIN, "tierline-relay"), "serve", "--data", relay.dir],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    relay.proc = proc
    wait_for("the relay's SSH port", lambda: "technicians' SSH listening" in
             open(relay.log_path).read() or proc.poll() is not None)
    check(proc.poll() is None, "serve exited:\n" + open(relay.log_path).read())
    ssh = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", keys["bob"], "-p", str(relay.ssh_port), "-o",
         "UserKnownHostsFile=" + known_hosts, "-o", "StrictHostKeyChecking=yes", "-o",
         "BatchMode=yes", "-o", "IdentitiesOnly=yes", "bob@127.0.0.1", "whoami"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    check(ssh.returncode == 0 and ssh.stdout.startswith("bob (tier2)"),
          "ssh whoami: %d %r %r" % (ssh.returncode, ssh.stdout, ssh.stderr))
    check(relay.accepting(), "the agents' port is not served")
    proc.terminate()
    proc.wait(timeout=20)


@case
def case_console_trusts_the_relay_in_known_hosts_as_ssh_does():
    desk = Desk(ticket=False)
    home = os.path.join(WORK, "tech-home")
    env = console_env(TIERLINE_RELAY="127.0.0.1:%d" % desk.relay.ssh_port,
                      TIERLINE_USER="carol", TIERLINE_IDENTITY=desk.keys["carol"])
    known_hosts = os.path.join(home, ".ssh", "known_hosts")
    # Nothing known, nothing pinned, no terminal: refused, and told how to trust it.
    status, _, err = console("whoami", env=env)
    check(status == 255 and "~/.ssh/known_hosts" in err, "unknown relay: %d %s" % (status, err))
    # The line the relay prints, in ~/.ssh/known_hosts: trusted, as by ssh.
    shutil.copy(desk.known_hosts, known_hosts)
    status, out, err = console("whoami", env=env)
    check(status == 0 and out.startswith("carol (tier3)"), "known relay: %d %r %s" % (
        status, out, err))
    config = os.path.join(home, ".config", "tierline", "config")
    check(not os.path.exists(config), "trusting known_hosts wrote a pin")
    # The same line hashed (ssh-keygen -H), as HashKnownHosts writes it.
    run("ssh-keygen", "-q", "-H", "-f", known_hosts)
    status, out, err = console("whoami", env=env)
    check(status == 0, "hashed known_hosts: %d %s" % (status, err))
    # Another key for the relay's address: refused, even with a pin that matches.
    other = keygen(os.path.join(WORK, "other-host-key"))
    with open(other + ".pub") as f:
        other_line = "[127.0.0.1]:%d %s\n" % (desk.relay.ssh_port, " ".join(f.read().split()[:2]))
    with open(known_hosts, "w") as f:
        f.write("# the relay's key was replaced?\n" + other_line)
    for extra in ({}, {"TIERLINE_HOST_KEY": desk.relay.fingerprint}):
        status, out, err = console("whoami", env=dict(env, **extra))
        check(status == 255 and out == "" and "known_hosts:2" in err and
              "DIFFERS FROM KNOWN_HOSTS" in err, "changed key %r: %d %r %s" % (
                  extra, status, out, err))
    # ~/.ssh/config's UserKnownHostsFile replaces the default file, as for ssh.
    elsewhere = os.path.join(home, "relays.known")
    shutil.copy(desk.known_hosts, elsewhere)
    with open(os.path.join(home, ".ssh", "config"), "w") as f:
        f.write("Host 127.0.0.1\n    UserKnownHostsFile %s\n" % elsewhere)
    status, out, err = console("whoami", env=env)
    check(status == 0, "UserKnownHostsFile: %d %s" % (status, err))
    # A revoked key is refused wherever it is listed.
    with open(elsewhere, "a") as f:
        f.write("@revoked * " + open(desk.known_hosts).read().split(None, 1)[1])
    status, _, err = console("whoami", env=env)
    check(status == 255 and "REVOKED" in err, "revoked: %d %s" % (status, err))


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


if __name__ == "__main__":
    sys.exit(tlcase.main("cli.py BIN_DIR", "tl-cli-", setup_globals, track_popen=True,
                         home=True))
