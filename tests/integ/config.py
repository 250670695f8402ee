#!/usr/bin/env python3
"""The configuration files, relay.conf and agent.conf (docs/configuration.md),
with real processes on loopback: a relay started from its file alone serves
and an agent enrolls; `config check` names the file, line and reason of each
fault; SIGHUP changes the log level and a limit at run time, and a broken
file on SIGHUP changes nothing while the relay goes on serving. Each case
runs in its own process:

    config.py BIN_DIR CASE

Every wait is bounded; nothing here measures speed.
"""
import json
import os
import re
import signal
import subprocess
import sys

import relay_agent
from ssh_front import banner_socket, still_open
import tlcase
from tlcase import Failure, case, check, free_port, keygen, run, wait_for

BIN = None
WORK = None
SOURCES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def env_with(**variables):
    env = dict(os.environ)
    for name in ("TIERLINE_RELAY_CONFIG", "TIERLINE_AGENT_CONFIG", "TIERLINE_AGENT_STATE"):
        env.pop(name, None)
    env.update(variables)
    return env


def program(name, words, env, expect):
    """Runs BIN/name with words: (status, stdout, stderr); expect None takes any status."""
    proc = subprocess.run([BIN + "/" + name] + list(words), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)
    if expect is not None and proc.returncode != expect:
        raise Failure("%s %s exited %d, expected %d\n%s%s" % (
            name, " ".join(words), proc.returncode, expect, proc.stdout, proc.stderr))
    return proc.returncode, proc.stdout, proc.stderr


def relay_cmd(*words, env=None, expect=0):
    return program("tierline-relay", words, env, expect)


def agent_cmd(*words, env=None, expect=0):
    return program("tierline-agent", words, env, expect)


class ConfiguredRelay:
    """A relay made by init, then served with `serve` alone: its settings from relay.conf."""

    def __init__(self, settings):
        self.dir = os.path.join(WORK, "relay")
        self.port, self.ssh_port = free_port(), free_port()
        run(BIN + "/tierline-relay", "init", "--data", self.dir, "--listen",
            "127.0.0.1:%d" % self.port, "--ssh-listen", "127.0.0.1:%d" % self.ssh_port)
        self.conf = os.path.join(WORK, "relay.conf")
        self.env = env_with(TIERLINE_RELAY_CONFIG=self.conf)
        self.write(settings)
        self.log_path = os.path.join(WORK, "relay.log")
        self.proc = None

    def write(self, settings):
        write(self.conf, "# written by the test\ndata_dir = %s\n%s" % (self.dir, settings))

    def start(self):
        self.log = open(self.log_path, "a")
        # --config names the file; the admin commands below find it through the variable.
        self.proc = subprocess.Popen([BIN + "/tierline-relay", "serve", "--config", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=env_with())
        wait_for("the SSH port", lambda: "technicians' SSH listening" in self.log_text()
                 or self.proc.poll() is not None)
        check(self.proc.poll() is None, "the relay exited: " + self.log_text())
        return self

    def log_text(self):
        return read(self.log_path)

    def reload(self, settings=None, text=None):
        """Writes the file anew and sends SIGHUP; waits for the outcome in the log: its line."""
        if text is not None:
            write(self.conf, text)
        elif settings is not None:
            self.write(settings)
        before = len(self.log_text())
        self.proc.send_signal(signal.SIGHUP)
        return wait_for("the relay's answer to SIGHUP", lambda: re.search(
            r"^.*(configuration reloaded|reload refused).*$", self.log_text()[before:], re.M))

    def ssh(self, user, key, known_hosts, *words, source="127.0.0.1"):
        proc = subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", key, "-p", str(self.ssh_port), "-o",
             "UserKnownHostsFile=" + known_hosts, "-o", "StrictHostKeyChecking=yes", "-o",
             "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o",
             "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BindAddress=" + source,
             user + "@127.0.0.1"] + list(words),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr

    def add_user(self, name, role="tier1"):
        """An account made with the admin command and no --data: (key path)."""
        key = keygen(os.path.join(WORK, name), name)
        relay_cmd("user", "add", name, "--role", role, "--key", key + ".pub", env=self.env)
        return key

    def known_hosts(self):
        _, out, _ = relay_cmd("host-key", "--known-hosts", "127.0.0.1:%d" % self.ssh_port,
                              env=self.env)
        return write(os.path.join(WORK, "known_hosts"), out)

    def stop(self):
        self.proc.terminate()
        status = self.proc.wait(timeout=30)
        check(status == 0, "the relay exited %d after SIGTERM" % status)


def preauth_let_in(port, source, tries):
    """How many of tries connections from source got the SSH banner; the sockets, to close."""
    results = [banner_socket(port, source) for _ in range(tries)]
    return sum(1 for _, banner in results if banner), [sock for sock, _ in results]


# ---- a relay and an agent from their files alone ---------------------------------------------

@case
def case_relay_from_its_file_alone_serves_and_an_agent_enrolls():
    relay = ConfiguredRelay("log_level = info\n").start()
    check("configuration path=%s read=yes" % relay.conf in relay.log_text(),
          "the relay did not say which file it read: " + relay.log_text())
    # Admin commands find the data directory in the same file.
    _, code, _ = relay_cmd("enroll-code", "--ttl", "10m", env=relay.env)
    state = os.path.join(WORK, "agent-state")
    agent_conf = write(os.path.join(WORK, "agent.conf"),
                       "state_dir = %s\nbackoff_max_ms = 400\nlog_level = debug\n" % state)
    agent_env = env_with(TIERLINE_AGENT_CONFIG=agent_conf)
    _, out, _ = agent_cmd("enroll", code.strip(), env=agent_env)
    check(re.search(r"Enrolled as D-\d+", out), "no device id in: " + out)
    check(os.path.exists(os.path.join(state, "relay.json")),
          "the agent's state is not in agent.conf's state_dir")
    log = open(os.path.join(WORK, "agent.log"), "a")
    agent = subprocess.Popen([BIN + "/tierline-agent", "run"], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, env=agent_env)
    status = lambda: json.loads(agent_cmd("status", "--json", env=agent_env)[1])
    wait_for("the agent connected", lambda: status().get("connected"), timeout=60)
    _, out, _ = relay_cmd("devices", "--json", env=relay.env)
    devices = json.loads(out)
    devices = devices.get("devices", devices) if isinstance(devices, dict) else devices
    check(len(devices) == 1, "devices without --data: %r" % devices)
    # The agent's SIGHUP: a new log level, and a setting that waits for a restart.
    write(agent_conf, "state_dir = %s\nbackoff_max_ms = 800\nlog_level = warn\n" % state)
    agent.send_signal(signal.SIGHUP)
    agent_log = os.path.join(WORK, "agent.log")
    wait_for("the agent's reload", lambda: "configuration reloaded" in read(agent_log))
    text = read(agent_log)
    check("setting changed key=log_level old=debug new=warn" in text, text)
    check("setting needs a restart key=backoff_max_ms running=400 file=800" in text, text)
    agent.terminate()
    agent.wait(timeout=20)
    relay.stop()


# ---- config check and config show ----------------------------------------------------------

BAD_RELAY_FILES = [
    ("data_dir = /var/lib/tierline\nlisten 127.0.0.1:7443\n",
     ":2: expected 'key = value', got 'listen 127.0.0.1:7443'"),
    ("# ok\nssh_max_conections = 3\n", ":2: unknown setting 'ssh_max_conections' (known: "),
    ("ssh_max_connections = 0\n", ":1: 'ssh_max_connections' wants a number 1..65536, got '0'"),
    ("log_level = loud\n", ":1: 'log_level' wants debug, info, warn or error, got 'loud'"),
    ("listen = 127.0.0.1\n", ":1: 'listen' wants ADDR:PORT"),
    ("data_dir = var/lib\n", ":1: 'data_dir' wants an absolute path, got 'var/lib'"),
    ("metrics_public = sometimes\n", ":1: 'metrics_public' wants yes or no, got 'sometimes'"),
    ("log_level = info\nlog_level = debug\n", ":2: 'log_level' is set twice"),
    ("log_level =\n", ":1: no value for 'log_level'"),
    ("[web]\nlisten = 127.0.0.1:8443\n", ":1: unknown section '[web]'"),
    ("# long\n" + "# " + "x" * 5000 + "\n", ":2: line longer than 4096 bytes"),
]


@case
def case_config_check_names_file_line_and_reason():
    env = env_with()
    good = write(os.path.join(WORK, "good.conf"),
                 "# a relay\n\ndata_dir = /srv/tierline\nssh_max_connections = 64\n"
                 "metrics_listen = off\nlog_level = warn\n")
    _, out, _ = relay_cmd("config", "check", "--config", good, env=env)
    check(out == "%s: ok\n" % good, "check of a good file: %r" % out)
    for number, (text, reason) in enumerate(BAD_RELAY_FILES):
        path = write(os.path.join(WORK, "bad%d.conf" % number), text)
        _, out, err = relay_cmd("config", "check", "--config", path, env=env, expect=2)
        check(err.startswith(path + reason), "%r: expected %r, got %r" % (text, path + reason, err))
        check(out == "", "a bad file printed %r on stdout" % out)
        # serve refuses it the same way, before touching anything.
        _, _, err = relay_cmd("serve", "--config", path, env=env, expect=2)
        check(path + reason.split(" (known")[0] in err, "serve on %r: %r" % (text, err))
    # The variable names the file as --config does; a missing named file is an error.
    _, out, _ = relay_cmd("config", "check", env=env_with(TIERLINE_RELAY_CONFIG=good))
    check(out == "%s: ok\n" % good, out)
    missing = os.path.join(WORK, "missing.conf")
    _, _, err = relay_cmd("config", "check", "--config", missing, env=env, expect=2)
    check(err.startswith(missing + ": "), err)
    _, _, err = relay_cmd("devices", env=env_with(TIERLINE_RELAY_CONFIG=missing), expect=2)
    check(missing in err, "devices with a missing file: " + err)
    # A bad file stops an admin command that needs its data_dir, and not one given --data.
    bad = os.path.join(WORK, "bad2.conf")
    _, _, err = relay_cmd("devices", env=env_with(TIERLINE_RELAY_CONFIG=bad), expect=2)
    check(bad + ":1:" in err, err)
    # show: each value and where it came from.
    _, out, _ = relay_cmd("config", "show", "--config", good, env=env)
    check(re.search(r"^data_dir = /srv/tierline +# %s:3$" % re.escape(good), out, re.M), out)
    check(re.search(r"^ssh_preauth_per_address = 32 +# default$", out, re.M), out)
    check(re.search(r"^# listen is not set +# default: the address chosen at init$", out, re.M),
          out)

    # The agent's file, the same way.
    agent_good = write(os.path.join(WORK, "agent.conf"), "consent_timeout = 5m\n")
    _, out, _ = agent_cmd("config", "check", "--config", agent_good, env=env)
    check(out == "%s: ok\n" % agent_good, out)
    for text, reason in [("consent_timeout = 3d\n", ":1: 'consent_timeout' wants a duration"),
                         ("relay = evil.example:7443\n", ":1: unknown setting 'relay'"),
                         ("state_dir = relative\n", ":1: 'state_dir' wants an absolute path"),
                         ("notify_interval = 10s\nnotify_interval = 20s\n",
                          ":2: 'notify_interval' is set twice")]:
        path = write(os.path.join(WORK, "agent-bad.conf"), text)
        _, _, err = agent_cmd("config", "check", "--config", path, env=env, expect=2)
        check(err.startswith(path + reason), "%r: %r" % (text, err))
        _, _, err = agent_cmd("status", env=env_with(TIERLINE_AGENT_CONFIG=path), expect=2)
        check(path + reason in err, "status with %r: %r" % (text, err))
    _, out, _ = agent_cmd("config", "show", "--config", agent_good, env=env)
    check(re.search(r"^consent_timeout = 5m +# %s:1$" % re.escape(agent_good), out, re.M), out)


@case
def case_example_files_list_every_setting_at_its_default():
    env = env_with()
    for program, name in (("tierline-relay", "relay.conf"), ("tierline-agent", "agent.conf")):
        example = os.path.join(SOURCES, "packaging", "etc", name)
        out, _ = run(BIN + "/" + program, "config", "show", "--config", example, env=env)
        text = read(example)
        for line in out.splitlines()[1:]:
            match = re.match(r"^(\w+) = (\S+) +# default$", line)
            unset = re.match(r"^# (\w+) is not set", line)
            key = (match or unset).group(1) if (match or unset) else None
            check(key is not None, "%s: unexpected line %r" % (name, line))
            check(re.search(r"^#%s = " % key, text, re.M), "%s lacks #%s" % (name, key))
            if match:
                check(re.search(r"^#%s = %s$" % (key, re.escape(match.group(2))), text, re.M),
                      "%s: #%s is not at its default %s" % (name, key, match.group(2)))
        # Uncommented, the example is a good file.
        plain = write(os.path.join(WORK, name), re.sub(r"^#(\w+ = )", r"\1", text, flags=re.M))
        run(BIN + "/" + program, "config", "check", "--config", plain, env=env)


# ---- SIGHUP --------------------------------------------------------------------------------

@case
def case_sighup_changes_log_level_and_a_limit():
    relay = ConfiguredRelay("log_level = info\nssh_preauth_per_address = 32\n").start()
    alice = relay.add_user("alice")
    known_hosts = relay.known_hosts()
    # At info, the debug line about loading accounts is not written.
    wait_for("alice's login", lambda: relay.ssh("alice", alice, known_hosts, "whoami")[0] == 0)
    check("technicians loaded" not in relay.log_text(), "a debug line at info")
    let_in, socks = preauth_let_in(relay.ssh_port, "127.0.0.2", 3)
    check(let_in == 3, "3 connections before login from one address: %d let in" % let_in)
    for sock in socks:
        sock.close()

    line = relay.reload("log_level = debug\nssh_preauth_per_address = 1\n").group(0)
    check("configuration reloaded" in line and "changed=2" in line, line)
    text = relay.log_text()
    check("setting changed key=log_level old=info new=debug" in text, text)
    check("setting changed key=ssh_preauth_per_address old=32 new=1" in text, text)
    # The new limit: one connection before login per address.
    let_in, socks = preauth_let_in(relay.ssh_port, "127.0.0.3", 3)
    check(let_in == 1, "after the reload, %d connections let in from one address, not 1" % let_in)
    for sock in socks:
        sock.close()
    # The new level: the next account load is logged.
    relay.add_user("bob")
    wait_for("the debug line of the account load", lambda: "technicians loaded count=2"
             in relay.log_text())
    # What needs a restart keeps its value and says so; the relay still listens where it did.
    new_port = free_port()
    line = relay.reload("log_level = debug\nssh_preauth_per_address = 1\nlisten = 127.0.0.1:%d\n"
                        % new_port).group(0)
    check("needs_restart=1" in line, line)
    check("setting needs a restart key=listen" in relay.log_text(), relay.log_text())
    check(relay_agent.Relay.accepting(relay), "the agents' port closed")
    relay.stop()


@case
def case_broken_file_on_sighup_keeps_the_settings_and_the_relay_serving():
    relay = ConfiguredRelay("log_level = info\nssh_preauth_per_address = 1\n").start()
    alice = relay.add_user("alice")
    known_hosts = relay.known_hosts()
    wait_for("alice's login", lambda: relay.ssh("alice", alice, known_hosts, "whoami")[0] == 0)
    # A good line, then a bad one: nothing of it is taken.
    line = relay.reload(text="data_dir = %s\nssh_preauth_per_address = 5\nlog_level = chatty\n"
                        % relay.dir).group(0)
    check("reload refused, the settings stay as they were" in line, line)
    check("%s:3: 'log_level' wants debug, info, warn or error, got 'chatty'" % relay.conf in line,
          line)
    check(relay.proc.poll() is None, "the relay died on a bad file")
    let_in, socks = preauth_let_in(relay.ssh_port, "127.0.0.4", 3)
    check(let_in == 1, "the old limit of 1 is gone: %d let in" % let_in)
    for sock in socks:
        sock.close()
    # Still serving technicians and agents.
    status, out, err = relay.ssh("alice", alice, known_hosts, "whoami")
    check(status == 0 and "alice" in out, "alice after the bad reload: %d %r %r" % (status, out, err))
    _, code, _ = relay_cmd("enroll-code", "--data", relay.dir)
    state = os.path.join(WORK, "agent")
    _, out, _ = agent_cmd("enroll", code.strip(), "--state", state, env=env_with())
    check(re.search(r"Enrolled as D-\d+", out), out)
    # A file that cannot be read is refused the same way.
    os.unlink(relay.conf)
    before = len(relay.log_text())
    relay.proc.send_signal(signal.SIGHUP)
    wait_for("the refusal of a missing file",
             lambda: "reload refused" in relay.log_text()[before:])
    check(relay.conf + ": no such file or directory" in relay.log_text()[before:],
          relay.log_text()[before:])
    relay.stop()



# ---- the desk's settings in relay.conf ------------------------------------------------------

DESK_KEYS = ("sla_zone = Europe/Berlin\n"
             "sla_hours = mon-fri 09:00-17:00\n"
             "sla_holidays = 2026-12-25, 2026-12-24 09:00-12:00\n"
             "sla_s4 = 2h 8h, tier3 - 16h\n"
             "retention_recordings = 30\n")


@case
def case_desk_settings_in_relay_conf_are_read_checked_and_said_once():
    relay = ConfiguredRelay(DESK_KEYS)
    _, out, _ = relay_cmd("config", "check", env=relay.env)
    check(out == "%s: ok\n" % relay.conf, "check of the desk keys: %r" % out)
    _, out, _ = relay_cmd("config", "show", env=relay.env)
    check(re.search(r"^sla_hours = mon-fri 09:00-17:00 +# %s:4$" % re.escape(relay.conf), out,
                    re.M), out)
    check(re.search(r"^# sla_vendor is not set +# default: no target$", out, re.M), out)
    relay.start()
    check("desk configuration source=relay.conf zone=Europe/Berlin" in relay.log_text(),
          "the relay did not take the SLA from relay.conf: " + relay.log_text())
    # A bad desk key on SIGHUP changes nothing and the relay serves on.
    line = relay.reload(DESK_KEYS.replace("mon-fri 09:00-17:00", "mon-fri 9-17")).group(0)
    check("reload refused" in line, line)
    check('%s:4: sla_hours: mon: not hours like "09:00-17:00"' % relay.conf in line, line)
    check(relay.proc.poll() is None, "the relay died on a bad desk key")
    relay.stop()

    # config check, serve and retention prune refuse a bad value at its line, with its key.
    for text, reason in [
            ("sla_hours = mon-fri 09:00-17:00; fri 10:00-12:00\n",
             ":4: sla_hours: fri is given twice (group 1 and group 2): give each day once"),
            ("sla_zone = Mars/Olympus_Mons\n", ":4: sla_zone: unknown time zone 'Mars/Olympus_Mons'"),
            ("sla_s1 = 8h 4h\n",
             ":4: sla_s1: in tier 1 the first response (8h) is due after the resolution (4h)"),
            ("retention_events = 0\n", ":4: retention_events: wants a whole number of days")]:
        relay.write("log_level = info\n" + text)
        _, out, err = relay_cmd("config", "check", env=relay.env, expect=2)
        check(err.startswith(relay.conf + reason), "check of %r: %r" % (text, err))
        _, _, err = relay_cmd("serve", "--config", relay.conf, env=env_with(), expect=2)
        check(relay.conf + reason in err, "serve with %r: %r" % (text, err))
    _, _, err = relay_cmd("retention", "prune", "--dry-run", env=relay.env, expect=1)
    check(relay.conf + ":4: retention_events: wants a whole number" in err, err)

    # Said in both places: refused, naming both, by config check and by serve.
    desk = write(os.path.join(relay.dir, "desk.json"),
                 '{"sla": {"calendar": {"24x7": true}, "targets": {'
                 '"S1": {"first_response": "1h", "resolution": "2h"}, '
                 '"S2": {"first_response": "1h", "resolution": "2h"}, '
                 '"S3": {"first_response": "1h", "resolution": "2h"}, '
                 '"S4": {"first_response": "1h", "resolution": "2h"}}}, '
                 '"retention": {"events": 30}}')
    relay.write(DESK_KEYS)
    want = "the SLA is set twice, by sla_ keys (first at %s:3) and by %s's \"sla\": keep one" % (
        relay.conf, desk)
    _, _, err = relay_cmd("config", "check", env=relay.env, expect=2)
    check(want in err, "check with both: %r" % err)
    _, _, err = relay_cmd("serve", "--config", relay.conf, env=env_with(), expect=1)
    check("refusing to serve: " + want in err, "serve with both: %r" % err)
    relay.write("retention_events = 10\n")
    _, _, err = relay_cmd("retention", "prune", "--dry-run", env=relay.env, expect=1)
    check("the retention is set twice, by retention_ keys (first at %s:3)" % relay.conf in err,
          err)
    # desk.json alone still works as before.
    relay.write("log_level = info\n")
    _, out, _ = relay_cmd("retention", "prune", "--dry-run", env=relay.env)
    check("would" in out, out)

def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    relay_agent.BIN, relay_agent.WORK = BIN, WORK


if __name__ == "__main__":
    sys.exit(tlcase.main("config.py BIN_DIR", "tl-config-", setup_globals, track_popen=True,
                         home=True))
