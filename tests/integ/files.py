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


def sftp_spawn(desk, user, commands, name="batch"):
    """sftp -b started in the background; (process, path of its batch file)."""
    batch = os.path.join(WORK, "%s-%s" % (name, user))
    with open(batch, "w") as f:
        f.write("".join(line + "\n" for line in commands))
    return subprocess.Popen(["sftp", "-b", batch] + client_options(desk, user) +
                            [user + "@127.0.0.1"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=WORK)


def finished(proc):
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def audit_of(desk, action, technician):
    return [e for e in desk.audit()
            if e["action"] == action and e["actor"] == "tech:" + technician]


@case
def case_files_grant_asks_the_user_pull_only_or_push():
    desk = Desk()
    # tier2 has files.pull alone: the question says pull only, and no p answer is offered.
    proc = sftp_spawn(desk, "bob", ["ls /%s/etc" % desk.ticket])
    question = desk.agent.question("bob")
    check(question["scopes"] == ["files"] and question.get("push") is False and
          "copy files from this machine" in question["reason"], "bob's question: %r" % question)
    desk.agent.cli("approve", question["id"], "--pull-only", expect=1)
    desk.agent.cli("approve", question["id"])
    status, out, err = finished(proc)
    check(re.search(r"tierline: %s: granted G-\d+ until \S+ \(by user\), files pull only" %
                    desk.ticket, err), "bob's sftp: %d %r %r" % (status, out, err))
    granted = audit_of(desk, "consent.granted", "bob")
    check(len(granted) == 1 and granted[0]["details"]["scopes"] == ["files"] and
          granted[0]["details"]["push"] is False and granted[0]["subject"] == desk.ticket,
          "consent.granted: %r" % granted)
    asked = audit_of(desk, "consent.request", "bob")
    check(len(asked) == 1 and asked[0]["details"]["push"] is False, "consent.request: %r" % asked)
    # The live grant serves the next session without a question.
    status, out, err = sftp_batch(desk, "bob", ["ls /%s/etc" % desk.ticket])
    check("(by existing), files pull only" in err and not desk.agent.pending(),
          "bob again: %d %r %r" % (status, out, err))
    # tier3 has files.push: the question asks for both, and the user may allow pulling only.
    proc = sftp_spawn(desk, "carol", ["ls /%s/tmp" % desk.ticket])
    question = desk.agent.question("carol")
    check(question.get("push") is True and "from and to this machine" in question["reason"],
          "carol's question: %r" % question)
    desk.agent.cli("approve", question["id"], "--pull-only")
    status, out, err = finished(proc)
    check("(by user), files pull only" in err, "carol's sftp: %d %r %r" % (status, out, err))
    granted = audit_of(desk, "consent.granted", "carol")
    check(granted and granted[-1]["details"]["push"] is False, "carol's grant: %r" % granted)
    grants = [g for g in desk.agent.grants() if g["technician"] == "carol"]
    check(grants and not grants[0].get("push"), "the agent's record: %r" % grants)


def granted_session(desk, user, commands):
    """sftp -b as user, the user answering yes; (status, stdout, stderr)."""
    proc = sftp_spawn(desk, user, commands)
    question = desk.agent.question(user)
    desk.agent.cli("approve", question["id"])
    return finished(proc)


@case
def case_files_stat_and_list_reach_the_machine_never_through_a_link():
    desk = Desk()
    tree = os.path.join(WORK, "machine")
    os.makedirs(os.path.join(tree, "inside"))
    with open(os.path.join(tree, "inside", "notes.txt"), "w") as f:
        f.write("twelve bytes")
    os.symlink(os.path.join(tree, "inside"), os.path.join(tree, "link"))
    os.symlink("/etc", os.path.join(tree, "inside", "out"))
    os.mkfifo(os.path.join(tree, "inside", "fifo\x1bname"))
    remote = "/%s%s" % (desk.ticket, tree)
    status, out, err = granted_session(desk, "bob", ["ls -l %s/inside" % remote,
                                                     "ls -1 %s" % remote])
    check(status == 0, "bob's listing: %d %r %r" % (status, out, err))
    check(re.search(r"-rw\S+ .* 12 notes\.txt", out) and re.search(r"l\S+ .* out", out),
          "the listing: %r" % out)
    check("fifo" not in out, "a name with a control character was listed: %r" % out)
    check(re.search(r"\blink\b", out) and re.search(r"\binside\b", out), "the tree: %r" % out)
    # Through a link: refused on the machine, said on stderr; nothing listed.
    status, out, err = sftp_batch(desk, "bob", ["ls -l %s/link/notes.txt" % remote])
    check(status != 0 and " 12 " not in out and
          "refused: a symbolic link on the path" in err, "through the link: %r %r" % (out, err))
    status, out, err = sftp_batch(desk, "bob", ["ls -1 %s/inside/out/passwd" % remote])
    check(status != 0 and "refused: a symbolic link" in err,
          "out through a link: %r %r" % (out, err))
    # Up and out of the tree, and a control character in a path: refused on the relay.
    status, out, err = sftp_batch(desk, "bob", ["ls -1 /%s/../../etc" % desk.ticket])
    check(status != 0 and "passwd" not in out and
          "tierline: the path climbs above the top of the tree" in err,
          "climbing: %r %r" % (out, err))
    status, out, err = sftp_batch(desk, "bob", ["ls -1 \"%s/inside/a\x01b\"" % remote])
    check(status != 0 and re.search(r"tierline: .*control character", err),
          "a control character: %r %r" % (out, err))
    # Reading a file is not served yet, under a live grant too: nothing comes, nothing is written.
    target = os.path.join(WORK, "copied")
    status, out, err = sftp_batch(desk, "bob", ["get %s/inside/notes.txt %s" % (remote, target)])
    check(status != 0 and not os.path.exists(target), "get: %d %r %r" % (status, out, err))
    proc = subprocess.run(["scp"] + client_options(desk, "bob") +
                          ["bob@127.0.0.1:%s/inside/notes.txt" % remote.lstrip("/"), target],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    check(proc.returncode != 0 and not os.path.exists(target),
          "scp: %d %r" % (proc.returncode, proc.stderr))


@case
def case_files_grant_declined_or_refused_is_told_and_recorded():
    desk = Desk()
    proc = sftp_spawn(desk, "carol", ["ls /%s/tmp" % desk.ticket])
    question = desk.agent.question("carol")
    desk.agent.cli("deny", question["id"])
    status, out, err = finished(proc)
    check(status != 0 and "tierline: %s: the user declined" % desk.ticket in err,
          "carol's sftp: %d %r %r" % (status, out, err))
    denied = audit_of(desk, "consent.denied", "carol")
    check(len(denied) == 1 and denied[0]["details"]["scope"] == "files", "denied: %r" % denied)
    # No such ticket, and a resolved one: told, nobody asked.
    status, out, err = sftp_batch(desk, "carol", ["ls /T-99/tmp"])
    check(status != 0 and "tierline: T-99: no ticket T-99" in err, "T-99: %r" % err)
    desk.ssh("bob", "ticket", "take", desk.ticket)
    desk.ssh("bob", "ticket", "resolve", desk.ticket, "printer", "back")
    status, out, err = sftp_batch(desk, "carol", ["ls /%s/tmp" % desk.ticket])
    check(status != 0 and "is resolved; reopen it first" in err and not desk.agent.pending(),
          "resolved: %r" % err)


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
