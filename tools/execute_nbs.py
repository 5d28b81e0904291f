#!/usr/bin/env python
"""Execute notebooks in place so their outputs can be committed (tutorials), then `nbdev-clean` them.

Cells flagged with an nbdev test flag (`#| gpu`, `#| slow`, ...) run only when the flag is given with
`--flags` (default: `slow`); `#| eval: false` cells never run. Skipped cells keep no output.
Usage: python tools/execute_nbs.py nbs/tutorials/*.ipynb [--flags "slow gpu"] [--timeout 600]
"""
from __future__ import annotations
import argparse, re, subprocess, sys
from pathlib import Path

FLAG_RE = re.compile(r'^#\|\s*([\w-]+)\s*$', re.M)
NO_EVAL_RE = re.compile(r'^#\|\s*eval\s*:\s*false\s*$', re.M)


def skip(source: str, flags: set[str], known: set[str]) -> bool:
    "Whether a code cell with `source` must not run: `eval: false`, or a test flag not in `flags`."
    return bool(NO_EVAL_RE.search(source)) or any(f in known and f not in flags for f in FLAG_RE.findall(source))


def execute(path: Path, flags: set[str], known: set[str], timeout: int) -> int:
    "Run the notebook at `path` in its directory and write it back with outputs; returns the cells skipped."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    nbformat.validator.normalize(nb)
    held = [c for c in nb.cells if c.cell_type == 'code' and skip(c.source, flags, known)]
    for c in held: c.cell_type = 'raw'          # nbclient runs code cells only
    NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    for c in held: c.cell_type, c.outputs, c.execution_count = 'code', [], None
    nb.metadata.pop('widgets', None)            # widget state of progress bars: large and useless in the docs
    nbformat.write(nb, path)
    return len(held)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='+', type=Path)
    p.add_argument('--flags', default='slow', help='test flags whose cells run (space separated)')
    p.add_argument('--timeout', type=int, default=600, help='seconds per cell')
    a = p.parse_args(argv)
    try: from nbdev.config import get_config; known = set(str(get_config().tst_flags).split())
    except Exception: known = {'slow', 'gpu'}
    for path in a.notebooks:
        n = execute(path, set(a.flags.split()), known, a.timeout)
        print(f"executed {path}" + (f" ({n} cell(s) skipped)" if n else ''), flush=True)
    return max(subprocess.call(['nbdev-clean', '--fname', str(path)]) for path in a.notebooks)


if __name__ == '__main__': sys.exit(main())
