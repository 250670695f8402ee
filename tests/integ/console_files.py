#!/usr/bin/env python3
"""The console's `tierline pull` and `tierline push` (console/transfer.h): the stock scp to the
relay the console checked, against a real relay and agent. Usage: console_files.py BIN_DIR CASE."""
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


def console(desk, user, *words, pin=None, tmpdir=None, port=None):
    """tierline as user: (status, stdout, stderr). Its temporary files go to tmpdir."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TIERLINE_") and not k.startswith("SSH_")}
    env.update(HOME=WORK, XDG_CONFIG_HOME=os.path.join(WORK, "xdg"),
               XDG_CACHE_HOME=os.path.join(WORK, "cache"),
               TIERLINE_RELAY="127.0.0.1:%d" % (port or desk.relay.ssh_port),
               TIERLINE_USER=user, TIERLINE_IDENTITY=desk.keys[user],
               TIERLINE_HOST_KEY=pin or desk.relay.fingerprint)
    if tmpdir is not None:
        env["TMPDIR"] = tmpdir
    proc = subprocess.run([BIN + "/tierline", *words], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=120, env=env, cwd=WORK)
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


if __name__ == "__main__":
    sys.exit(tlcase.main("console_files.py BIN_DIR", "tl-console-files-", setup_globals,
                         track_popen=True, home=True))
