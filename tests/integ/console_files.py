#!/usr/bin/env python3
"""The console's `tierline pull` and `tierline push` (console/transfer.h): the stock scp to the
relay the console checked, against a real relay and agent. Usage: console_files.py BIN_DIR CASE."""
import hashlib
import os
import re
import subprocess
import sys

import technicians
import tlcase
from technicians import Desk
from tlcase import case, check

BIN = WORK = None


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


def console_env(desk, user, pin=None, tmpdir=None, port=None):
    """The console's environment as user against desk's relay; its temporary files in tmpdir."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env.update(HOME=WORK, XDG_CONFIG_HOME=os.path.join(WORK, "xdg"),
               XDG_CACHE_HOME=os.path.join(WORK, "cache"),
               TIERLINE_RELAY="127.0.0.1:%d" % (port or desk.relay.ssh_port),
               TIERLINE_USER=user, TIERLINE_IDENTITY=desk.keys[user],
               TIERLINE_HOST_KEY=pin or desk.relay.fingerprint)
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    return env


def console(desk, user, *words, pin=None, tmpdir=None, port=None):
    """tierline as user: (status, stdout, stderr)."""
    proc = subprocess.run([BIN + "/tierline", *words], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, cwd=WORK,
                          env=console_env(desk, user, pin, tmpdir, port))
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(
        errors="replace")


def logins(desk, user):
    return len(re.findall(r"ssh login user=%s " % user, desk.relay.log_text()))


def fresh_dir(name):
    path = os.path.join(WORK, name)
    os.makedirs(path)
    return path


@case
def case_transfer_bad_arguments_reach_nothing():
    desk = Desk(ticket=False)
    before = logins(desk, "bob")
    target = os.path.join(WORK, "never")
    local = os.path.join(WORK, "local.txt")
    with open(local, "w") as f:
        f.write("x")
    for words, why in [
            (["pull"], "usage: tierline pull T-N MACHINE_PATH"),
            (["pull", "T-1"], "usage: tierline pull T-N MACHINE_PATH"),
            (["pull", "X-1", "/etc/hostname", target], "'X-1' is not a ticket"),
            (["pull", "T-01", "/etc/hostname", target], "'T-01' is not a ticket"),
            (["pull", "T-1", "", target], "the path on the machine is empty"),
            (["pull", "T-1", "/etc/a\x1b]0;x\x07b", target], "holds a control character"),
            (["pull", "T-1", "/" + "a" * 4100, target], "longer than 4096 bytes"),
            (["pull", "T-1", "/etc/hostname", target, "extra"], "usage: tierline pull"),
            (["pull", "--recursive", "T-1", "/etc", target], "unknown option '--recursive'"),
            (["push", "T-1", local], "usage: tierline push T-N LOCAL MACHINE_PATH"),
            (["push", "T-1", "", "/tmp/"], "the local path is empty")]:
        status, out, err = console(desk, "bob", *words)
        check(status == 2 and why in err and out == "",
              "%r: exit %d, stdout %r, stderr %r" % (words, status, out, err))
        check("\x1b" not in err, "%r: a raw escape in the message: %r" % (words, err))
    status, out, err = console(desk, "bob", "push", "T-1", os.path.join(WORK, "missing"), "/tmp/")
    check(status == 1 and "missing: No such file or directory" in err,
          "push of a missing file: %d %r" % (status, err))
    check(logins(desk, "bob") == before and not os.path.exists(target),
          "a refused command reached the relay or wrote a file")


@case
def case_transfer_trusts_only_the_key_the_console_checked():
    desk = Desk(ticket=False)
    tmp = fresh_dir("tmp")
    target = os.path.join(WORK, "hostname")
    wrong = "SHA256:" + "A" * 43
    status, out, err = console(desk, "bob", "pull", "T-1", "/etc/hostname", target, pin=wrong,
                               tmpdir=tmp)
    check(status == 255 and wrong in err and "host key" in err,
          "a pin that does not match: exit %d, stderr %r" % (status, err))
    check(logins(desk, "bob") == 0 and not os.path.exists(target) and os.listdir(tmp) == [],
          "after a refused host key: logins %d, files %r" % (logins(desk, "bob"), os.listdir(tmp)))


@case
def case_pull_without_the_files_capability_is_refused_and_writes_nothing():
    desk = Desk()
    tmp = fresh_dir("tmp")
    target = os.path.join(WORK, "hostname")
    before = logins(desk, "alice")
    # tier1 may not move files: scp's SFTP subsystem is refused by the relay.
    status, out, err = console(desk, "alice", "pull", desk.ticket, "/etc/hostname", target,
                               tmpdir=tmp)
    check(status != 0 and "subsystem request failed" in err,
          "alice's pull: exit %d, stdout %r, stderr %r" % (status, out, err))
    check(not os.path.exists(target) and os.listdir(tmp) == [],
          "after the refusal: %r, %r" % (os.path.exists(target), os.listdir(tmp)))
    # scp signed in with the console's key and trusted the relay's (one login, as alice).
    check(logins(desk, "alice") == before + 1,
          "alice's logins: %d, then %d" % (before, logins(desk, "alice")))


def console_spawn(desk, user, *words, tmpdir=None):
    """tierline as user, started in the background (its stdout and stderr to pipes)."""
    return subprocess.Popen([BIN + "/tierline", *words], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=WORK,
                            env=console_env(desk, user, tmpdir=tmpdir))


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@case
def case_pull_and_push_move_exact_bytes_and_are_recorded():
    desk = Desk()
    tmp = fresh_dir("tmp")
    machine = fresh_dir("machine")
    original = os.path.join(machine, "printers.conf")
    with open(original, "wb") as f:
        f.write(os.urandom(2 * 1024 * 1024 + 3))
    # carol (tier3) may push: the user's question offers both, and the user says yes.
    proc = console_spawn(desk, "carol", "pull", desk.ticket, original, tmpdir=tmp)
    question = desk.agent.question("carol")
    check(question["scopes"] == ["files"] and question.get("push") is True,
          "the user's question: %r" % question)
    desk.agent.cli("approve", question["id"])
    out, err = proc.communicate(timeout=120)
    err = err.decode(errors="replace")
    copied = os.path.join(WORK, "printers.conf")
    check(proc.returncode == 0 and os.path.exists(copied) and
          sha256_of(copied) == sha256_of(original),
          "pull: exit %d, stderr %r" % (proc.returncode, err))
    # scp shows the relay's lines as they come.
    check("waiting for the user's consent (files, pull and push)" in err and
          re.search(r"tierline: %s: granted G-\d+ until \S+ \(by user\), files pull and push"
                    % desk.ticket, err), "the consent was not said: %r" % err)
    # A relative machine path is taken from "/", and LOCAL may name the file.
    status, out, err = console(desk, "carol", "pull", desk.ticket, original.lstrip("/"),
                               "again.conf", tmpdir=tmp)
    check(status == 0 and sha256_of(os.path.join(WORK, "again.conf")) == sha256_of(original),
          "pull again: %d %r" % (status, err))
    # Push into a directory on the machine: the file keeps its name.
    local = os.path.join(WORK, "fix.conf")
    with open(local, "wb") as f:
        f.write(b"[printer]\nstate=online\n" * 1000)
    status, out, err = console(desk, "carol", "push", desk.ticket, local, machine + "/",
                               tmpdir=tmp)
    pushed = os.path.join(machine, "fix.conf")
    check(status == 0 and os.path.exists(pushed) and sha256_of(pushed) == sha256_of(local),
          "push: %d %r" % (status, err))
    check(os.listdir(tmp) == [], "files left in TMPDIR: %r" % os.listdir(tmp))
    # Each file moved is audited with its path and hash, and kept as evidence on the ticket.
    entries = desk.audit()
    pulls = [e for e in entries if e["action"] == "files.pull" and e["actor"] == "tech:carol"]
    pushes = [e for e in entries if e["action"] == "files.push" and e["actor"] == "tech:carol"]
    check(len(pulls) == 2 and {e["details"]["sha256"] for e in pulls} == {sha256_of(original)}
          and {e["details"]["path"] for e in pulls} == {original},
          "files.pull entries: %r" % pulls)
    check(len(pushes) == 1 and pushes[0]["details"]["sha256"] == sha256_of(local) and
          pushes[0]["details"]["path"] == pushed, "files.push entries: %r" % pushes)
    kept = {e["hash"] for e in desk.evidence_of_kind("file")}
    check({sha256_of(original), sha256_of(local)} <= kept, "evidence: %r" % kept)


@case
def case_push_under_a_pull_only_grant_writes_nothing():
    desk = Desk()
    tmp = fresh_dir("tmp")
    machine = fresh_dir("machine")
    local = os.path.join(WORK, "fix.conf")
    with open(local, "w") as f:
        f.write("state=online\n")
    # bob (tier2) has files.pull alone: a push is refused, and nothing lands on the machine.
    proc = console_spawn(desk, "bob", "push", desk.ticket, local, machine + "/", tmpdir=tmp)
    question = desk.agent.question("bob")
    check(question.get("push") is False, "bob's question: %r" % question)
    desk.agent.cli("approve", question["id"])
    out, err = proc.communicate(timeout=120)
    err = err.decode(errors="replace")
    check(proc.returncode != 0 and "pull only" in err,
          "bob's push: exit %d, stderr %r" % (proc.returncode, err))
    check(os.listdir(machine) == [] and os.listdir(tmp) == [],
          "written anyway: %r %r" % (os.listdir(machine), os.listdir(tmp)))
    check(not [e for e in desk.audit() if e["action"] == "files.push"],
          "a refused push was audited as moved")


if __name__ == "__main__":
    sys.exit(tlcase.main("console_files.py BIN_DIR", "tl-console-files-", setup_globals,
                         track_popen=True, home=True))
