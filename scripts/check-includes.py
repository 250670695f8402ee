#!/usr/bin/env python3
"""Checks the include graph of the product code (docs/architecture.md "Layers").

Reads every #include "..." in proto/, relay/, agent/ and console/ (system headers
in <...> are not ours) and fails, naming each offending line, on:
  - a header that does not exist under the root (a stale path after a move);
  - proto including anything outside proto (it is shared by every program);
  - agent, relay or console including one another's headers;
  - inside the relay, a lower layer including a higher one (the order is LAYERS);
  - a cycle between modules (a module is FILE.c with FILE.h, its internal header
    FILE_int.h and the .c files that include that; so a.c including b.h and b.c
    including a.h is a cycle even though no header includes itself).

--list prints every include as FILE:LINE -> HEADER first. Exit status 0 when the
graph is clean, 1 when something is wrong, 2 for a usage error.
"""
import argparse
import os
import re
import sys

PARTS = ("proto", "relay", "agent", "console")

# Inside the relay, lowest first. A file may include its own layer and the ones below.
LAYERS = ("relay/store", "relay/desk", "relay/net", "relay/sessions", "relay/cmd", "relay")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# Headers made by the build, not in the tree.
GENERATED = {"tl_version.h"}


def part_of(path):
    return path.split("/", 1)[0]


def layer_of(path):
    """Index in LAYERS of a relay path: relay/main.c is the top, relay/net/x.c is net."""
    folder = os.path.dirname(path)
    for i, layer in enumerate(LAYERS):
        if folder == layer:
            return i
    return len(LAYERS) - 1 if folder.startswith("relay") else None


def module_of(path, owners=None):
    """The module a file belongs to: FILE.c and FILE.h are one; so is FILE_int.h, the header
    that the files of a module split in several share among themselves, and so is every .c
    file that includes a FILE_int.h (libuv's uv-common.h style): it is one of FILE's pieces."""
    if owners and path in owners:
        return owners[path]
    stem = os.path.splitext(path)[0]
    return stem[:-len("_int")] if stem.endswith("_int") else stem


def internal_owners(edges):
    """{file.c: module} for the .c files that include a module's internal header."""
    owners = {}
    for path, _line, header in edges:
        if path.endswith(".c") and os.path.splitext(header)[0].endswith("_int"):
            owners[path] = module_of(header)
    return owners


def scan(root):
    """[(file, line, header)] for every quoted include of the product code."""
    edges = []
    for part in PARTS:
        top = os.path.join(root, part)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith((".c", ".h")):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, encoding="utf-8", errors="replace") as f:
                    for number, text in enumerate(f, 1):
                        m = INCLUDE.match(text)
                        if m:
                            edges.append((rel, number, m.group(1)))
    return edges


def rule_problems(root, edges):
    problems = []
    for path, line, header in edges:
        where = "%s:%d: includes %s" % (path, line, header)
        if header in GENERATED:
            continue
        if not os.path.isfile(os.path.join(root, header)):
            problems.append("%s, which does not exist (includes are written from the "
                            "top of the tree: \"proto/buf.h\")" % where)
            continue
        mine, theirs = part_of(path), part_of(header)
        if theirs not in PARTS:
            problems.append("%s, which is not product code" % where)
        elif mine == "proto" and theirs != "proto":
            problems.append("%s: proto is shared and includes only proto" % where)
        elif theirs not in ("proto", mine):
            problems.append("%s: %s may include only its own headers and proto's" % (where, mine))
        elif mine == "relay" and theirs == "relay":
            low, high = layer_of(path), layer_of(header)
            if high > low:
                problems.append("%s: %s is below %s (layers, lowest first: %s)" %
                                (where, LAYERS[low], LAYERS[high], ", ".join(LAYERS)))
    return problems


def cycles(edges):
    """Each cycle of the module graph once, as a list of modules."""
    graph = {}
    owners = internal_owners(edges)
    for path, _line, header in edges:
        if header in GENERATED:
            continue
        a, b = module_of(path, owners), module_of(header)
        if a != b:
            graph.setdefault(a, set()).add(b)
    found, seen = [], set()
    # Tarjan's strongly connected components, iteratively (no recursion limit).
    index, low, on_stack, stack, counter = {}, {}, set(), [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    key = tuple(sorted(component))
                    if key not in seen:
                        seen.add(key)
                        found.append(sorted(component))
    return found


def main(argv):
    parser = argparse.ArgumentParser(description="Check the include graph of the product code.")
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), os.pardir),
                        help="the source tree (default: this script's checkout)")
    parser.add_argument("--list", action="store_true", help="print every include first")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    if not all(os.path.isdir(os.path.join(root, p)) for p in ("proto",)):
        print("check-includes: %s has no proto/ folder: not a Tierline tree" % root,
              file=sys.stderr)
        return 2
    edges = scan(root)
    if args.list:
        for path, line, header in edges:
            print("%s:%d -> %s" % (path, line, header))
    problems = rule_problems(root, edges)
    for component in cycles(edges):
        problems.append("cycle between modules: %s (each includes a header of the next)" %
                        " -> ".join(component + [component[0]]))
    files = len({path for path, _l, _h in edges})
    if problems:
        for problem in problems:
            print("check-includes: " + problem, file=sys.stderr)
        print("check-includes: %d problem(s) in %d includes of %d files" %
              (len(problems), len(edges), files), file=sys.stderr)
        return 1
    print("check-includes: %d includes in %d files: no cycle, every layer points down" %
          (len(edges), files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
