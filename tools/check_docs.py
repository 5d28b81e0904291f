#!/usr/bin/env python
"""Check the docs without Quarto.

1. Every notebook under nbs/ (recursively; names starting with `_` or `.` skipped) renders to HTML with
   nbconvert, from its committed outputs (nothing is executed).
2. Every PNG output of a notebook appears in its HTML (as the same base64 data), and every table in its
   outputs (HTML / DataFrame outputs with a `<table>`) is still a `<table>` there.
3. nbs/sidebar.yml lists every notebook, and every entry it lists exists.
4. Every function and class in `zer0llm/*.py` `__all__` has a docstring (reported; a failure with --strict).

Exit status 0 when all of 1-3 hold (and 4 with --strict); a one-line summary is printed last.
Usage: python tools/check_docs.py [--nbs nbs] [--lib zer0llm] [--strict] [--html-dir DIR] [-q]
"""
from __future__ import annotations
import argparse, importlib, inspect, re, sys, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMG_RE = re.compile(r'data:image/png;base64,\s*([A-Za-z0-9+/=\s]{40,})')


def notebooks(nbs: Path) -> list[Path]:
    "Notebooks under `nbs`, skipping any path part that starts with `_` or `.`."
    return sorted(p for p in nbs.rglob('*.ipynb') if not any(s.startswith(('_', '.')) for s in p.relative_to(nbs).parts))


def expected_outputs(nb) -> tuple[list[str], int]:
    "The base64 PNGs of `nb`'s outputs (whitespace removed) and the number of tables among its HTML outputs."
    pngs, tables = [], 0
    for cell in nb.cells:
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            if 'image/png' in data: pngs.append(re.sub(r'\s', '', data['image/png']))
            html = data.get('text/html', '')
            tables += len(re.findall(r'<table\b', ''.join(html) if isinstance(html, list) else html))
    return pngs, tables


def check_notebook(path: Path, exporter, html_dir: Path|None = None) -> tuple[list[str], int, int]:
    "Problems found rendering `path` (none when it renders with all its images and tables), and its PNG and table counts."
    import nbformat
    try:
        nb = nbformat.read(path, as_version=4)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            body, _ = exporter.from_notebook_node(nb)
    except Exception as e: return [f"does not render: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"], 0, 0
    if html_dir is not None:
        out = html_dir/path.with_suffix('.html').name; out.parent.mkdir(parents=True, exist_ok=True); out.write_text(body)
    problems, (pngs, tables) = [], expected_outputs(nb)
    rendered = {re.sub(r'\s', '', m) for m in IMG_RE.findall(body)}
    lost = sum(p not in rendered for p in pngs)
    if lost: problems.append(f"{lost} of {len(pngs)} PNG output(s) missing from the HTML")
    got = len(re.findall(r'<table\b', body))
    if got < tables: problems.append(f"{tables} table(s) in the outputs but {got} <table> in the HTML")
    return problems, len(pngs), tables


def sidebar_entries(path: Path) -> list[str]:
    "Every file listed in a Quarto sidebar.yml (hrefs and plain entries, any depth)."
    import yaml
    found = []
    def walk(x):
        if isinstance(x, str): found.append(x)
        elif isinstance(x, list): [walk(i) for i in x]
        elif isinstance(x, dict):
            if 'href' in x: found.append(x['href'])
            walk(x.get('contents', []))
    walk(yaml.safe_load(path.read_text())['website']['sidebar']['contents'])
    return found


def check_sidebar(nbs: Path, nb_paths: list[Path]) -> list[str]:
    "Notebooks the sidebar leaves out, and sidebar entries with no file."
    path = nbs/'sidebar.yml'
    if not path.exists(): return [f"{path}: no such file"]
    listed = sidebar_entries(path)
    have = {str(p.relative_to(nbs)) for p in nb_paths}
    problems = [f"{path.name} does not list {n} (add '- {n}')" for n in sorted(have - set(listed))]
    problems += [f"{path.name} lists {n}, which does not exist" for n in listed if not (nbs/n).exists()]
    return problems


def undocumented(lib: Path) -> tuple[list[str], int]:
    "Names of exported functions and classes without a docstring, and how many were checked."
    sys.path.insert(0, str(lib.parent))
    missing, checked = [], 0
    for py in sorted(lib.glob('*.py')):
        if py.stem.startswith('_'): continue
        mod = importlib.import_module(f'{lib.name}.{py.stem}')
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)): continue   # constants cannot carry docstrings
            checked += 1
            if not (obj.__doc__ or '').strip(): missing.append(f'{py.stem}.{name}')
    return missing, checked


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--nbs', type=Path, default=ROOT/'nbs'); p.add_argument('--lib', type=Path, default=ROOT/'zer0llm')
    p.add_argument('--strict', action='store_true', help='fail on exported functions/classes without a docstring')
    p.add_argument('--html-dir', type=Path, help='also write the rendered HTML here')
    p.add_argument('-q', '--quiet', action='store_true', help='print only problems and the summary')
    a = p.parse_args(argv)
    from nbconvert import HTMLExporter
    exporter, failed, n_imgs, n_tables = HTMLExporter(), 0, 0, 0
    nb_paths = notebooks(a.nbs)
    for path in nb_paths:
        problems, imgs, tables = check_notebook(path, exporter, a.html_dir)
        n_imgs, n_tables, failed = n_imgs + imgs, n_tables + tables, failed + bool(problems)
        for pr in problems: print(f"FAIL {path.relative_to(a.nbs)}: {pr}")
        if not problems and not a.quiet: print(f"ok   {path.relative_to(a.nbs)}")
    side = check_sidebar(a.nbs, nb_paths)
    for pr in side: print(f"FAIL sidebar: {pr}")
    missing, checked = undocumented(a.lib)
    for m in missing: print(f"{'FAIL' if a.strict else 'note'} no docstring: {m}")
    bad = failed or side or (a.strict and missing)
    print(f"check_docs: {'FAILED' if bad else 'ok'}: {len(nb_paths) - failed}/{len(nb_paths)} notebooks render "
          f"({n_imgs} images, {n_tables} tables checked); sidebar {'ok' if not side else f'{len(side)} problem(s)'}; "
          f"{len(missing)} of {checked} exported functions/classes lack a docstring")
    return 1 if bad else 0


if __name__ == '__main__': sys.exit(main())
