#!/usr/bin/env python3
"""Files with the stock OpenSSH clients (docs/protocol.md §7.16): sftp and scp against a real
relay over real SSH. Usage: files.py BIN_DIR CASE."""
import hashlib
import os
import re
import select
import struct
import time
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


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def scp(desk, user, *words):
    proc = subprocess.run(["scp"] + client_options(desk, user) + list(words),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120, cwd=WORK)
    return proc.returncode, proc.stderr.decode(errors="replace")


def scp_started(desk, user, remote_path, target, stderr):
    """A stock scp pulling remote_path (under the relay's tree, without the leading /) to
    target, left running; its Popen."""
    return subprocess.Popen(["scp"] + client_options(desk, user) +
                            ["%s@127.0.0.1:%s" % (user, remote_path), target],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                            cwd=WORK)


def stopped_clean(desk):
    """Stops the agent and the relay as their services would; under the sanitizers their exit
    reports what they leaked or misused, which fails the case."""
    desk.agent.stop()
    desk.relay.proc.send_signal(15)
    desk.relay.proc.wait(timeout=60)
    for name, text in (("relay", desk.relay.log_text()), ("agent", desk.agent.log_text())):
        check("Sanitizer" not in text and "runtime error" not in text,
              "the %s reported at its exit:\n%s" % (name, text[-4000:]))


def machine_tree(desk):
    """A directory on the machine (the agent runs here) with a 5 MiB random file and an empty
    one; (local path, its path under the relay's tree without the leading /)."""
    tree = os.path.join(WORK, "machine")
    os.makedirs(tree, exist_ok=True)
    with open(os.path.join(tree, "big.bin"), "wb") as f:
        f.write(os.urandom(5 * 1024 * 1024 + 123))
    open(os.path.join(tree, "empty"), "wb").close()
    return tree, "%s%s" % (desk.ticket, tree)


def local_upload(size):
    """A folder on the technician's side holding fix.conf, size random bytes; both paths."""
    local = os.path.join(WORK, "local")
    os.makedirs(local)
    upload = os.path.join(local, "fix.conf")
    with open(upload, "wb") as f:
        f.write(os.urandom(size))
    return local, upload


@case
def case_files_pulled_and_pushed_byte_exact_with_scp_and_sftp():
    desk = Desk()
    tree, remote = machine_tree(desk)
    local, upload = local_upload(3 * 1024 * 1024 + 7)
    # sftp get and put under carol's grant (pull and push), the user answering yes.
    status, out, err = granted_session(desk, "carol", [
        "get /%s/big.bin %s/big-sftp" % (remote, local),
        "get /%s/empty %s/empty-sftp" % (remote, local),
        "put %s /%s/pushed-sftp.conf" % (upload, remote),
    ])
    check(status == 0, "carol's sftp: %d %r %r" % (status, out, err))
    check(sha256_of(local + "/big-sftp") == sha256_of(tree + "/big.bin") and
          os.path.getsize(local + "/empty-sftp") == 0 and
          sha256_of(tree + "/pushed-sftp.conf") == sha256_of(upload),
          "sftp copies differ from the originals")
    # scp (OpenSSH 9 speaks SFTP) both ways under the live grant.
    status, err = scp(desk, "carol", "carol@127.0.0.1:%s/big.bin" % remote, local + "/big-scp")
    check(status == 0 and sha256_of(local + "/big-scp") == sha256_of(tree + "/big.bin"),
          "scp pull: %d %r" % (status, err))
    status, err = scp(desk, "carol", "carol@127.0.0.1:%s/empty" % remote, local + "/empty-scp")
    check(status == 0 and os.path.getsize(local + "/empty-scp") == 0,
          "scp pull empty: %d %r" % (status, err))
    status, err = scp(desk, "carol", upload, "carol@127.0.0.1:%s/" % remote)
    check(status == 0 and sha256_of(tree + "/fix.conf") == sha256_of(upload),
          "scp push: %d %r" % (status, err))
    check(not [n for n in os.listdir(tree) if n.startswith(".tierline-push")],
          "temporary files left: %r" % os.listdir(tree))
    # Each file moved is audited with its path, size and hash, and kept as evidence.
    pulls = audit_of(desk, "files.pull", "carol")
    pushes = audit_of(desk, "files.push", "carol")
    big = sha256_of(tree + "/big.bin")
    check(len(pulls) == 4 and len(pushes) == 2, "audit: %r %r" % (pulls, pushes))
    check([e["details"]["sha256"] for e in pulls].count(big) == 2 and
          all(e["details"]["path"] in (tree + "/big.bin", tree + "/empty") for e in pulls) and
          all(e["subject"] == desk.ticket for e in pulls + pushes),
          "pull entries: %r" % pulls)
    check({e["details"]["sha256"] for e in pushes} == {sha256_of(upload)} and
          {e["details"]["size"] for e in pushes} == {os.path.getsize(upload)},
          "push entries: %r" % pushes)
    kept = {e["hash"] for e in desk.evidence_of_kind("file")}
    check({big, sha256_of(upload), hashlib.sha256(b"").hexdigest()} <= kept,
          "evidence of kind file: %r" % desk.evidence_of_kind("file"))
    status, blob, err = desk.ssh("carol", "evidence", "get", desk.ticket, big, text=False)
    check(status == 0 and hashlib.sha256(blob).hexdigest() == big, "evidence get: %r" % err)
    # The auditor's check reads each file the entries name back from the evidence store.
    proc = subprocess.run([BIN + "/tierline-relay", "audit-verify", "--data", desk.relay.dir],
                          capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0 and "audit log OK" in proc.stdout and
          re.search(r"payloads OK: (\d+) checked", proc.stdout) and
          int(re.search(r"payloads OK: (\d+) checked", proc.stdout).group(1)) >= 4,
          "audit-verify: %r %r" % (proc.stdout, proc.stderr))
    stopped_clean(desk)


def nothing_pushed(tree):
    return not [n for n in os.listdir(tree) if n.startswith(".tierline-push")]


@case
def case_files_bad_input_clear_errors_nothing_written():
    desk = Desk(relay_options=["--files-max-bytes", "100000"])
    tree = os.path.join(WORK, "machine")
    os.makedirs(os.path.join(tree, "inside"))
    with open(os.path.join(tree, "inside", "notes.txt"), "w") as f:
        f.write("kept as it is")
    with open(os.path.join(tree, "large.bin"), "wb") as f:
        f.write(os.urandom(300000))
    os.symlink(os.path.join(tree, "inside"), os.path.join(tree, "link"))
    os.symlink(os.path.join(tree, "inside", "notes.txt"), os.path.join(tree, "notes-link"))
    os.mkfifo(os.path.join(tree, "fifo"))
    remote = "/%s%s" % (desk.ticket, tree)
    local = os.path.join(WORK, "local")
    os.makedirs(local)
    small = os.path.join(local, "small.conf")
    with open(small, "wb") as f:
        f.write(b"a small file\n")
    over = os.path.join(local, "over.bin")
    with open(over, "wb") as f:
        f.write(os.urandom(200000))
    before = sorted(os.listdir(tree)), sorted(os.listdir(os.path.join(tree, "inside")))

    def tree_unchanged():
        now = sorted(os.listdir(tree)), sorted(os.listdir(os.path.join(tree, "inside")))
        with open(os.path.join(tree, "inside", "notes.txt")) as f:
            return now == before and f.read() == "kept as it is"

    # Carol's grant allows pushing; everything below is refused all the same.
    status, out, err = granted_session(desk, "carol", ["ls %s" % remote])
    check(status == 0, "carol's grant: %d %r %r" % (status, out, err))
    # A link on the path, or as the file: refused on the machine, both ways.
    status, err = scp(desk, "carol", "carol@127.0.0.1:%s/link/notes.txt" % remote[1:],
                      local + "/through-link")
    check(status != 0 and "symbolic link" in err and not os.path.exists(local + "/through-link"),
          "pull through a link: %d %r" % (status, err))
    status, err = scp(desk, "carol", small, "carol@127.0.0.1:%s/link/" % remote[1:])
    check(status != 0 and tree_unchanged(), "push through a link: %d %r" % (status, err))
    status, err = scp(desk, "carol", small, "carol@127.0.0.1:%s/notes-link" % remote[1:])
    check(status != 0 and "symbolic link" in err and tree_unchanged() and
          os.path.islink(os.path.join(tree, "notes-link")),
          "push onto a link: %d %r" % (status, err))
    # A FIFO is refused without waiting for a writer.
    status, err = scp(desk, "carol", "carol@127.0.0.1:%s/fifo" % remote[1:], local + "/fifo")
    check(status != 0 and "not a regular file" in err, "pull a FIFO: %d %r" % (status, err))
    # Over the byte limit: fails, nothing past it comes, nothing is written on the machine.
    status, err = scp(desk, "carol", "carol@127.0.0.1:%s/large.bin" % remote[1:],
                      local + "/large.bin")
    check(status != 0 and "larger than the limit of 100000 bytes" in err,
          "pull over the limit: %d %r" % (status, err))
    check(not os.path.exists(local + "/large.bin") or
          os.path.getsize(local + "/large.bin") <= 100000, "bytes past the limit came")
    status, out, err = sftp_batch(desk, "carol", ["put %s %s/over.bin" % (over, remote)])
    check(status != 0 and "larger than the limit of 100000 bytes" in out + err and
          tree_unchanged(), "push over the limit: %d %r %r" % (status, out, err))
    # A name with a control character: refused on the relay, nothing reaches the machine.
    status, out, err = sftp_batch(desk, "carol", ["put %s \"%s/bad\x01name\"" % (small, remote)])
    check(status != 0 and "control character" in err and tree_unchanged(),
          "push a control character: %d %r %r" % (status, out, err))
    wait_for("no temporary file left on the machine", lambda: nothing_pushed(tree) and
             nothing_pushed(os.path.join(tree, "inside")))
    check(not audit_of(desk, "files.push", "carol"), "a refused push was audited")
    # Bob's role has files.pull alone: his grant is pull only, and a push is refused.
    status, out, err = granted_session(desk, "bob", ["put %s %s/small.conf" % (small, remote)])
    check(status != 0 and "allows copying from the machine only" in err and tree_unchanged(),
          "push under a pull-only grant: %d %r %r" % (status, out, err))
    status, err = scp(desk, "bob", small, "bob@127.0.0.1:%s/" % remote[1:])
    check(status != 0 and "allows copying from the machine only" in err and tree_unchanged(),
          "scp push under a pull-only grant: %d %r" % (status, err))
    # What was refused moved nothing, and nothing of it is on the record. Of large.bin, the
    # client may have been given bytes below the limit before the relay saw the rest (that
    # depends on how the agent's chunks arrive): if so, they are on the record as a pull that
    # is not complete, and never more than the limit.
    pulls = audit_of(desk, "files.pull", "carol")
    check(not pulls or (len(pulls) == 1 and pulls[0]["details"]["path"] == tree + "/large.bin"
                        and pulls[0]["details"].get("complete") is False and
                        0 < pulls[0]["details"]["given"] <= 100000), "carol's pulls: %r" % pulls)
    check(not audit_of(desk, "files.push", "carol") and not audit_of(desk, "files.push", "bob"),
          "refused transfers were audited")
    stopped_clean(desk)


@case
def case_files_fail_closed_when_the_audit_log_cannot_be_written():
    desk = Desk()
    tree, remote = machine_tree(desk)
    local, upload = local_upload(100000)
    status, out, err = granted_session(desk, "carol", ["ls /%s" % remote])
    check(status == 0, "carol's grant: %d %r %r" % (status, out, err))
    # The session is open (its login is on the record) when the log goes away.
    proc = subprocess.Popen(["sftp", "-b", "-"] + client_options(desk, "carol") +
                            ["carol@127.0.0.1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=WORK)
    proc.stdin.write(("ls -1 /%s\n" % remote).encode())
    proc.stdin.flush()
    listed = b""
    for _ in range(100):
        line = proc.stdout.readline()
        listed += line
        if not line or b"empty" in line:
            break
    check(b"big.bin" in listed, "the listing: %r" % listed)
    log = os.path.join(desk.relay.dir, "audit.log")
    os.rename(log, log + ".away")
    try:
        # A pull whose entry cannot be written is not finished; a push whose entry cannot be
        # written is not committed on the machine.
        out, err = proc.communicate(("-get /%s/big.bin %s/big\n-put %s /%s/fix.conf\nbye\n" %
                                     (remote, local, upload, remote)).encode(), timeout=120)
        err = err.decode(errors="replace")
    finally:
        os.rename(log + ".away", log)
    # Either the record of the whole file or the evidence of its first bytes fails first.
    check("close remote: Failure" in err, "the pull and the push: %r" % err)
    pulled, pushed = err.split("close remote: Failure", 1)
    check("audit log" in pulled and 'read remote "/%s/big.bin"' % remote in pulled,
          "pull: %r" % err)
    check("audit log" in pushed and "fix.conf" in pushed, "push: %r" % err)
    wait_for("the machine to drop what it was sent", lambda: nothing_pushed(tree))
    check(not os.path.exists(os.path.join(tree, "fix.conf")),
          "written without its audit entry: %r" % os.listdir(tree))
    status, err = scp(desk, "carol", upload, "carol@127.0.0.1:%s/" % remote)
    check(status == 0 and sha256_of(os.path.join(tree, "fix.conf")) == sha256_of(upload),
          "push once the log is back: %d %r" % (status, err))
    # (An entry whose batch reached the database may still reach the log once it is back: the
    # action it names was refused all the same, as for every audited action.)
    check(sha256_of(upload) in [e["details"]["sha256"] for e in audit_of(desk, "files.push",
                                                                          "carol")],
          "entries: %r" % [e["action"] for e in desk.audit()])
    stopped_clean(desk)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


@case
def case_files_client_that_stops_reading_holds_back_its_transfer_only():
    desk = Desk()
    tree = os.path.join(WORK, "machine")
    os.makedirs(tree)
    size = 60 * 1024 * 1024
    with open(os.path.join(tree, "large.bin"), "wb") as f:
        for _ in range(size // (1024 * 1024)):
            f.write(os.urandom(4096) * 256)
    remote = "%s%s" % (desk.ticket, tree)
    status, out, err = granted_session(desk, "carol", ["ls /%s" % remote])
    check(status == 0, "carol's grant: %d %r %r" % (status, out, err))
    baseline = rss_kib(desk.relay.proc.pid)
    target = os.path.join(WORK, "large.bin")
    proc = scp_started(desk, "carol", "%s/large.bin" % remote, target, subprocess.PIPE)
    wait_for("the copy under way", lambda: os.path.exists(target) and
             os.path.getsize(target) > 1024 * 1024)
    os.kill(proc.pid, 19)  # SIGSTOP: the client reads nothing more
    try:
        samples = []
        for _ in range(8):
            time.sleep(0.5)
            samples.append(os.path.getsize(target))
        check(samples[-1] < size, "the copy finished while its client was stopped")
        grown = rss_kib(desk.relay.proc.pid) - baseline
        check(grown < 24 * 1024, "the relay grew %d KiB holding a stopped client's file" % grown)
        # The machine holds back too: another session is served meanwhile.
        status, out, err = sftp_batch(desk, "carol", ["ls /%s" % remote])
        check(status == 0 and "large.bin" in out, "another session: %d %r %r" % (status, out, err))
    finally:
        os.kill(proc.pid, 18)  # SIGCONT
    _, err = proc.communicate(timeout=120)
    check(proc.returncode == 0 and os.path.getsize(target) == size and
          sha256_of(target) == sha256_of(os.path.join(tree, "large.bin")),
          "the copy after the client went on: %d %r" % (proc.returncode, err))


class SftpPipe:
    """A few SFTP v3 requests, by hand, over the stock ssh's sftp subsystem (ssh -s): what a
    client may do that scp and sftp never do, such as closing a file before its end."""

    def __init__(self, desk, user):
        argv = ["ssh", "-s"] + [("-p" if w == "-P" else w) for w in client_options(desk, user)]
        self.proc = subprocess.Popen(argv + [user + "@127.0.0.1", "sftp"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.next_id = 1
        self.desk = desk
        self.send(1, struct.pack(">I", 3))  # INIT, version 3
        kind, _ = self.receive()
        check(kind == 2, "no VERSION: %d" % kind)

    def send(self, kind, body):
        self.proc.stdin.write(struct.pack(">IB", len(body) + 1, kind) + body)
        self.proc.stdin.flush()

    def receive(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            self.proc.kill()
            check(False, "no SFTP reply in 60 s; ssh: %r %r" % (self.proc.wait(),
                                                               self.proc.stderr.read()))
        head = self.proc.stdout.read(5)
        if len(head) != 5:
            self.proc.kill()
            check(False, "the SFTP stream ended: ssh %r %r; relay: %s" % (
                self.proc.wait(), self.proc.stderr.read(), self.desk.relay.log_text()[-3000:]))
        length, kind = struct.unpack(">IB", head)
        return kind, self.proc.stdout.read(length - 1)

    def request(self, kind, body):
        """Sends a request with the next id; (reply type, reply body after the id)."""
        rid = self.next_id
        self.next_id += 1
        self.send(kind, struct.pack(">I", rid) + body)
        reply, data = self.receive()
        check(struct.unpack(">I", data[:4])[0] == rid, "a reply to another request")
        return reply, data[4:]

    @staticmethod
    def string(value):
        return struct.pack(">I", len(value)) + value

    def open_read(self, path):
        reply, data = self.request(3, self.string(path.encode()) + struct.pack(">II", 1, 0))
        check(reply == 102, "OPEN answered %d %r" % (reply, data))  # HANDLE
        return data[4:4 + struct.unpack(">I", data[:4])[0]]

    def read(self, handle, offset, length):
        reply, data = self.request(5, self.string(handle) + struct.pack(">QI", offset, length))
        check(reply == 103, "READ answered %d %r" % (reply, data))  # DATA
        return data[4:]

    def close(self, handle):
        """CLOSE's status code."""
        reply, data = self.request(4, self.string(handle))
        check(reply == 101, "CLOSE answered %d" % reply)  # STATUS
        return struct.unpack(">I", data[:4])[0]

    def end(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@case
def case_files_a_pull_ended_early_is_recorded_with_what_was_given():
    desk = Desk()
    tree, remote = machine_tree(desk)
    big = os.path.join(tree, "big.bin")
    status, out, err = granted_session(desk, "carol", ["ls /%s" % remote])
    check(status == 0, "carol's grant: %d %r %r" % (status, out, err))
    # A client that takes the first 32 KiB and closes the file: the CLOSE is answered once a
    # files.pull entry says what was given, and the bytes that reached the relay are evidence.
    client = SftpPipe(desk, "carol")
    handle = client.open_read("/%s/big.bin" % remote)
    with open(big, "rb") as f:
        head = f.read(32768)
    check(client.read(handle, 0, 32768) == head, "the first bytes differ")
    check(client.close(handle) == 0, "CLOSE failed")
    pulls = audit_of(desk, "files.pull", "carol")
    check(len(pulls) == 1 and pulls[0]["details"].get("complete") is False and
          pulls[0]["details"]["given"] == 32768 and pulls[0]["details"]["path"] == big and
          pulls[0]["details"]["size"] >= 32768, "the entry of a pull closed early: %r" % pulls)
    kept = {e["hash"]: e for e in desk.evidence_of_kind("file")}
    check(pulls[0]["details"]["sha256"] in kept, "its bytes are not evidence: %r" % kept)
    # A file closed before any byte was given moved nothing: no entry.
    handle = client.open_read("/%s/big.bin" % remote)
    check(client.close(handle) == 0, "CLOSE of an unread file failed")
    client.end()
    check(len(audit_of(desk, "files.pull", "carol")) == 1, "an unread file was recorded")
    # scp killed inside a copy: the client is gone, what it had is on the record all the same.
    target = os.path.join(WORK, "big-killed")
    proc = scp_started(desk, "carol", "%s/big.bin" % remote, target, subprocess.DEVNULL)
    wait_for("the copy under way", lambda: os.path.exists(target) and
             os.path.getsize(target) > 0, interval=0.01)
    proc.kill()
    proc.wait(timeout=60)
    wait_for("the killed copy's entry", lambda: len(audit_of(desk, "files.pull", "carol")) == 2)
    entry = audit_of(desk, "files.pull", "carol")[-1]["details"]
    check(entry.get("complete") in (False, None) and entry["size"] > 0,
          "the killed copy's entry: %r" % entry)
    stopped_clean(desk)


@case
def case_files_count_and_size_limits_of_relay_and_agent():
    # The relay allows 2 files a session; the agent 3 files a grant and 1000 bytes a file.
    desk = Desk(relay_options=["--files-max-count", "2"],
                agent_options=["--files-max-count", "3", "--files-max-bytes", "1000"])
    tree = os.path.join(WORK, "machine")
    os.makedirs(tree)
    for n in range(1, 6):
        with open(os.path.join(tree, "f%d.txt" % n), "wb") as f:
            f.write(b"file %d\n" % n)
    with open(os.path.join(tree, "over.bin"), "wb") as f:
        f.write(os.urandom(2000))
    remote = "/%s%s" % (desk.ticket, tree)
    local = os.path.join(WORK, "local")
    os.makedirs(local)

    def got(n):
        path = os.path.join(local, "f%d.txt" % n)
        return os.path.exists(path) and open(path, "rb").read() == b"file %d\n" % n

    # One session: the third file is past the relay's count and is refused, the two before it
    # are whole; the error names the limit.
    status, out, err = granted_session(desk, "carol", ["get %s/f%d.txt %s/" % (remote, n, local)
                                                       for n in (1, 2, 3)])
    check(status != 0 and "the limit of 2 files in one session is reached" in err,
          "the relay's count: %d %r %r" % (status, out, err))
    check(got(1) and got(2) and not os.path.exists(os.path.join(local, "f3.txt")),
          "what came: %r" % sorted(os.listdir(local)))
    # A new session starts the relay's count again, but the grant has had 2 of its 3 files on
    # the machine: the fourth of the grant is refused by the agent.
    status, out, err = sftp_batch(desk, "carol", ["get %s/f%d.txt %s/" % (remote, n, local)
                                                  for n in (3, 4)])
    check(status != 0 and re.search(r"the limit of 3 files under grant G-\d+ is reached", err),
          "the agent's count: %d %r %r" % (status, out, err))
    check(got(3) and not os.path.exists(os.path.join(local, "f4.txt")),
          "what came: %r" % sorted(os.listdir(local)))
    pulls = audit_of(desk, "files.pull", "carol")
    check(sorted(e["details"]["path"] for e in pulls) ==
          ["%s/f%d.txt" % (tree, n) for n in (1, 2, 3)], "files.pull: %r" % pulls)
    check(re.search(r"the limit of 3 files under grant G-\d+ is reached", desk.agent.log_text()),
          "the agent's log says why")
    stopped_clean(desk)


@case
def case_files_agent_byte_limit_holds_whatever_the_relay_allows():
    desk = Desk(agent_options=["--files-max-bytes", "1000"])
    tree = os.path.join(WORK, "machine")
    os.makedirs(tree)
    with open(os.path.join(tree, "over.bin"), "wb") as f:
        f.write(os.urandom(2000))
    with open(os.path.join(tree, "small.txt"), "wb") as f:
        f.write(b"kept as it is\n")
    remote = "/%s%s" % (desk.ticket, tree)
    local, upload = local_upload(1500)
    status, out, err = granted_session(desk, "carol", ["get %s/over.bin %s/" % (remote, local)])
    check(status != 0 and "over.bin: larger than the limit of 1000 bytes" in err,
          "a pull over the agent's limit: %d %r %r" % (status, out, err))
    check(not os.path.exists(os.path.join(local, "over.bin")) or
          os.path.getsize(os.path.join(local, "over.bin")) == 0, "bytes of over.bin came")
    status, out, err = sftp_batch(desk, "carol", ["put %s %s/small.txt" % (upload, remote)])
    check(status != 0 and "over the limits of the grant on the machine" in out + err,
          "a push over the agent's limit: %d %r %r" % (status, out, err))
    wait_for("no temporary file left on the machine", lambda: nothing_pushed(tree))
    with open(os.path.join(tree, "small.txt"), "rb") as f:
        check(f.read() == b"kept as it is\n", "the file on the machine changed")
    check(not audit_of(desk, "files.pull", "carol"), "a refused pull was audited")
    # A push is recorded before the machine puts it in place (docs/protocol.md §7.16): when the
    # client's CLOSE reaches the relay before the machine's refusal, the entry is there already
    # and stays, naming the bytes that were handed over; never one for other bytes.
    pushes = audit_of(desk, "files.push", "carol")
    check(not pushes or (len(pushes) == 1 and pushes[0]["details"]["size"] == 1500 and
                         pushes[0]["details"]["path"] == tree + "/small.txt"),
          "the refused push's entries: %r" % pushes)
    # Within the limit, a push goes through.
    with open(upload, "wb") as f:
        f.write(b"x" * 1000)
    status, out, err = sftp_batch(desk, "carol", ["put %s %s/small.txt" % (upload, remote)])
    check(status == 0, "a push at the limit: %d %r %r" % (status, out, err))
    with open(os.path.join(tree, "small.txt"), "rb") as f:
        check(f.read() == b"x" * 1000, "the push at the limit is not on the machine")
    check([e for e in audit_of(desk, "files.push", "carol") if e["details"]["size"] == 1000 and
           e["details"]["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()],
          "the push at the limit has no entry")
    stopped_clean(desk)


@case
def case_files_no_ticket_nothing_read():
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
