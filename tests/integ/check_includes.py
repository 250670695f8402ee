#!/usr/bin/env python3
"""scripts/check-includes.py on small trees made for each rule, and on this
checkout. Each case runs in its own process:

    check_includes.py SOURCE_DIR CASE

A tree made here has the four parts (proto, relay, agent, console) with a few
files; each bad case adds the one include its rule forbids and checks that
the script fails, names the file and line, and says which rule; the good case
checks the same tree passes. The last case runs the script on the real tree.
"""
import os
import subprocess
import sys

import tlcase
from tlcase import case, check

SOURCE = None
WORK = None


def setup_globals(arg, work):
    global SOURCE, WORK
    SOURCE, WORK = arg, work


def script():
    return os.path.join(SOURCE, "scripts", "check-includes.py")


def write(root, path, includes):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        for header in includes:
            f.write('#include "%s"\n' % header)
        f.write("#include <stdio.h>\n")


def clean_tree(name):
    """A tree that follows every rule: returns its root."""
    root = os.path.join(WORK, name)
    write(root, "proto/buf.h", [])
    write(root, "proto/buf.c", ["proto/buf.h"])
    write(root, "proto/log.h", ["proto/buf.h"])
    write(root, "relay/store/store.h", ["proto/buf.h"])
    write(root, "relay/store/store.c", ["relay/store/store.h", "proto/log.h"])
    write(root, "relay/desk/tickets.h", ["relay/store/store.h"])
    write(root, "relay/net/server.h", ["relay/desk/tickets.h"])
    write(root, "relay/sessions/sessions.h", ["relay/net/server.h"])
    write(root, "relay/cmd/commands.h", ["relay/sessions/sessions.h"])
    write(root, "relay/main.c", ["relay/cmd/commands.h", "tl_version.h"])
    write(root, "agent/tunnel.h", ["proto/buf.h"])
    write(root, "agent/tunnel.c", ["agent/tunnel.h"])
    write(root, "console/client.c", ["proto/log.h"])
    return root


def run_check(root, expect):
    proc = subprocess.run([sys.executable, script(), "--root", root], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    check(proc.returncode == expect, "check-includes exited %d, expected %d\nstdout: %s\n"
          "stderr: %s" % (proc.returncode, expect, proc.stdout, proc.stderr))
    return proc.stdout, proc.stderr


def refused(path, includes, *words):
    """The clean tree plus path's includes fails, naming path and every word."""
    refused.trees += 1
    root = clean_tree("tree%d" % refused.trees)
    write(root, path, includes)
    _out, err = run_check(root, 1)
    for word in (path,) + words:
        check(word in err, "the complaint does not say %r:\n%s" % (word, err))


refused.trees = 0


@case
def case_a_clean_tree_passes():
    out, err = run_check(clean_tree("tree"), 0)
    check("no cycle" in out and err == "", "unexpected output: %r %r" % (out, err))


@case
def case_list_prints_every_include():
    root = clean_tree("tree")
    proc = subprocess.run([sys.executable, script(), "--root", root, "--list"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    check(proc.returncode == 0, proc.stderr)
    check("relay/main.c:1 -> relay/cmd/commands.h" in proc.stdout, proc.stdout)
    check("agent/tunnel.c:1 -> agent/tunnel.h" in proc.stdout, proc.stdout)


@case
def case_proto_including_a_program_is_refused():
    refused("proto/buf.c", ["proto/buf.h", "relay/store/store.h"], "proto is shared")


@case
def case_programs_including_each_other_are_refused():
    refused("agent/tunnel.c", ["agent/tunnel.h", "relay/net/server.h"],
            "agent may include only its own headers and proto's")
    refused("console/client.c", ["agent/tunnel.h"],
            "console may include only its own headers and proto's")


@case
def case_a_lower_layer_including_a_higher_one_is_refused():
    refused("relay/net/server.c", ["relay/net/server.h", "relay/cmd/commands.h"],
            "relay/net is below relay/cmd")
    refused("relay/store/store.c", ["relay/desk/tickets.h"], "relay/store is below relay/desk")


@case
def case_a_cycle_between_modules_is_refused():
    # No header includes itself, but the two modules need each other.
    root = clean_tree("tree")
    write(root, "agent/outbox.h", [])
    write(root, "agent/outbox.c", ["agent/outbox.h", "agent/tunnel.h"])
    write(root, "agent/tunnel.c", ["agent/tunnel.h", "agent/outbox.h"])
    _out, err = run_check(root, 1)
    check("cycle between modules: agent/outbox -> agent/tunnel -> agent/outbox" in err, err)


@case
def case_a_module_split_around_an_internal_header_is_one_module():
    # sessions.c and bridge.c share sessions_int.h, which includes sessions.h: one module, no
    # cycle. A module of its own beside it that needs it and is needed by it is still a cycle.
    root = clean_tree("split")
    write(root, "relay/sessions/sessions_int.h", ["relay/sessions/sessions.h"])
    write(root, "relay/sessions/sessions.c", ["relay/sessions/sessions_int.h"])
    write(root, "relay/sessions/bridge.c", ["relay/sessions/sessions_int.h"])
    run_check(root, 0)
    write(root, "relay/sessions/catalogue.h", [])
    write(root, "relay/sessions/catalogue.c", ["relay/sessions/catalogue.h",
                                               "relay/sessions/sessions.h"])
    write(root, "relay/sessions/sessions.h", ["relay/net/server.h", "relay/sessions/catalogue.h"])
    _out, err = run_check(root, 1)
    check("cycle between modules: relay/sessions/catalogue -> relay/sessions/sessions -> "
          "relay/sessions/catalogue" in err, err)


@case
def case_a_missing_header_is_refused():
    refused("relay/main.c", ["relay/commands.h"], "does not exist")


@case
def case_not_a_tree_is_a_usage_error():
    os.makedirs(os.path.join(WORK, "empty"))
    _out, err = run_check(os.path.join(WORK, "empty"), 2)
    check("not a Tierline tree" in err, err)


@case
def case_this_checkout_passes():
    out, _err = run_check(SOURCE, 0)
    check("every layer points down" in out, out)


if __name__ == "__main__":
    sys.exit(tlcase.main("check_includes.py SOURCE_DIR", "tl-includes-", setup_globals))
