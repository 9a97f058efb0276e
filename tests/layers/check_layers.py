#!/usr/bin/env python3
"""The core's calls go one way: a file calls only files listed before it.

The order is core/daemon.h's list of parts (the comment block that starts
"The parts, in the order"), after hl.h's parts (hlcore_parts). This reads
the object files' symbol tables with nm, so it sees every call the
compiler kept, and fails naming each call that goes up (or a file that
the list does not name).

usage: check_layers.py CORE_SOURCE_DIR OBJECT_FILE... (hlcore's and
hlcore_parts' objects, as CMake lists them: no stale file of a source
that is gone can take part)
"""
import os
import re
import subprocess
import sys


def order(core_dir):
    text = open(os.path.join(core_dir, "daemon.h")).read()
    block = text[text.index("The parts, in the order"):text.index(" */", text.index("The parts, in the order"))]
    files = []
    for line in block.splitlines():
        m = re.match(r"\s*\*\s+((?:\w+\.c\s+)+)", line + " ")
        if m:
            files.append(m.group(1).split())
    return files


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBR" and parts[2].startswith("hl__"):
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U" and parts[1].startswith("hl__"):
            used.add(parts[1])
    return defined, used


def main():
    core_dir = sys.argv[1]
    obj_files = [f for arg in sys.argv[2:] for f in arg.split(";") if f]
    layers = order(core_dir)
    flat = [f for group in layers for f in group]
    twice = sorted({f for f in flat if flat.count(f) > 1})
    rank = {f: i + 1 for i, f in enumerate(f for group in layers for f in group)}
    objs = {}
    for path in obj_files:
        name = os.path.basename(path)
        if name.endswith(".c.o"):
            objs[name[:-2]] = path
    parts = {"log.c", "util.c", "config.c", "identity.c", "host.c", "oob.c",
             "loader.c", "peercache.c", "socks.c"}
    owner, uses = {}, {}
    for f, path in objs.items():
        d, u = symbols(path)
        uses[f] = u
        for s in d:
            owner[s] = f
    bad = [f"{f}: named twice in daemon.h's list of parts" for f in twice]
    for f in sorted(objs):
        if f not in rank and f not in parts:
            bad.append(f"{f}: not in daemon.h's list of parts")
            continue
        for s in sorted(uses[f]):
            g = owner.get(s)
            if g is None or g == f or g in parts:
                continue
            if f in parts:
                bad.append(f"{f} (a part of hl.h) calls {s} in {g}")
            elif rank.get(g, 0) >= rank[f] and g != f:
                bad.append(f"{f} calls {s} in {g}, which is not above it")
    if len(objs) < 20:
        bad.append(f"only {len(objs)} object files given")
    for b in bad:
        print("layers:", b)
    print(f"layers: {len(objs)} files, {len(layers)} layers, {len(bad)} calls against the order")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
