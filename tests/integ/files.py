#!/usr/bin/env python3
"""Files with the stock OpenSSH clients (docs/protocol.md §7.16): sftp and scp against a real
relay over real SSH. Usage: files.py BIN_DIR CASE."""
import os
import re
import subprocess
import sys

import technicians
import tlcase
from technicians import Desk
from tlcase import case, check, wait_for


def setup_globals(bin_dir, work):
    global BIN, WORK
    BIN, WORK = bin_dir, work
    technicians.setup_globals(bin_dir, work)


def client_options(desk, user):
    return ["-F", "/dev/null", "-i", desk.keys[user], "-P", str(desk.relay.ssh_port),
            "-o", "UserKnownHostsFile=" + desk.known_hosts, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]


def wait_log(desk, pattern):
    wait_for("relay log: " + pattern, lambda: re.search(pattern, desk.relay.log_text()))


def sftp_batch(desk, user, commands):
    """sftp -b with commands; returns (status, stdout, stderr)."""
    batch = os.path.join(WORK, "batch-%s" % user)
    with open(batch, "w") as f:
        f.write("".join(line + "\n" for line in commands))
    proc = subprocess.run(["sftp", "-b", batch] + client_options(desk, user) +
                          [user + "@127.0.0.1"], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60, cwd=WORK)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(
        errors="replace")


@case
def case_sftp_subsystem_needs_files_pull():
    desk = Desk()
    # tier1 may not pull files: the subsystem is refused, as before.
    status, out, err = sftp_batch(desk, "alice", ["ls /"])
    check(status != 0 and "subsystem request failed" in err,
          "alice's sftp: status %d stdout %r stderr %r" % (status, out, err))
    wait_log(desk, r"request=subsystem name=sftp reason=role")
    # tier2 may: the relay speaks SFTP, and the root lists the tickets.
    status, out, err = sftp_batch(desk, "bob", ["pwd", "ls -1 /"])
    check(status == 0 and "Remote working directory: /" in out and
          ("/%s\n" % desk.ticket) in out,
          "bob's sftp: status %d stdout %r stderr %r" % (status, out, err))
    wait_log(desk, r"sftp started tech=bob")
    # A resolved ticket takes nothing, so it is not in the tree.
    desk.ssh("bob", "ticket", "take", desk.ticket)
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "printer", "back")
    status, out, err = sftp_batch(desk, "bob", ["ls -1 /"])
    check(status == 0 and desk.ticket not in out,
          "bob's sftp after resolve: status %d stdout %r stderr %r" % (status, out, err))
    # A session typed as a command is not the subsystem.
    status, _, err = desk.ssh("bob", "sftp", check_status=None)
    check(status == 2 and "unknown command" in err, "ssh bob sftp: %d %r" % (status, err))


@case
def case_files_on_machines_not_served_yet_nothing_written():
    desk = Desk(ticket=False)
    target = os.path.join(WORK, "hostname")
    status, out, err = sftp_batch(desk, "bob", ["get /T-1/etc/hostname " + target])
    check(status != 0 and not os.path.exists(target),
          "sftp get: status %d stdout %r stderr %r" % (status, out, err))
    proc = subprocess.run(["scp"] + client_options(desk, "bob") +
                          ["bob@127.0.0.1:T-1/etc/hostname", target], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    check(proc.returncode != 0 and not os.path.exists(target),
          "scp: status %d stderr %r" % (proc.returncode, proc.stderr))
    # Paths that climb out are refused before anything else.
    status, out, err = sftp_batch(desk, "bob", ["get /../etc/passwd " + target])
    check(status != 0 and not os.path.exists(target),
          "sftp get ..: status %d stdout %r stderr %r" % (status, out, err))


if __name__ == "__main__":
    sys.exit(tlcase.main("files.py BIN_DIR", "tl-files-", setup_globals, track_popen=True,
                         home=True))
