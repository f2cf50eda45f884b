#!/bin/sh
# tests/layers.sh: the house rules of runtime/ (runtime/README.md), checked
# from the code's own #include lines. No C file stands in runtime/ itself
# (the build only compiles runtime/*/*.c); then one TAP test per folder:
#   - a file includes headers of its own folder (by name) and of folders on
#     lower floors (by path, "store/store.h"), never of a folder above it;
#   - a header of runtime/ is named in quotes from runtime/: never with
#     "../" in it, never in angle brackets (both would slip past the rule);
#   - no two files of the folder include each other in a circle (a file and
#     its header count as one: a.c or a.h including b.h is a -> b).
# The floors are read from the table of runtime/README.md, so the rule and
# its description cannot drift apart; a folder the table does not list fails.
cd "$(dirname "$0")/.." || exit 1
exec python3 - <<'PY'
import glob, os, re, sys

readme = open("runtime/README.md", encoding="utf-8").read()
floors = {m.group(2): int(m.group(1))
          for m in re.finditer(r"^\| *(\d+) *\| *`([a-z_]+)/`", readme, re.M)}
include = re.compile(r'^\s*#\s*include\s+(["<])([^">]+)[">]', re.M)

folders = sorted(d for d in os.listdir("runtime")
                 if glob.glob("runtime/%s/*.[ch]" % d))
n = 1
loose = sorted(glob.glob("runtime/*.[ch]"))
if loose:  # the build (runtime/*/*.c) would leave them out unseen
    print("not ok 1 - every C file of runtime/ is in a folder")
    for path in loose:
        print("# %s: move it into the folder of its floor" % path)
else:
    print("ok 1 - every C file of runtime/ is in a folder")
for folder in folders:
    n += 1
    problems = []
    if folder not in floors:
        problems.append("runtime/%s/ is not in the table of runtime/README.md" % folder)
    edges = {}  # room -> rooms of this folder it includes
    for path in sorted(glob.glob("runtime/%s/*.[ch]" % folder)):
        room = os.path.splitext(os.path.basename(path))[0]
        text = open(path, encoding="utf-8").read()
        for lineno, quote, target in ((text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2))
                                      for m in include.finditer(text)):
            if quote == "<":
                if target.split("/")[0] in floors:
                    problems.append("%s:%d: includes <%s>: a header of runtime/ is included with quotes"
                                    % (path, lineno, target))
                continue  # a library's header
            if ".." in target.split("/") or target.startswith("./"):
                problems.append("%s:%d: includes %s: a header of runtime/ is named from runtime/ (\"store/store.h\")"
                                % (path, lineno, target))
                continue
            if "/" not in target:
                if os.path.exists("runtime/%s/%s" % (folder, target)):
                    edges.setdefault(room, set()).add(os.path.splitext(target)[0])
                continue
            other = target.split("/")[0]
            if other not in floors:
                continue  # not a folder of runtime/ (build/, a library)
            if folder in floors and floors[other] >= floors[folder] and other != folder:
                problems.append("%s:%d: includes %s: %s/ is on floor %d, %s/ on %d"
                                % (path, lineno, target, other, floors[other], folder, floors[folder]))
            if other == folder:
                problems.append("%s:%d: includes %s of its own folder by path; by name: \"%s\""
                                % (path, lineno, target, os.path.basename(target)))
    # circles among the folder's files: a depth-first walk finds a back edge
    state, stack = {}, []
    def walk(room):
        state[room] = 1
        stack.append(room)
        for nxt in sorted(edges.get(room, ())):
            if nxt == room:
                continue
            if state.get(nxt) == 1:
                circle = stack[stack.index(nxt):] + [nxt]
                problems.append("a circle: " + " -> ".join(circle))
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[room] = 2
    for room in sorted(edges):
        if room not in state:
            walk(room)
    if problems:
        print("not ok %d - runtime/%s/ keeps the house rules" % (n, folder))
        for p in problems:
            print("# " + p)
    else:
        print("ok %d - runtime/%s/ includes only itself and lower floors, in no circle" % (n, folder))
print("1..%d" % n)
PY
