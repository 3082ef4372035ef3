#!/usr/bin/env python3
"""Keeps framework/'s folder order (../shared/DESIGN.md, README "Layout"): every `#include "dir/..."`
between folders must be allowed by the table below, and the table itself must be acyclic. Prints each
offending include as file:line and exits 1; --graph prints the folder graph that the includes make."""
import argparse
import re
import sys
from pathlib import Path

# folder -> the folders it may include. Lower layers first: core <- text, comm <- model, loss,
# data <- shard, ckpt <- eval, train <- plan, sweep, report <- cli. plan reads jobs and training
# data (train/) but the trainer knows nothing of plan/; sweep and report run or read runs.
ALLOWED = {
    'core': set(),
    'text': {'core'},
    'comm': {'core'},
    'model': {'core', 'text'},
    'loss': {'core', 'comm'},
    'data': {'core', 'text'},
    'shard': {'core', 'comm', 'model'},
    'ckpt': {'core', 'comm', 'model', 'shard'},
    'eval': {'core', 'text', 'comm', 'model', 'data'},
    'train': {'core', 'text', 'comm', 'model', 'loss', 'data', 'shard', 'ckpt', 'eval'},
    'plan': {'core', 'text', 'comm', 'model', 'loss', 'data', 'shard', 'train'},
    'sweep': {'core', 'train'},
    'report': {'core', 'train', 'sweep'},
    'cli': {'core', 'text', 'comm', 'model', 'loss', 'data', 'shard', 'ckpt', 'eval', 'train', 'plan', 'sweep',
            'report'},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')


def cycle_in(graph):
    """A cycle of the graph as a list of nodes, or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def self_test():
    """The check must fail on a tree that breaks the order: train/ including plan/ (a cycle with
    plan -> train) and a folder the table does not know."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for folder in ALLOWED:
            (root / folder).mkdir()
        (root / 'plan' / 'p.h').write_text('#include "train/t.h"\n')
        (root / 'train' / 't.h').write_text('#include "core/c.h"\n#include "plan/p.h"\n')
        (root / 'extra').mkdir()
        failures, _ = check(root)
    expected = ['t.h:2: train/ may not include plan/', 'folder cycle', 'missing from the table']
    missing = [e for e in expected if not any(e in f for f in failures)]
    print(f'self-test: {len(failures)} problem(s) found in a broken tree; expected ones missing: {missing or "none"}')
    return 1 if missing else 0


def check(framework):
    failures, graph = [], {}
    folders = sorted(d.name for d in framework.iterdir() if d.is_dir())
    unknown = [f for f in folders if f not in ALLOWED]
    if unknown:
        failures.append(f'folders missing from the table of {__file__}: {unknown}')
    loop = cycle_in(ALLOWED)
    if loop:
        failures.append(f'the table itself has a cycle: {" -> ".join(loop)}')
    for path in sorted(framework.rglob('*')):
        if path.suffix not in ('.h', '.cpp') or path.parent == framework:
            continue
        folder = path.relative_to(framework).parts[0]
        for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            match = INCLUDE.match(line)
            if not match or match.group(1) == folder or not (framework / match.group(1)).is_dir():
                continue
            target = match.group(1)
            graph.setdefault(folder, set()).add(target)
            if target not in ALLOWED.get(folder, set()):
                failures.append(f'{path}:{number}: {folder}/ may not include {target}/ ("{line.strip()}")')
    loop = cycle_in(graph)
    if loop:
        failures.append(f'folder cycle: {" -> ".join(loop)}')
    return failures, graph


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--framework', type=Path)
    parser.add_argument('--graph', action='store_true')
    parser.add_argument('--self-test', action='store_true', help='check that a broken tree fails')
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    failures, graph = check(args.framework)
    folders = sorted(d.name for d in args.framework.iterdir() if d.is_dir())
    if args.graph:
        for folder in sorted(graph):
            print(f'{folder} -> {", ".join(sorted(graph[folder]))}')
    for f in failures:
        print(f'FAIL {f}')
    print(f'{len(folders)} folders, {sum(len(v) for v in graph.values())} folder dependencies: '
          f'{"ok" if not failures else f"{len(failures)} problem(s)"}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
