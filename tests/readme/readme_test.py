#!/usr/bin/env python3
"""Runs the README's command blocks (issue 15 §4): "every command in the README works as written"
is checked, not hoped.

Convention (documented in README.md, "Commands in this README are tested"): every ```sh or
```bash block is preceded by a marker comment,

    <!-- readme: run WALKTHROUGH -->     run it, as part of the named walk-through
    <!-- readme: skip REASON -->         do not run it (say why: needs a fresh machine, ...)

An unmarked sh/bash block is an error, so that a new section cannot be silently untested.
Plain ``` blocks (output listings) are never run unless marked.

The blocks of one walk-through run in order in one bash process (variables and background jobs
`&` / `kill %1` carry over from block to block); the walk-throughs run one after the other in
one shared working folder, so each must use its own data folder and port and stop the servers
it started: a walk-through that leaves a job running fails. A command's expected exit status is
0 unless its line ends with a comment `# exit N`. Lines that start with `#` are expected output.

Usage:
  readme_test.py README.md PKISIM_BINARY SOURCE_DIR [--only NAME] [--timeout S] [--no-netns]
  readme_test.py README.md --check        # only parse: fails on unmarked blocks, lists the rest

Runs in a private network namespace (`unshare -n`, loopback only) so that the README's fixed
ports cannot collide with anything else on the machine; exit 77 when that is not permitted.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MARK = re.compile(r"^\s*<!--\s*readme:\s*(run|skip)\b\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
EXIT = re.compile(r"#\s*exit\s+(\d+)\b")


class Block:
    def __init__(self, line, lang, text, action, arg):
        self.line, self.lang, self.text, self.action, self.arg = line, lang, text, action, arg


def parse(path):
    """Returns (blocks, errors)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, errors = [], []
    pending = None  # (action, arg, line) of the last marker
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if m:
            pending = (m.group(1), m.group(2), i + 1)
            i += 1
            continue
        f = FENCE.match(lines[i])
        if f:
            indent, lang = f.group(1), f.group(2)
            start = i + 1
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start:j]]
            if pending:
                blocks.append(Block(start, lang, body, pending[0], pending[1]))
            elif lang in ("sh", "bash", "shell"):
                errors.append(f"{path}:{start}: ```{lang} block without a marker: put "
                              "<!-- readme: run WALKTHROUGH --> or <!-- readme: skip REASON --> "
                              "on a line before it")
            pending = None
            i = j + 1
            continue
        if lines[i].strip():
            pending = None if not lines[i].lstrip().startswith("<!--") else pending
        i += 1
    for b in blocks:
        if b.action == "run" and not b.arg:
            errors.append(f"{path}:{b.line}: `readme: run` needs a walk-through name")
        if b.action == "skip" and not b.arg:
            errors.append(f"{path}:{b.line}: `readme: skip` needs a reason")
    return blocks, errors


def commands(block):
    """Logical command lines (backslash continuations joined) with their README line numbers."""
    out, cur, first = [], "", None
    for k, raw in enumerate(block.text):
        line = raw.rstrip()
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue  # blank or expected output
        if first is None:
            first = block.line + 1 + k
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        out.append((first, cur))
        cur, first = "", None
    if cur:
        out.append((first, cur))
    return out


def script_for(name, blocks, readme):
    s = ["set -u", "trap 'k=$(jobs -p); [ -n \"$k\" ] && kill $k 2>/dev/null; wait' EXIT",
         "readme_fail() { echo \"$1: exit $2, expected $3\" >&2; exit 1; }"]
    for b in blocks:
        for line, cmd in commands(b):
            m = EXIT.search(cmd)
            want = int(m.group(1)) if m else 0
            where = f"{os.path.basename(readme)}:{line}"
            s.append(f"echo {shlex.quote('+ ' + cmd)} >&2")
            # { ...; } keeps background jobs and variables in this shell.
            s.append(f"{{ {cmd}\n}}; rc=$?; [ $rc -eq {want} ] || readme_fail "
                     f"{shlex.quote(where + ': ' + cmd[:100])} $rc {want}")
    s.append("left=$(jobs -rp)")
    s.append(f"if [ -n \"$left\" ]; then echo 'walk-through {name} left servers running "
             "(PIDs '\"$left\"'): stop them at its end (kill %1 ...)' >&2; exit 1; fi")
    return "\n".join(s) + "\n"


def main(argv):
    args = list(argv[1:])
    if len(args) >= 2 and args[1] == "--check":
        blocks, errors = parse(args[0])
        for e in errors:
            print(e, file=sys.stderr)
        names = []
        for b in blocks:
            if b.action == "run" and b.arg not in names:
                names.append(b.arg)
        print(f"{len(blocks)} marked blocks; walk-throughs: {', '.join(names)}; "
              f"skipped: {sum(b.action == 'skip' for b in blocks)}")
        return 1 if errors else 0
    only, timeout, netns = None, 600, True
    rest = []
    while args:
        a = args.pop(0)
        if a == "--only":
            only = args.pop(0)
        elif a == "--timeout":
            timeout = int(args.pop(0))
        elif a == "--no-netns":
            netns = False
        else:
            rest.append(a)
    if len(rest) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    readme, binary, source = (os.path.abspath(x) for x in rest)
    if netns and os.environ.get("PKISIM_README_NETNS") != "1":
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
            print("SKIP: unshare -n not permitted here")
            return 77
        inner = [sys.executable] + argv[:1] + [readme, binary, source, "--timeout", str(timeout)]
        if only:
            inner += ["--only", only]
        cmd = "ip link set lo up && exec " + " ".join(shlex.quote(c) for c in inner)
        env = dict(os.environ, PKISIM_README_NETNS="1")
        return subprocess.run(["unshare", "-n", "bash", "-c", cmd], env=env).returncode

    blocks, errors = parse(readme)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    groups = {}
    for b in blocks:
        if b.action == "run":
            groups.setdefault(b.arg, []).append(b)
    work = tempfile.mkdtemp(prefix="pkisim-readme-")
    # The README's paths, relative to a checkout: the binary where the README says it is.
    os.makedirs(os.path.join(work, "build", "release", "cli"))
    os.symlink(binary, os.path.join(work, "build", "release", "cli", "pkisim"))
    for d in ("configs", "scripts", "tests", "bench"):
        if os.path.exists(os.path.join(source, d)):
            os.symlink(os.path.join(source, d), os.path.join(work, d))
    status = 0
    try:
        for name, bs in groups.items():
            if only and name != only:
                continue
            path = os.path.join(work, f".readme-{name}.sh")
            with open(path, "w") as f:
                f.write(script_for(name, bs, readme))
            log = os.path.join(work, f".readme-{name}.log")
            t0 = time.monotonic()
            with open(log, "w") as out:
                p = subprocess.Popen(["bash", path], cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
                try:
                    rc = p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    rc = "timeout"
            took = time.monotonic() - t0
            # Nothing the walk-through started may survive it.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if rc == 0:
                print(f"walk-through {name}: ok ({took:.0f} s)")
            else:
                status = 1
                print(f"walk-through {name}: FAILED ({rc}, {took:.0f} s); last lines:")
                print("".join(open(log).readlines()[-40:]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
