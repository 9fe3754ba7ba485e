#!/usr/bin/env python3
"""include_cycles.py: the circles of #include "..." between the modules of one directory.

A module is a .c file and the .h of the same stem (conn.c + conn.h = conn); a private header
X_priv.h, shared by the files of module X, belongs to X. An edge A -> B means
a file of module A includes B's header. The script prints every strongly connected component of
more than one module (modules that reach each other through includes) and exits 1 when one is
not inside the allowed set.

    tests/include_cycles.py [DIR] [--allow conn,reply]

Defaults: DIR gateway, allowed {conn, reply} (the connection and the replies it sends are one
layer; nothing else in the gateway may include its way back to the connection).
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module(filename):
    """The module a file belongs to: its stem, without a _priv suffix."""
    stem = os.path.splitext(filename)[0]
    return stem[:-len('_priv')] if stem.endswith('_priv') else stem


def graph(directory):
    """The module graph of DIRECTORY: {module: set(modules it includes)}."""
    files = [f for f in os.listdir(directory) if f.endswith(('.c', '.h'))]
    modules = {module(f) for f in files}
    edges = {m: set() for m in modules}
    for f in files:
        src = module(f)
        with open(os.path.join(directory, f), encoding='utf-8', errors='replace') as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            dst = module(inc)
            if '/' not in inc and dst in modules and dst != src:
                edges[src].add(dst)
    return edges


def components(edges):
    """Strongly connected components (Tarjan), each a sorted list, largest first."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out, key=lambda c: (-len(c), c))


def main(argv):
    directory, allow = 'gateway', {'conn', 'reply'}
    args = list(argv)
    if '--allow' in args:
        i = args.index('--allow')
        allow = set(filter(None, args[i + 1].split(','))) if i + 1 < len(args) else set()
        del args[i:i + 2]
    if args:
        directory = args[0]
    bad = 0
    for comp in components(graph(directory)):
        if len(comp) < 2:
            continue
        ok = set(comp) <= allow
        bad += not ok
        print('%s: %s' % ('allowed' if ok else 'CIRCLE', ' <-> '.join(comp)))
    if bad:
        print('include_cycles: %d circle(s) outside {%s} in %s/' %
              (bad, ', '.join(sorted(allow)), directory))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
