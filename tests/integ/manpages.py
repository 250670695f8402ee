#!/usr/bin/env python3
"""The man pages (man/*.scd) agree with the programs, and render cleanly.

    manpages.py BUILD_DIR CASE

BUILD_DIR is the build tree: its bin/ holds the programs and
tierline-gen-commands, its man/ the pages scdoc made (man/CMakeLists.txt).

What is compared. Each program's --help lists its commands; each command's
--help gives its usage and options. A command whose usage starts with a word
(user add NAME ... | user list ...) has subcommands, one per alternative. In
a page, the COMMANDS section holds one entry per command or subcommand: a line
at the start of a line that opens with its name in bold (*user add* ...), and
the indented text under it. The check asks, and names what fails:
  - every command and subcommand has its entry, and every long option of its
    usage line is in that entry; every option its help lists is in one of the
    command's entries; each program's own options are in the page;
  - every entry names a command or subcommand the program has;
  - tierline-commands(7) holds exactly the technicians' commands of the
    relay's table (tierline-gen-commands writes it), each with its options;
  - every command `tierline --help` lists has an entry in tierline(1) (the
    console's own) or in tierline-commands(7), with the options its help gives.
Nothing here starts a relay: the programs answer --help without one.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import tlcase
from tlcase import case, check, run

BUILD = None
WORK = None
SOURCES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                        "man"))
PAGES = {"tierline-relay": "tierline-relay.8", "tierline-agent": "tierline-agent.8",
         "tierline": "tierline.1", "commands": "tierline-commands.7"}
WORD = r"[a-z][a-z0-9-]*"
OPTION = re.compile(r"--[a-z0-9][a-z0-9-]*")
OPENING = {"]": "[", ")": "("}


# ---- the pages ---------------------------------------------------------------------------------

def read_page(folder, page):
    """{section: text} and [(entry name, entry text)] of man page PAGE's scdoc source."""
    with open(os.path.join(folder, page + ".scd")) as f:
        lines = f.read().splitlines()
    sections, entries, section = {}, [], None
    for line in lines:
        if line.startswith("# "):
            section = line[2:].strip()
            sections[section] = ""
            continue
        if section is None:
            continue
        text = line.replace("\\_", "_").replace("\\*", "*")
        sections[section] += text + "\n"
        if section != "COMMANDS":
            continue
        header = re.match(r"\*([^*]+)\*", line)
        if header is not None:
            entries.append([header.group(1).strip(), text + "\n"])
        elif entries:
            entries[-1][1] += text + "\n"
    return sections, [tuple(entry) for entry in entries]


def entry_map(page, entries, problems):
    found = {}
    for name, text in entries:
        if name in found:
            problems.append("%s: two entries named '%s'" % (page, name))
        found[name] = text
    return found


# ---- the programs ------------------------------------------------------------------------------

def program_help(program, *words, env=None):
    out, _ = run(os.path.join(BUILD, "bin", program), *words, "--help", env=env)
    return out


def usage_and_options(help_text, program):
    """The usage (without the program's name) and the long options listed under Options:."""
    first = help_text.splitlines()[0]
    check(first.startswith("usage: %s " % program), "%s: unexpected help:\n%s" % (program, help_text))
    usage = first[len("usage: %s " % program):]
    options, listing = [], False
    for line in help_text.splitlines():
        if line == "Options:":
            listing = True
        elif listing and not line.strip():
            break
        elif listing:
            options += [o for o in OPTION.findall(re.split(r"\s{2,}", line.strip())[0])
                        if o != "--help" and o not in options]
    return usage, options


def usage_parts(name, usage):
    """{subcommand (or None): [long options]} from a usage line: its alternatives
    (" | ") that start with a word are subcommands; the others go on the one before."""
    parts, current = {}, None
    for number, alternative in enumerate(usage.split(" | ")):
        words = re.sub(r"[\[\]()]", " ", alternative).split()
        if words and words[0] == name:
            words = words[1:]
        # A subcommand, or several that take the same words: audit pubkey|checkpoint.
        subs = words[0].split("|") if words and re.fullmatch(r"%s(\|%s)*" % (WORD, WORD),
                                                             words[0]) else None
        if number == 0 or subs is not None:
            current = subs or [None]
        for sub in current:
            parts.setdefault(sub, [])
            parts[sub] += [o for o in OPTION.findall(alternative) if o not in parts[sub]]
    if None in parts and len(parts) > 1:
        # Options before any subcommand's alternative (none today) count for the first.
        first = next(key for key in parts if key is not None)
        parts[first] += parts.pop(None)
    return parts


def listed_commands(top_help, program):
    """The commands a program's --help lists: (first word, usage) in order."""
    commands = []
    for match in re.finditer(r"^  (%s)(?: |$)" % WORD, top_help, re.M):
        if match.group(1) not in [name for name, _ in commands]:
            commands.append((match.group(1), None))
    return commands


def program_commands(program, env=None):
    """{command: {subcommand or None: options}, ...} and the options of each command's help."""
    commands, listed = {}, {}
    for name, _ in listed_commands(program_help(program, env=env), program):
        usage, options = usage_and_options(program_help(program, name, env=env), program)
        commands[name] = usage_parts(name, usage)
        listed[name] = options
    return commands, listed


def check_top_options(page, sections, top_help, program, problems):
    """The program's own options (--help, --version and those of its usage line) are in the
    page's OPTIONS, and each option there is one its --help speaks of."""
    in_page = OPTION.findall(sections.get("OPTIONS", ""))
    for option in ["--help", "--version"] + OPTION.findall(top_help.splitlines()[0]):
        if option not in in_page:
            problems.append("%s: OPTIONS lacks %s (%s --help)" % (page, option, program))
    for option in in_page:
        if option not in OPTION.findall(top_help):
            problems.append("%s: OPTIONS has %s, which %s --help does not mention"
                            % (page, option, program))


def check_program(program, folder, problems):
    page = PAGES[program]
    sections, entries = read_page(folder, page)
    found = entry_map(page, entries, problems)
    commands, listed = program_commands(program)
    check_top_options(page, sections, program_help(program), program, problems)
    for name, parts in commands.items():
        group = [text for entry, text in found.items() if entry.split()[0] == name]
        if list(parts) == [None]:
            # No subcommands: the options its help lists belong to its one entry.
            parts[None] += [o for o in listed[name] if o not in parts[None]]
        for sub, options in parts.items():
            entry = name if sub is None else name + " " + sub
            if entry not in found:
                problems.append("%s: no entry for '%s' (%s %s --help lists it)"
                                % (page, entry, program, name))
                continue
            for option in options:
                if option not in OPTION.findall(found[entry]):
                    problems.append("%s: entry '%s' lacks %s (%s %s --help)"
                                    % (page, entry, option, program, name))
        for option in listed[name]:
            if list(parts) != [None] and group and not any(option in OPTION.findall(text) for text in group):
                problems.append("%s: no entry of '%s' has %s (%s %s --help)"
                                % (page, name, option, program, name))
    for entry in found:
        words = entry.split()
        if words[0] not in commands:
            problems.append("%s: entry '%s' is not a command of %s" % (page, entry, program))
        elif len(words) > 2 or (len(words) == 2 and words[1] not in commands[words[0]]):
            problems.append("%s: entry '%s' is not a subcommand of %s %s"
                            % (page, entry, program, words[0]))


# ---- the technicians' commands and the console -------------------------------------------------

def relay_table():
    """The technicians' commands as the relay's table lists them (relay/gen_commands.c)."""
    source = os.path.join(WORK, "commands.c")
    run(os.path.join(BUILD, "bin", "tierline-gen-commands"), "table", source)
    with open(source) as f:
        data = bytes(int(byte, 16) for byte in re.findall(r"0x([0-9a-f]{2})", f.read()))
    return json.loads(data.rstrip(b"\0").decode())["commands"]


def check_table(folder, problems):
    page = PAGES["commands"]
    _, entries = read_page(folder, page)
    found = entry_map(page, entries, problems)
    table = relay_table()
    for command in table:
        name = command["name"]
        if name not in found:
            problems.append("%s: no entry for '%s' (the relay's commands table has it)"
                            % (page, name))
            continue
        options = OPTION.findall(command["usage"]) + [o["name"] for o in command["options"]]
        for option in sorted(set(options), key=options.index):
            if OPTION.fullmatch(option) and option not in OPTION.findall(found[name]):
                problems.append("%s: entry '%s' lacks %s (the commands table has it)"
                                % (page, name, option))
    names = [command["name"] for command in table]
    for entry in found:
        if entry not in names:
            problems.append("%s: entry '%s' is not in the relay's commands table" % (page, entry))


def console_env():
    """An environment where the console has no settings and no cached list: it answers
    from the list it was built with."""
    home = os.path.join(WORK, "console-home")
    os.makedirs(home, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIERLINE_")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"))
    return env


def console_commands(top_help):
    """The commands `tierline --help` lists: a word, and the next one if it is a word too
    (ticket show, completion bash)."""
    return [" ".join(word for word in match.groups() if word)
            for match in re.finditer(r"^  (%s)(?: (%s))?(?= |$)" % (WORD, WORD), top_help, re.M)]


def check_console(folder, problems):
    page, commands_page = PAGES["tierline"], PAGES["commands"]
    sections, entries = read_page(folder, page)
    own = entry_map(page, entries, problems)
    relays = dict(read_page(folder, commands_page)[1])
    env = console_env()
    top = program_help("tierline", env=env)
    check_top_options(page, sections, top, "tierline", problems)
    names = console_commands(top)
    for name in names:
        usage, options = usage_and_options(program_help("tierline", *name.split(), env=env),
                                           "tierline")
        options += [o for o in OPTION.findall(usage) if o not in options]
        where, text = (page, own[name]) if name in own else (commands_page, relays.get(name))
        if text is None:
            problems.append("%s: no entry for '%s', nor in %s (tierline --help lists it)"
                            % (page, name, commands_page))
            continue
        for option in options:
            if option not in OPTION.findall(text):
                problems.append("%s: entry '%s' lacks %s (tierline %s --help)"
                                % (where, name, option, name))
    for entry in own:
        if entry not in names:
            problems.append("%s: entry '%s' is not a command of tierline" % (page, entry))


def check_pages(folder):
    problems = []
    for program in ("tierline-relay", "tierline-agent"):
        check_program(program, folder, problems)
    check_table(folder, problems)
    check_console(folder, problems)
    return problems


def expect_agreement(problems):
    check(not problems, "the man pages (man/*.scd) disagree with the programs:\n  "
          + "\n  ".join(problems))


def usage_value_problems(where, usage, options):
    """An option's value in a usage line is the one its Options line names (or a list of the
    words it takes, a|b|c): "[--ttl 15m]" beside "--ttl DURATION" reads as two options."""
    problems = []
    for option, value in re.findall(r"(--[a-z0-9-]+) ([^\s\[(|-]\S*)", usage):
        # The brackets that close around the option are not its value's: "[--tier N]".
        while value[-1] in "])" and value.count(value[-1]) > value.count(OPENING[value[-1]]):
            value = value[:-1]
        named = options.get(option)
        if named and value != named and "|" not in value:
            problems.append("%s: usage says %s %s, its options %s %s"
                            % (where, option, value, option, named))
    return problems


def help_options(help_text):
    """{option: its value's name, or None for a flag} from a --help's Options: lines."""
    options, listing = {}, False
    for line in help_text.splitlines():
        if line == "Options:":
            listing = True
        elif listing and not line.strip():
            break
        elif listing:
            head = re.split(r"\s{2,}", line.strip())[0]
            match = re.search(r"(--[a-z0-9-]+)(?: (\S+))?$", head)
            if match:
                options[match.group(1)] = match.group(2)
    return options


# ---- cases -------------------------------------------------------------------------------------

@case
def case_relay_page_agrees_with_help():
    problems = []
    check_program("tierline-relay", SOURCES, problems)
    expect_agreement(problems)


@case
def case_agent_page_agrees_with_help():
    problems = []
    check_program("tierline-agent", SOURCES, problems)
    expect_agreement(problems)


@case
def case_commands_page_agrees_with_the_commands_table():
    problems = []
    check_table(SOURCES, problems)
    expect_agreement(problems)


@case
def case_console_page_agrees_with_help():
    problems = []
    check_console(SOURCES, problems)
    expect_agreement(problems)


@case
def case_help_usage_agrees_with_its_options():
    """Each command's usage line names an option's value as its Options line does."""
    problems = []
    for program in ("tierline-relay", "tierline-agent"):
        for name, _ in listed_commands(program_help(program), program):
            text = program_help(program, name)
            problems += usage_value_problems("%s %s --help" % (program, name),
                                             text.splitlines()[0], help_options(text))
    env = console_env()
    for name in console_commands(program_help("tierline", env=env)):
        text = program_help("tierline", *name.split(), env=env)
        problems += usage_value_problems("tierline %s --help" % name, text.splitlines()[0],
                                         help_options(text))
    for command in relay_table():
        problems += usage_value_problems(
            "the relay's %s" % command["name"], command["usage"],
            {o["name"]: o["value"] for o in command["options"]})
    check(not problems, "usage lines disagree with their options:\n  " + "\n  ".join(problems))


@case
def case_a_missing_entry_or_option_is_named():
    """The check itself: pages with a subcommand, an option and a command taken out, and an
    entry for a command nobody has, are each named."""
    folder = os.path.join(WORK, "man")
    shutil.copytree(SOURCES, folder)
    check(check_pages(folder) == [], "the pages as shipped should agree")

    def edit(page, pattern, replacement):
        path = os.path.join(folder, page + ".scd")
        with open(path) as f:
            text = f.read()
        changed = re.sub(pattern, replacement, text, count=1, flags=re.M | re.S)
        check(changed != text, "%s: nothing matched %r" % (page, pattern))
        with open(path, "w") as f:
            f.write(changed)

    # A subcommand's whole entry, up to the next entry.
    edit("tierline-relay.8", r"^\*user lead\*.*?(?=^\*)", "")
    # One option of a command, everywhere in its entry.
    edit("tierline-relay.8", r"(^\*serve\*.*?)(?=^\*enroll-code\*)",
         lambda m: m.group(1).replace("*--ssh-idle-timeout-ms*", "*--ssh-idle*"))
    edit("tierline-agent.8", r"^\*approve\*.*?(?=^\*)", "")
    edit("tierline-agent.8", r"^# COMMANDS\n\n", "# COMMANDS\n\n*uninstall*\n\tNo such thing.\n\n")
    edit("tierline-commands.7", r"^\*ticket take\*.*?(?=^\*)", "")
    edit("tierline-commands.7", r"(^\*audit search\*.*?)(?=^\*audit prove\*)",
         lambda m: m.group(1).replace("--limit", "--most"))
    edit("tierline.1", r"^\*verify-bundle\*.*?(?=^\*)", "")
    problems = check_pages(folder)
    wanted = [
        "tierline-relay.8: no entry for 'user lead' (tierline-relay user --help lists it)",
        "tierline-relay.8: entry 'serve' lacks --ssh-idle-timeout-ms (tierline-relay serve --help)",
        "tierline-agent.8: no entry for 'approve' (tierline-agent approve --help lists it)",
        "tierline-agent.8: entry 'uninstall' is not a command of tierline-agent",
        "tierline-commands.7: no entry for 'ticket take' (the relay's commands table has it)",
        "tierline-commands.7: entry 'audit search' lacks --limit (the commands table has it)",
        "tierline-commands.7: entry 'audit search' lacks --limit (tierline audit search --help)",
        "tierline.1: no entry for 'verify-bundle', nor in tierline-commands.7 (tierline --help "
        "lists it)",
        "tierline.1: no entry for 'ticket take', nor in tierline-commands.7 (tierline --help "
        "lists it)",
    ]
    for problem in wanted:
        check(problem in problems, "not named: %s\nnamed:\n  %s" % (problem, "\n  ".join(problems)))
    check(len(problems) == len(wanted),
          "named, but not asked for:\n  %s" % "\n  ".join(p for p in problems if p not in wanted))


@case
def case_pages_render_without_warnings():
    """Each page scdoc built renders with man and groff without a single warning."""
    built = os.path.join(BUILD, "man")
    sources = sorted(name[:-len(".scd")] for name in os.listdir(SOURCES) if name.endswith(".scd"))
    check(sources, "no man page sources in %s" % SOURCES)
    for tool, package in (("man", "man-db"), ("groff", "groff-base")):
        check(shutil.which(tool), "%s is not installed (Debian's %s; scripts/deps.sh)"
              % (tool, package))
    for page in sources:
        path = os.path.join(built, page)
        check(os.path.isfile(path), "%s was not built (is scdoc installed? see man/CMakeLists.txt)"
              % path)
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        proc = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                              env=env, timeout=60, stdin=subprocess.DEVNULL)
        check(proc.returncode == 0 and proc.stderr == "",
              "man --warnings -l %s: exit %d\n%s" % (path, proc.returncode, proc.stderr))
        name = re.sub(r"\.\d$", "", page)
        check(re.search(r"^NAME\n\s+%s - " % re.escape(name), proc.stdout, re.M),
              "%s: no NAME line for %s:\n%s" % (path, name, proc.stdout[:400]))
        for section in ("SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
            check(re.search(r"^%s$" % section, proc.stdout, re.M), "%s: no %s" % (path, section))
        proc = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        check(proc.returncode == 0 and proc.stderr == "",
              "groff -man -ww -z %s: exit %d\n%s" % (path, proc.returncode, proc.stderr))


def setup_globals(build_dir, work):
    global BUILD, WORK
    BUILD, WORK = build_dir, work


if __name__ == "__main__":
    sys.exit(tlcase.main("manpages.py BUILD_DIR", "tl-man-", setup_globals))
