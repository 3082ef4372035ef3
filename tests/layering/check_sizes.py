#!/usr/bin/env python3
"""Keeps framework/ readable: no file over 450 lines, no function over 80 lines, except the
declarative tables listed in TABLES (at most two, each at most 130 lines). A function is a
definition that starts at column 0 (namespaces are not indented here) with a '(' and ends at the
next '}' at column 0. Prints each offender as file:line and exits 1."""
import argparse
import re
import sys
from pathlib import Path

MAX_FILE, MAX_FUNCTION, MAX_TABLE = 450, 80, 130
# file (relative to framework/) -> the name of its one declarative table
TABLES = {'train/job_keys.cpp': 'key_table'}
START = re.compile(r'^[A-Za-z_][^;#]*\(')


def functions(lines):
    """(name line, first line number, length) of each top-level function body."""
    out, start, head = [], None, ''
    for number, line in enumerate(lines, 1):
        if start is None:
            if START.match(line) and not line.startswith(('namespace', 'using', 'template', 'struct', 'class',
                                                          'enum', 'extern "C" {')):
                head = line
            if head and line.rstrip().endswith('{') and not line.startswith(('namespace', 'struct', 'class')):
                start = number
            elif head and (line.rstrip().endswith(';') or line.rstrip().endswith('}')):
                head = ''
        elif line.startswith('}'):
            out.append((head.strip(), start, number - start + 1))
            start, head = None, ''
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--framework', required=True, type=Path)
    args = parser.parse_args()
    failures, count = [], 0
    for path in sorted(args.framework.rglob('*')):
        if path.suffix not in ('.h', '.cpp'):
            continue
        lines = path.read_text(encoding='utf-8').splitlines()
        if len(lines) > MAX_FILE:
            failures.append(f'{path}: {len(lines)} lines (at most {MAX_FILE})')
        table = TABLES.get(str(path.relative_to(args.framework)))
        for head, start, length in functions(lines):
            count += 1
            limit = MAX_TABLE if table and table in head else MAX_FUNCTION
            if length > limit:
                failures.append(f'{path}:{start}: {length} lines (at most {limit}): {head[:80]}')
    for f in failures:
        print(f'FAIL {f}')
    print(f'{count} functions: {"ok" if not failures else f"{len(failures)} too long"}')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
