#!/usr/bin/env python3
"""A recording written by relay/sessions/recording.c plays with the stock asciinema
player (DESIGN.md §7: `asciinema play` must play them).

    recording_play.py RECORDING_TOOL

RECORDING_TOOL (tests/integ/recording_tool.c) writes a short scripted
session. The stock player reads plain asciicast, so the recording is
gunzipped into its stdin (`zcat FILE | asciinema cat -`, as an auditor would
run it); asciinema wants a terminal of its own, which it gets on a
pseudo-terminal. Every wait is bounded.
"""
import fcntl
import gzip
import hashlib
import os
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import time

from tlcase import Failure, check

EXPECTED = ("Tierline recording\r\n"
            "caf\u00e9 \u20ac\r\n"
            "bad \ufffd byte\r\n"
            "\x1b[1mbold\x1b[0m \"quoted\" back\\slash\ttab\r\n")


def run_player(args, stream, timeout=60.0):
    """Runs asciinema ARGS with stream on stdin and a pseudo-terminal as its terminal."""
    master, slave = os.openpty()

    def take_terminal():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(["asciinema", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=take_terminal, pass_fds=(slave,),
                            env=dict(os.environ, TERM="xterm-256color"))
    os.close(slave)
    try:
        out, err = proc.communicate(stream, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise Failure("asciinema %s did not finish within %.0f s" % (" ".join(args), timeout))
    finally:
        # Whatever it said to the terminal itself, drained so it never blocks.
        while select.select([master], [], [], 0)[0]:
            try:
                if not os.read(master, 65536):
                    break
            except OSError:
                break
        os.close(master)
    return proc.returncode, out, err


def main():
    if len(sys.argv) != 2:
        print("usage: recording_play.py RECORDING_TOOL")
        return 2
    tool = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="tl-recording-play-")
    try:
        path = os.path.join(work, "T-1.cast.gz")
        proc = subprocess.run([tool, path], capture_output=True, text=True, timeout=60)
        check(proc.returncode == 0, "recording_tool exited %d: %s" % (proc.returncode, proc.stderr))
        reported = dict(field.split("=", 1) for field in proc.stdout.split())
        with open(path, "rb") as f:
            data = f.read()
        check(reported["sha256"] == hashlib.sha256(data).hexdigest() and
              int(reported["size"]) == len(data), "finish reported %r for a file of %d bytes"
              % (reported, len(data)))
        check(not os.path.exists(path + ".part"), "the .part file is still there")
        plain = gzip.decompress(data)

        status, out, err = run_player(["cat", "-"], plain)
        check(status == 0, "asciinema cat exited %d: %s" % (status, err.decode(errors="replace")))
        text = out.decode("utf-8")
        check(text == EXPECTED, "asciinema cat printed %r, expected %r" % (text, EXPECTED))

        # play: the same text, at the recording's pace (all of it within a second here).
        started = time.monotonic()
        status, out, err = run_player(["play", "-"], plain)
        check(status == 0, "asciinema play exited %d: %s" % (status, err.decode(errors="replace")))
        check(EXPECTED in out.decode("utf-8"), "asciinema play printed %r" % out)
        print("asciinema cat and play: %d bytes of recording played in %.1f s"
              % (len(data), time.monotonic() - started))
        print("PASS recording_play")
        return 0
    except (Failure, subprocess.TimeoutExpired, KeyError, ValueError) as failure:
        print("FAIL recording_play: %s" % failure)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
