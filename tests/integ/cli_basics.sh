#!/usr/bin/env bash
# Each executable answers --help and --version on stdout with exit 0, and
# rejects an unknown command on stderr with exit status 2.
set -u
bin_dir=$1
version=$2
fail=0

check() { # program
    local prog=$1 out err status
    out=$("$bin_dir/$prog" --version 2>/dev/null); status=$?
    if [ "$status" -ne 0 ] || [ "$out" != "$prog $version" ]; then
        echo "FAIL $prog --version: status $status, output '$out', expected '$prog $version'"; fail=1
    fi
    out=$("$bin_dir/$prog" --help 2>/dev/null); status=$?
    if [ "$status" -ne 0 ] || ! grep -q "^usage: $prog" <<<"$out"; then
        echo "FAIL $prog --help: status $status, output '$out'"; fail=1
    fi
    err=$("$bin_dir/$prog" no-such-command 2>&1 >/dev/null); status=$?
    if [ "$status" -ne 2 ] || ! grep -q "unknown command 'no-such-command'" <<<"$err"; then
        echo "FAIL $prog no-such-command: status $status, stderr '$err', expected status 2"; fail=1
    fi
    "$bin_dir/$prog" </dev/null >/dev/null 2>&1; status=$?
    if [ "$status" -ne 2 ]; then
        echo "FAIL $prog with no arguments: status $status, expected 2"; fail=1
    fi
}

for prog in tierline-relay tierline-agent tierline; do check "$prog"; done
[ "$fail" -eq 0 ] && echo "cli basics: all checks passed"
exit "$fail"
