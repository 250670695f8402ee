#!/usr/bin/env python3
"""Independent verifier for the Tierline audit log, written from docs/audit-format.md.

It shares no code with the relay: the standard library (json, hashlib, base64) and, for
Ed25519 signatures, the `openssl` command line. It hashes the bytes of each line as they are,
never re-serialised JSON.

    audit_verify.py AUDIT_LOG [--checkpoints FILE]... [--key VKEY]
                                         verify a log's hash chain and, against the key VKEY
                                         (`tierline-relay audit pubkey`), its signed checkpoints
                                         (DATA/audit.checkpoints, `audit checkpoint` output);
                                         exit 0 ok, 1 broken, 2 unreadable
    audit_verify.py --cross-check TOOL   test: the C verifier (TOOL, tests/integ/audit_tool.c)
                                         and this one must agree on good and tampered logs
"""
import base64
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

LINE_MAX = 1048576  # bytes, newline included (format §4)
SUFFIX_LEN = 75  # ,"hash":"<64 hex>"}
GENESIS = "0" * 64
MEMBERS = ["seq", "time", "actor", "action", "subject", "details", "prev", "hash"]
DETAILS_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
HEX64 = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
SEQ_PREFIX = re.compile(rb'\{"seq":([0-9]{1,19}),')


class Broken(Exception):
    def __init__(self, category, text):
        super().__init__(f"{category}: {text}")
        self.category = category


def reported_seq(line):
    """The seq a failure names, read from the line's first bytes (format §6); 0 if unreadable."""
    m = SEQ_PREFIX.match(line)
    if not m or int(m.group(1)) > INT_MAX:
        return 0
    return int(m.group(1))


def _pairs(items):
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise Broken("bad-json", "duplicate member name")
    return dict(items)


def _int(text):
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise Broken("bad-json", "integer outside the signed 64-bit range")
    return value


def _float(text):
    value = float(text)
    if not math.isfinite(value):
        raise Broken("bad-json", "number too large for a double")
    return value


def _constant(text):
    raise Broken("bad-json", f"{text} is not JSON")


def _check_strings(value):
    """JSON strings must be Unicode scalar values without U+0000 (format §3)."""
    pending = [value]  # a loop, not recursion: the parser allows deeper nesting than Python's stack
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\0" in item:
                raise Broken("bad-json", "string contains U+0000")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise Broken("bad-json", "string contains an unpaired surrogate")


def _depth_ok(value, depth):
    if not isinstance(value, (dict, list)):
        return True
    if depth > DETAILS_DEPTH:
        return False
    children = value.values() if isinstance(value, dict) else value
    return all(_depth_ok(child, depth + 1) for child in children)


def check_line(line):
    """Steps 2-5 of format §5 for one line without its newline; returns (seq, prev, hash)."""
    for column, byte in enumerate(line, 1):
        if byte < 0x20 or byte > 0x7E:
            raise Broken("not-ascii", f"byte 0x{byte:02x} at column {column}")
    suffix = line[-SUFFIX_LEN:]
    if (
        len(line) < 1 + SUFFIX_LEN
        or line[:1] != b"{"
        or suffix[:9] != b',"hash":"'
        or not HEX64.fullmatch(suffix[9:73].decode())
        or suffix[73:] != b'"}'
    ):
        raise Broken("no-hash-suffix", 'line does not end with ,"hash":"<64 lowercase hex>"}')
    try:
        entry = json.loads(
            line.decode("ascii"),
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except (ValueError, RecursionError) as e:
        raise Broken("bad-json", str(e))
    if not isinstance(entry, dict):
        raise Broken("bad-json", "not an object")
    _check_strings(entry)
    if list(entry.keys()) != MEMBERS:
        raise Broken("bad-members", f"members are {list(entry.keys())}, required {MEMBERS}")

    def is_str(name):
        return isinstance(entry[name], str)

    seq = entry["seq"]
    if type(seq) is not int or seq < 1:
        raise Broken("bad-type", "seq is not an integer from 1 to 2^63-1")
    if not is_str("time") or not TIME.fullmatch(entry["time"]):
        raise Broken("bad-type", "time is not YYYY-MM-DDTHH:MM:SS.mmmZ")
    if not (is_str("actor") and is_str("action") and is_str("subject")):
        raise Broken("bad-type", "actor, action and subject must be strings")
    if not isinstance(entry["details"], dict):
        raise Broken("bad-type", "details is not an object")
    if not _depth_ok(entry["details"], 1):
        raise Broken("bad-type", "details nests deeper than 32 levels")
    if not is_str("prev") or not HEX64.fullmatch(entry["prev"]):
        raise Broken("bad-type", "prev is not 64 lowercase hex digits")
    if entry["hash"] != suffix[9:73].decode():
        raise Broken("bad-type", "hash member differs from the line's last 64 hex digits")
    return seq, entry["prev"], entry["hash"]


def verify(path):
    """Returns a dict: status ok|bad, entries, last_hash, partial, and line/seq/reason when bad."""
    result = {"status": "ok", "entries": 0, "last_hash": GENESIS, "partial": 0}
    line_no = 0
    with open(path, "rb") as f:
        while True:
            raw = f.readline(LINE_MAX)
            if not raw:
                break
            if not raw.endswith(b"\n"):
                if len(raw) >= LINE_MAX:
                    return _bad(result, line_no + 1, raw, "too-long: line longer than 1048576 bytes")
                result["partial"] = len(raw)  # an interrupted write, not an entry (§7)
                break
            line_no += 1
            line = raw[:-1]
            try:
                seq, prev, stored = check_line(line)
                if seq != result["entries"] + 1:
                    raise Broken("bad-seq", f"seq {seq} where {result['entries'] + 1} was expected")
                if prev != result["last_hash"]:
                    raise Broken("bad-prev", "prev is not the previous entry's hash")
                computed = hashlib.sha256(line[:-SUFFIX_LEN]).hexdigest()
                if computed != stored:
                    raise Broken("bad-hash", f"stored {stored[:16]}..., computed {computed[:16]}...")
            except Broken as e:
                return _bad(result, line_no, line, str(e))
            result["entries"] += 1
            result["last_hash"] = stored
    return result


def _bad(result, line_no, line, reason):
    result.update(status="bad", line=line_no, seq=reported_seq(line), reason=reason)
    return result


def describe(result):
    if result["status"] == "ok":
        text = f"audit log OK: {result['entries']} entries, last hash {result['last_hash']}"
        if result["partial"]:
            text += f"\nnote: {result['partial']} bytes after the last newline are an interrupted write, not an entry"
        return text
    where = f"seq {result['seq']} (line {result['line']})" if result["seq"] else f"line {result['line']} (seq unreadable)"
    return (
        f"audit log BROKEN at {where}: {result['reason']}\n"
        f"{result['entries']} entries before it verified; the last of them has hash {result['last_hash']}"
    )


# ---------------------------------------------------------------------------
# The Merkle tree and signed checkpoints (format §12-§15).

EM_DASH = "\u2014".encode()
NOTE_MAX = 16 * 1024


def leaf_hash(line):
    return hashlib.sha256(b"\x00" + line).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_roots(path, sizes):
    """One pass over the log: (complete lines, {size: root of the first size lines})."""
    wanted, roots, stack, count = set(sizes), {}, [], 0  # stack: perfect subtrees, largest first

    def root():
        if not stack:
            return hashlib.sha256(b"").digest()
        value = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            value = node_hash(left, value)
        return value

    if 0 in wanted:
        roots[0] = root()
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a torn tail is no leaf
            stack.append((1, leaf_hash(raw[:-1])))
            count += 1
            while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
                size, right = stack.pop()
                _, left = stack.pop()
                stack.append((2 * size, node_hash(left, right)))
            if count in wanted:
                roots[count] = root()
    return count, roots


def parse_vkey(vkey):
    """NAME+KEYID+BASE64(0x01 || key) -> (name, key id, 32-byte public key); ValueError."""
    name, key_id, key = vkey.strip().split("+", 2)
    raw = base64.b64decode(key, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    computed = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if bytes.fromhex(key_id) != computed:
        raise ValueError("key id does not match the key")
    return name, computed, raw[1:]


def ed25519_verify(public_key, message, signature):
    """With the openssl command line: a PEM public key (RFC 8410 prefix + 32 bytes)."""
    der = bytes.fromhex("302a300506032b6570032100") + public_key
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"
    with tempfile.TemporaryDirectory() as work:
        paths = [os.path.join(work, n) for n in ("key.pem", "message", "signature")]
        for path, data in zip(paths, (pem, message, signature)):
            with open(path, "wb") as f:
                f.write(data)
        proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths[0],
                               "-rawin", "-in", paths[1], "-sigfile", paths[2]],
                              capture_output=True, check=False)
    return proc.returncode == 0


def read_notes(path):
    """The notes of a checkpoints file: each a note then an empty line; a last note without its
    empty line counts; a torn record does not."""
    with open(path, "rb") as f:
        data = f.read()
    notes, pos = [], 0
    while pos < len(data):
        text_end = data.find(b"\n\n", pos)
        sigs_end = data.find(b"\n\n", text_end + 1) if text_end >= 0 else -1
        if sigs_end < 0:
            rest = data[pos:]
            if text_end >= 0 and rest.endswith(b"\n") and text_end + 2 < len(data):
                notes.append(rest)
            break
        notes.append(data[pos:sigs_end + 1])
        pos = sigs_end + 2
    return notes


def open_checkpoint(note, key):
    """(category or None, size or None, root): a signed checkpoint of key's log, or why not."""
    name, key_id, public_key = key
    size, root = None, None
    split = note.rfind(b"\n\n")
    text = note[:split + 1] if split > 0 else b""
    lines = text.split(b"\n")
    if len(lines) >= 4 and re.fullmatch(rb"0|[1-9][0-9]{0,19}", lines[1]):
        size = int(lines[1])
        try:
            root = base64.b64decode(lines[2], validate=True)
        except ValueError:
            root = None
    if split <= 0 or len(note) > NOTE_MAX or not note.endswith(b"\n"):
        return "bad-note", size, root
    verdict = "bad-signature"  # until a good signature by the key is found
    for line in note[split + 2:-1].split(b"\n"):
        if not line.startswith(EM_DASH + b" ") or line.count(b" ") != 2:
            return "bad-note", size, root
        signer, blob = line[len(EM_DASH) + 1:].split(b" ")
        try:
            blob = base64.b64decode(blob, validate=True)
        except ValueError:
            return "bad-note", size, root
        if signer.decode(errors="replace") == name and blob[:4] == key_id:
            ok = len(blob) == 68 and ed25519_verify(public_key, text, blob[4:])
            verdict = None if ok else "bad-signature"
            break
    if verdict is None and (size is None or root is None or len(root) != 32 or
                            lines[0].decode(errors="replace") != name):
        verdict = "bad-note"
    return verdict, size, root


def verify_checkpoints(path, files, vkey):
    """The log against every checkpoint of files, in order (format §15). A dict: status ok|bad,
    checked, log_entries, last_size, and when bad: file (its place in files, from 0), index
    (from 1), size, category, first_entry, last_entry."""
    key = parse_vkey(vkey) if vkey else None
    found = []  # (file, index, verdict, size, root)
    for number, name in enumerate(files):
        if number == 0 and not os.path.exists(name):
            continue  # the stored file is optional, an auditor's is not
        for index, note in enumerate(read_notes(name), 1):
            verdict, size, root = ("no-key", None, None) if key is None else open_checkpoint(note, key)
            if key is None:
                text = note[:note.rfind(b"\n\n") + 1].split(b"\n")
                size = int(text[1]) if len(text) > 1 and text[1].isdigit() else 0
            found.append((number, index, verdict, size, root))
    result = {"status": "ok", "checked": len(found), "log_entries": 0, "last_size": 0}

    def bad(item, category, first=0, last=0):
        result.update(status="bad", file=item[0], index=item[1], size=item[3] or 0,
                      category=category, first_entry=first, last_entry=last)
        return result

    for item in found:
        if item[2] is not None:
            return bad(item, item[2])
    for j, later in enumerate(found):
        for earlier in found[:j]:
            if earlier[3] == later[3] and earlier[4] != later[4]:
                return bad(later, "fork")
    entries, roots = tree_roots(path, [item[3] for item in found])
    result["log_entries"] = entries
    matched = [item[3] for item in found if roots.get(item[3]) == item[4]]
    for item in found:
        if item[3] > entries:
            return bad(item, "log-short", entries + 1, item[3])
        if roots[item[3]] != item[4]:
            good = max([size for size in matched if size < item[3]], default=0)
            return bad(item, "root-mismatch", good + 1, item[3])
        result["last_size"] = max(result["last_size"], item[3])
    # Nothing past the largest checkpoint but its own audit.checkpoint entry (format §15).
    largest = max(found, key=lambda item: item[3], default=(0, 0, None, 0, None))
    covered = result["last_size"] + own_entry_follows(path, largest)
    result["covered"] = covered
    if entries > covered:
        return bad(largest, "unsigned", covered + 1, entries)
    return result


def own_entry_follows(path, item):
    """1 if the log's entry after the first item[3] is checkpoint item's own entry, else 0."""
    if item[4] is None:
        return 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f):
            if number == item[3] and raw.endswith(b"\n"):
                try:
                    entry = json.loads(raw)
                    details = entry["details"]
                    return int(entry["action"] == "audit.checkpoint" and
                               details["size"] == item[3] and
                               details["root"] == base64.b64encode(item[4]).decode())
                except (ValueError, KeyError, TypeError):
                    return 0  # not an entry at all: the chain's check names it
    return 0


def describe_checkpoints(result, files):
    if result["status"] == "ok":
        if not result["checked"]:
            return "audit checkpoints: none to check"
        return (f"audit checkpoints OK: {result['checked']} checked against "
                f"{result['log_entries']} entries, the largest of size {result['last_size']}")
    where = f"checkpoint {result['index']} of {files[result['file']]} (size {result['size']})"
    if result["category"] == "unsigned":
        return (f"audit checkpoints BROKEN after {where}: unsigned: entries "
                f"{result['first_entry']}..{result['last_entry']} are not covered by a signed "
                f"checkpoint: the log is proven up to entry {result['first_entry'] - 1}")
    text = f"audit checkpoints BROKEN at {where}: {result['category']}"
    if result["first_entry"]:
        text += f": entries {result['first_entry']}..{result['last_entry']}"
    return text


# ---------------------------------------------------------------------------
# Cross-check against the C implementation.


def c_verify(tool, path):
    """Runs `TOOL verify PATH`, which prints `ok entries=N last_hash=H partial=P`
    or `bad line=L seq=S category=C`."""
    out = subprocess.run([tool, "verify", path], capture_output=True, text=True, check=False)
    fields = out.stdout.split()
    if not fields or fields[0] not in ("ok", "bad"):
        raise RuntimeError(f"unexpected output from {tool} verify: {out.stdout!r} {out.stderr!r}")
    result = {"status": fields[0]}
    for field in fields[1:]:
        key, _, value = field.partition("=")
        result[key] = value
    return result


def summary(result):
    """The parts both verifiers must agree on."""
    if result["status"] == "ok":
        return ("ok", int(result["entries"]), result["last_hash"], int(result["partial"]))
    category = result["reason"].split(":")[0] if "reason" in result else result["category"]
    return ("bad", int(result["line"]), int(result["seq"]), category)


def rehash(line):
    """Recomputes a line's hash, as a forger who edits an entry would."""
    body = line[:-SUFFIX_LEN]
    return body + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'


def tamperings(lines):
    """(name, new file bytes, expected summary-without-hash) for each kind of damage."""
    k = 17  # 1-based seq of the damaged entry; line k holds seq k in the clean log
    idx = k - 1

    def join(ls, tail=b""):
        return b"".join(line + b"\n" for line in ls) + tail

    def edited(new_line, at=idx):
        copy = list(lines)
        copy[at] = new_line
        return copy

    line = lines[idx]
    details_at = line.index(b'"details":{') + len(b'"details":{') + 3
    flipped = line[:details_at] + bytes([line[details_at] ^ 0x01]) + line[details_at + 1 :]
    prev_at = line.index(b'"prev":"') + len(b'"prev":"')
    new_prev = line[:prev_at] + (b"1" if line[prev_at:prev_at + 1] != b"1" else b"2") + line[prev_at + 1 :]
    details_start = line.index(b'"details":{') + len(b'"details":{')

    def inject(text):
        return rehash(line[:details_start] + text + line[details_start:])

    yield "details byte flipped", join(edited(flipped)), ("bad", k, k, "bad-hash")
    yield "line deleted", join(lines[:idx] + lines[idx + 1 :]), ("bad", k, k + 1, "bad-seq")
    swapped = list(lines)
    swapped[idx], swapped[idx + 1] = swapped[idx + 1], swapped[idx]
    yield "lines swapped", join(swapped), ("bad", k, k + 1, "bad-seq")
    yield "hash truncated", join(edited(line[:-12] + b'"}')), ("bad", k, k, "no-hash-suffix")
    yield "prev edited", join(edited(new_prev)), ("bad", k, k, "bad-prev")
    yield "edited and rehashed", join(edited(rehash(flipped))), ("bad", k + 1, k + 1, "bad-prev")
    yield "non-ASCII byte", join(edited(line[:details_at] + b"\xc3\xa9" + line[details_at + 1 :])), (
        "bad", k, k, "not-ascii")
    yield "duplicate member", join(edited(inject(b'"x":1,"x":2,'))), ("bad", k, k, "bad-json")
    yield "escaped NUL", join(edited(inject(b'"x":"a\\u0000b",'))), ("bad", k, k, "bad-json")
    yield "lone surrogate", join(edited(inject(b'"x":"\\ud800",'))), ("bad", k, k, "bad-json")
    yield "huge integer", join(edited(inject(b'"x":99999999999999999999,'))), ("bad", k, k, "bad-json")
    yield "huge real", join(edited(inject(b'"x":1e400,'))), ("bad", k, k, "bad-json")
    yield "NaN", join(edited(inject(b'"x":NaN,'))), ("bad", k, k, "bad-json")
    reordered = line.replace(b'"seq":%d,' % k, b"", 1)
    reordered = rehash(reordered[:1] + reordered[1:].replace(b',"details"', b',"seq":%d,"details"' % k, 1))
    yield "members reordered", join(edited(reordered)), ("bad", k, 0, "bad-members")
    yield "seq as string", join(edited(rehash(line.replace(b'"seq":%d' % k, b'"seq":"%d"' % k, 1)))), (
        "bad", k, 0, "bad-type")
    yield "too deep", join(edited(inject(b'"x":' + b"[" * 40 + b"]" * 40 + b","))), ("bad", k, k, "bad-type")
    yield "blank line", join(lines[:idx] + [b""] + lines[idx:]), ("bad", k, 0, "no-hash-suffix")
    yield "CRLF line", join(edited(line + b"\r")), ("bad", k, k, "not-ascii")
    long_line = inject(b'"x":"' + b"a" * LINE_MAX + b'",')
    yield "line too long", join(edited(long_line)), ("bad", k, k, "too-long")
    yield "partial tail", join(lines, lines[-1][:40]), None
    yield "seq 1 missing", join(lines[1:]), ("bad", 1, 2, "bad-seq")


def cross_check(tool):
    failures = 0
    workdir = tempfile.mkdtemp(prefix="audit-cross-")
    try:
        log = os.path.join(workdir, "audit.log")
        subprocess.run([tool, "write", log, "300"], check=True)
        good = verify(log)
        ours, theirs = summary(good), summary(c_verify(tool, log))
        print(f"clean log: python {ours} / C {theirs}")
        if ours != theirs or ours[:2] != ("ok", 300):
            print("FAIL clean log: the verifiers disagree or reject it")
            failures += 1
        with open(log, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        for name, content, expected in tamperings(lines):
            path = os.path.join(workdir, "tampered.log")
            with open(path, "wb") as f:
                f.write(content)
            ours, theirs = summary(verify(path)), summary(c_verify(tool, path))
            if expected is None:
                expected = ("ok", len(lines), good["last_hash"], 40)
            status = "ok  " if ours == theirs == expected else "FAIL"
            failures += status == "FAIL"
            print(f"{status} {name}: expected {expected}, python {ours}, C {theirs}")
    finally:
        shutil.rmtree(workdir)
    print("cross-check:", "all agree" if failures == 0 else f"{failures} failure(s)")
    return 1 if failures else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--cross-check":
        return cross_check(argv[2])
    args, files, vkey = argv[1:], [], None
    while len(args) >= 2 and args[-2] in ("--checkpoints", "--key"):
        if args[-2] == "--key":
            vkey = args[-1]
        else:
            files.insert(0, args[-1])
        args = args[:-2]
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        result = verify(args[0])
        checkpoints = verify_checkpoints(args[0], files, vkey) if files else None
    except (OSError, ValueError) as e:
        print(f"audit log not verified: {e}", file=sys.stderr)
        return 2
    print(describe(result))
    if checkpoints is not None:
        print(describe_checkpoints(checkpoints, files))
    broken = result["status"] != "ok" or (checkpoints and checkpoints["status"] != "ok")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
