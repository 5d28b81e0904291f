#!/usr/bin/env python
"""Check what a person sees, in headless Chromium driven by Playwright.

1. Docs: every notebook under nbs/ is rendered with nbconvert (as tools/check_docs.py does), under the file
   name Quarto gives it (`09_train.ipynb` -> `train.html`), and served on 127.0.0.1. Each page must load
   with no JavaScript error in the console, every image loaded (naturalWidth > 0), every table displayed,
   and every relative link pointing at a page that exists. Every page nbs/sidebar.yml lists must exist.
2. Widgets: JupyterLab runs on 127.0.0.1 with a small demo notebook (written to a temp dir) that builds a
   `Launcher`, its `LiveView` and a `RunBrowser` from zer0llm.widgets. The page runs it, clicks Start on a
   `tiny` run, and checks that the live view's plot and step label change while the run trains, that the
   run finishes, and that the run browser lists it after Refresh. No "Error displaying widget" and no
   traceback may show in any output area.
3. Progress bar: `zer0llm.train.train(...)` in that notebook shows fastprogress's notebook bar (an HTML
   <progress> that ends full), not a stream of text lines.

The browser only reaches 127.0.0.1: any other request (the CDN scripts of nbconvert's template) is blocked
and listed. Screenshots go to --out (default `_browser_check/`, git-ignored). Exit status 0 when every check
passes; the last line printed is a one-line summary.
Usage: python tools/browser_check.py [--out DIR] [--chromium PATH] [--only docs|lab] [--timeout S] [-q]
"""
from __future__ import annotations
import argparse, contextlib, functools, http.server, os, re, secrets, shutil, signal, socket, subprocess, sys
import tempfile, threading, time, urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {'127.0.0.1', 'localhost'}
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome')   # Debian's; Chrome on GitHub's runners
WIDGET_ERRORS = ('Error displaying widget', 'Traceback (most recent call last)')
TEXT_PROGRESS_RE = re.compile(r'\d+/\d+ \[|\d+%\|')   # a progress line printed as text (fastprogress/tqdm)

# ---------------------------------------------------------------- results


class Report:
    "Collects failures and notes, prints them as they come, and the summary at the end."
    def __init__(self, quiet: bool = False):
        self.failures, self.checks, self.t0, self.quiet = [], 0, time.time(), quiet

    def check(self, name: str, problems: list[str]):
        self.checks += 1
        t = f"[{time.time() - self.t0:3.0f}s]"
        for p in problems: print(f"FAIL {t} {name}: {p}", flush=True)
        if not problems and not self.quiet: print(f"ok   {t} {name}", flush=True)
        self.failures += [f"{name}: {p}" for p in problems]

    def note(self, msg: str): print(f"note {msg}", flush=True)

# ---------------------------------------------------------------- browser plumbing


def find_chromium(path: str|None) -> str:
    "The Chromium executable: `path`, $CHROMIUM, or the first of BROWSERS on PATH."
    for c in (path, os.environ.get('CHROMIUM'), *map(shutil.which, BROWSERS)):
        if c and Path(c).exists(): return c
    sys.exit("browser_check: FAILED: no Chromium found (apt-get install -y chromium, or --chromium PATH)")


def loopback_only(context, blocked: set[str]):
    "Let the browser reach 127.0.0.1 only; every other request is aborted and its URL kept in `blocked`."
    def route(r):
        url = r.request.url
        if urlparse(url).hostname in LOOPBACK: return r.continue_()
        blocked.add(url)
        r.abort()
    context.route('**/*', route)


def console_errors(page, blocked: set[str]) -> list[str]:
    "A live list of the page's JavaScript errors (console errors, uncaught exceptions), blocked loads aside."
    errors = []
    def on_console(msg):
        if msg.type == 'error' and msg.location.get('url') not in blocked: errors.append(msg.text[:300])
    page.on('console', on_console)
    page.on('pageerror', lambda e: errors.append(f"uncaught: {str(e)[:300]}"))
    return errors


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

# ---------------------------------------------------------------- docs


def render_docs(html_dir: Path, report: Report) -> list[Path]:
    "Render every notebook with check_docs' exporter, at the path Quarto gives its page; the pages written."
    sys.path.insert(0, str(ROOT/'tools'))
    import check_docs
    from nbconvert import HTMLExporter
    from nbdev.config import nbpath2html
    nbs, exporter, pages = ROOT/'nbs', HTMLExporter(), []
    for nb in check_docs.notebooks(nbs):
        rel = nb.relative_to(nbs)
        problems, _, _ = check_docs.check_notebook(nb, exporter, html_dir/rel.parent)
        page = html_dir/nbpath2html(rel)
        (html_dir/rel.with_suffix('.html')).replace(page)
        if problems: report.check(f"render {rel}", problems)
        pages.append(page)
    return pages


def serve(directory: Path) -> http.server.ThreadingHTTPServer:
    "A quiet static file server for `directory` on 127.0.0.1, in a daemon thread."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


PAGE_FACTS = """() => ({
  images: [...document.images].map(i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0})),
  tables: [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().height > 0
                                                          && getComputedStyle(t).display !== 'none'),
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
})"""


def page_problems(facts: dict, page: Path, html_dir: Path) -> list[str]:
    "What is wrong with a loaded page, from its PAGE_FACTS: broken images, hidden tables, dead local links."
    problems = [f"image does not load: {i['src']}..." for i in facts['images'] if not i['ok']]
    hidden = facts['tables'].count(False)
    if hidden: problems.append(f"{hidden} of {len(facts['tables'])} table(s) not displayed")
    for href in facts['links']:
        target = urlparse(href)
        if target.scheme or target.netloc or not target.path: continue     # other sites, in-page anchors
        if not (page.parent/target.path).resolve().is_file():
            problems.append(f"link to {href}, which is not a page of the site")
    return problems


def check_docs_pages(browser, report: Report, html_dir: Path, shots: Path):
    "Open every rendered page over HTTP; JavaScript errors, images, tables and links (see PAGE_FACTS)."
    pages = render_docs(html_dir, report)
    server, blocked = serve(html_dir), set()
    context = browser.new_context()
    loopback_only(context, blocked)
    page = context.new_page()
    errors = console_errors(page, blocked)
    n_images = n_tables = 0
    try:
        for p in pages:
            rel = p.relative_to(html_dir).as_posix()
            errors.clear()
            page.goto(f"http://127.0.0.1:{server.server_port}/{rel}", wait_until='load')
            facts = page.evaluate(PAGE_FACTS)
            n_images, n_tables = n_images + len(facts['images']), n_tables + len(facts['tables'])
            report.check(f"docs {rel}", page_problems(facts, p, html_dir) + [f"console: {e}" for e in errors])
        page.screenshot(path=str(shots/'docs_last_page.png'), full_page=False)
    finally:
        context.close()
        server.shutdown()
    report.note(f"docs: {len(pages)} pages, {n_images} images, {n_tables} tables; blocked (not loopback): "
                f"{', '.join(sorted({urlparse(u).hostname for u in blocked})) or 'nothing'}")
    check_sidebar(report, html_dir)


def check_sidebar(report: Report, html_dir: Path):
    "Every page nbs/sidebar.yml lists exists as a rendered page."
    import check_docs
    from nbdev.config import nbpath2html
    listed = check_docs.sidebar_entries(ROOT/'nbs'/'sidebar.yml')
    missing = [e for e in listed if not (html_dir/nbpath2html(e)).is_file()]
    problems = [f"{e}: no rendered page {nbpath2html(e)}" for e in missing]
    report.check(f"sidebar ({len(listed)} entries)", problems)

# ---------------------------------------------------------------- the demo notebook in JupyterLab


LAUNCH_STEPS = 30     # the run started with the Launcher's Start button
DEMO_CELLS = [
    '''import time, torch
from zer0llm import train as T
from zer0llm.core import Callback
from zer0llm.widgets import Launcher, LiveView, RunBrowser
torch.set_num_threads(1)

class Pace(Callback):
    "A short sleep after each step, so a tiny run lasts long enough to be watched."
    def after_step(self, learn): time.sleep(0.05)

small = dict(model_size='tiny', vocab_size=512, max_samples=30, block_size=32, batch_size=8,
             eval_every=10, eval_batches=2, lr=1e-2)''',
    "result = T.train(T.TrainConfig(**small, max_steps=20, progress=True, out='runs/progress'))",
    f'''launcher = Launcher(T.TrainConfig(**small, max_steps={LAUNCH_STEPS}, progress=False, out='runs/tiny'),
                    LiveView(every_s=0.5), cbs=[Pace()])
launcher''',
    "RunBrowser('runs')",
]
PROGRESS_CELL, LAUNCHER_CELL, BROWSER_CELL = 1, 2, 3


def write_demo(path: Path):
    "The demo notebook: setup, a train() call with a progress bar, a Launcher, a RunBrowser."
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in DEMO_CELLS])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, path)


def start_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    "JupyterLab on 127.0.0.1:`port` serving `root`, with its own config and nothing fetched from outside."
    settings = root/'.settings'/'@jupyterlab'/'apputils-extension'
    settings.mkdir(parents=True)
    (settings/'notification.jupyterlab-settings').write_text('{"fetchNews": "false"}')   # no news prompt
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(root/'.jupyter'),
           'JUPYTER_RUNTIME_DIR': str(root/'.runtime'),
           'ZER0LLM_HOME': str(root/'home'), 'HF_HUB_OFFLINE': '1', 'WANDB_MODE': 'disabled'}
    args = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
            '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
            '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
            '--LabApp.extension_manager=readonly', '--LabApp.expose_app_in_browser=True',
            f'--LabApp.workspaces_dir={root/".workspaces"}', f'--LabApp.user_settings_dir={root/".settings"}',
            *(['--allow-root'] if os.geteuid() == 0 else [])]
    with open(root/'jupyterlab.log', 'w') as log:
        proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    proc.stdout_path = root/'jupyterlab.log'
    return proc


def wait_for_lab(proc: subprocess.Popen, port: int, token: str, timeout: float):
    "Return once JupyterLab answers on its port; raise with its log's tail if it dies or takes too long."
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return
        except OSError: time.sleep(0.5)
    tail = Path(proc.stdout_path).read_text().splitlines()[-8:]
    raise RuntimeError(f"JupyterLab did not start on 127.0.0.1:{port} within {timeout:.0f}s (exit code "
                       f"{proc.poll()}); the end of its log:\n  " + '\n  '.join(tail))


def stop_lab(proc: subprocess.Popen):
    "End JupyterLab and its kernels (its process group): SIGTERM, then SIGKILL after 10 s."
    if proc.poll() is not None: return
    os.killpg(proc.pid, signal.SIGTERM)
    try: proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def running_lab(shots: Path):
    "JupyterLab on a free loopback port with the demo notebook in a temp dir; yields (base URL, token)."
    root = Path(tempfile.mkdtemp(prefix='zer0llm-browser-'))
    write_demo(root/'demo.ipynb')
    port, token = free_port(), secrets.token_hex(16)
    proc = start_lab(root, port, token)
    try: yield proc, f"http://127.0.0.1:{port}", token
    finally:
        stop_lab(proc)
        shutil.copy(root/'jupyterlab.log', shots/'jupyterlab.log')
        shutil.rmtree(root, ignore_errors=True)


KERNEL_IDLE = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle'; }"""
ALL_RAN = """n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return p.length === n && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }"""
OUTPUT_TEXTS = """() => [...document.querySelectorAll('.jp-CodeCell')]
  .map(c => c.querySelector('.jp-OutputArea')?.innerText || '')"""


def output(page, cell: int):
    "The output area of code cell number `cell` (from 0) of the open notebook."
    return page.locator('.jp-Notebook .jp-CodeCell').nth(cell).locator('.jp-OutputArea')


def widget_errors(page) -> list[str]:
    "Widget errors and tracebacks shown in any output area of the open notebook."
    texts = page.evaluate(OUTPUT_TEXTS)
    return [f"cell {i}: {err!r} in its output: {text.strip()[-400:]}"
            for i, text in enumerate(texts) for err in WIDGET_ERRORS if err in text]


def open_and_run(page, base: str, token: str, shots: Path, timeout: float):
    "Open the demo notebook, wait for its kernel, run all cells and wait until every cell has run."
    page.goto(f"{base}/lab/tree/demo.ipynb?token={token}&reset", wait_until='load')
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    try: page.wait_for_function(ALL_RAN, arg=len(DEMO_CELLS), timeout=timeout*1000)
    finally: page.screenshot(path=str(shots/'lab_1_run_all.png'), full_page=True)


PROGRESS_FACTS = """el => ({bars: [...el.querySelectorAll('progress')].map(b => [b.value, b.max]),
                           text: el.innerText})"""


def progress_problems(page) -> list[str]:
    "What is wrong with the progress display of `train(...)` in the notebook (a full <progress> expected)."
    facts = output(page, PROGRESS_CELL).evaluate(PROGRESS_FACTS)
    lines = [ln for ln in facts['text'].splitlines() if TEXT_PROGRESS_RE.search(ln)]
    problems = []
    if lines: problems.append(f"train() printed {len(lines)} progress line(s) as text: {lines[-1][:80]!r}")
    if not facts['bars']: problems.append("no notebook progress bar (<progress> element) in train()'s output")
    elif facts['bars'][-1][0] != facts['bars'][-1][1]:
        problems.append(f"the bar ends at {facts['bars'][-1]} (value, max), not full")
    return problems


LIVE_FACTS = """el => { const img = el.querySelector('img');
  const shown = !!img && img.offsetParent !== null;
  return {src: img ? img.src : '', drawn: !!img && img.naturalWidth > 0, text: el.innerText,
          broken: shown && img.naturalWidth === 0}; }"""


def watch_run(page, shots: Path, timeout: float) -> dict:
    "Click Start, then sample the launcher's output every 0.2 s until the run is done (or `timeout`)."
    out = output(page, LAUNCHER_CELL)
    before = out.evaluate(LIVE_FACTS)
    out.locator('button', has_text='Start').click()
    steps, plots, deadline, shot = set(), set(), time.time() + timeout, False
    while time.time() < deadline:
        facts = out.evaluate(LIVE_FACTS)
        if re.search(r'\bdone: |\bfailed\b', facts['text']): break
        step = re.search(r'step (\d+)/(\d+)', facts['text'])
        if step: steps.add(int(step[1]))
        if facts['drawn']: plots.add(facts['src'])
        if not shot and len(steps) >= 5:
            out.locator('img').first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots/'lab_2_training.png'), full_page=True)
            shot = True
        time.sleep(0.2)
    page.screenshot(path=str(shots/'lab_3_done.png'), full_page=True)
    return {'steps': steps, 'plots': plots, 'broken_before': before['broken'], **out.evaluate(LIVE_FACTS)}


def live_problems(run: dict, max_steps: int = LAUNCH_STEPS) -> list[str]:
    "What is wrong with what the live view showed while the run trained (see `watch_run`)."
    problems = []
    if len(run['steps']) < 3: problems.append(f"the step label showed {len(run['steps'])} step(s) in the run")
    if len(run['plots']) < 2: problems.append(f"the plot showed {len(run['plots'])} image(s) during the run")
    if not re.search(r'\bdone: ', run['text']):
        problems.append(f"the run did not finish: {run['text'].strip()[-300:]!r}")
    if f"step {max_steps}/{max_steps}" not in run['text']: problems.append("the step label stops early")
    if not run['drawn']: problems.append("the final plot did not load")
    return problems


BROWSER_FACTS = """el => ({runs: [...el.querySelectorAll('select option')].map(o => o.textContent.trim()),
  names: [...el.querySelectorAll('table tbody tr')].filter(r => r.getBoundingClientRect().height > 0)
           .map(r => r.cells[0].textContent.trim()),
  drawn: [...el.querySelectorAll('img')].some(i => i.naturalWidth > 0)})"""


def browser_problems(page, shots: Path, run_name: str = 'tiny', timeout: float = 30) -> list[str]:
    "Click Refresh in the run browser; the finished run must be listed, drawn and in the table."
    out = output(page, BROWSER_CELL)
    out.locator('button', has_text='Refresh').click()
    deadline, listed = time.time() + timeout, False
    while not listed and time.time() < deadline:
        time.sleep(0.2)
        facts = out.evaluate(BROWSER_FACTS)
        listed = run_name in facts['runs'] and run_name in facts['names'] and facts['drawn']
    out.scroll_into_view_if_needed()
    page.screenshot(path=str(shots/'lab_4_run_browser.png'), full_page=True)
    problems = [] if run_name in facts['runs'] else [f"run {run_name!r} not listed (runs: {facts['runs']})"]
    if run_name not in facts['names']: problems.append(f"the results table lacks the run: {facts['names']}")
    if not facts['drawn']: problems.append("no loss plot drawn")
    return problems


def check_lab(browser, report: Report, shots: Path, lab, timeout: float):
    "The demo notebook in JupyterLab: run it, check the progress bar, train from the Launcher, see the run."
    proc, base, token = lab
    wait_for_lab(proc, int(base.rsplit(':', 1)[1]), token, 90)
    blocked = set()
    context = browser.new_context(viewport={'width': 1280, 'height': 1000})
    loopback_only(context, blocked)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = console_errors(page, blocked)
    try:
        open_and_run(page, base, token, shots, timeout)
        report.check("lab: the demo notebook runs with no widget error", widget_errors(page))
        report.check("lab: train() shows a notebook progress bar", progress_problems(page))
        run = watch_run(page, shots, timeout)
        report.check("lab: Start trains a tiny run; the live view updates", live_problems(run))
        report.check("lab: before Start the live view shows no broken-image icon",
                     ["an image with no picture is displayed"] if run['broken_before'] else [])
        report.check("lab: the run browser lists the finished run", browser_problems(page, shots))
        report.check("lab: no widget error after the run", widget_errors(page))
    finally: context.close()
    for e in errors: report.note(f"lab console: {e}")
    if blocked: report.note(f"lab: blocked (not loopback): {', '.join(sorted(blocked))}")


def time_out(signum, frame):
    "SIGALRM handler: end the check (the `finally` blocks still stop JupyterLab)."
    raise TimeoutError("the browser check ran past its --timeout")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=ROOT/'_browser_check', help='screenshots and logs')
    p.add_argument('--chromium', help='the Chromium executable (default: chromium on PATH)')
    p.add_argument('--only', choices=('docs', 'lab'), help='run one half of the checks')
    p.add_argument('--timeout', type=int, default=300, help='seconds for the whole check')
    p.add_argument('-q', '--quiet', action='store_true', help='print only problems, notes and the summary')
    a = p.parse_args(argv)
    try: from playwright.sync_api import sync_playwright
    except ImportError: sys.exit("browser_check: FAILED: no Playwright (pip install playwright)")
    chromium, report, t0 = find_chromium(a.chromium), Report(a.quiet), time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGALRM, time_out)
    signal.alarm(a.timeout)
    try:
        lab_or_none = running_lab(a.out) if a.only != 'docs' else contextlib.nullcontext()
        with lab_or_none as lab, sync_playwright() as pw, tempfile.TemporaryDirectory() as d:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            if a.only != 'lab': check_docs_pages(browser, report, Path(d), a.out)
            if a.only != 'docs': check_lab(browser, report, a.out, lab, a.timeout)
            browser.close()
    except Exception as e: report.check("browser check", [f"{type(e).__name__}: {str(e).strip()[:1500]}"])
    finally: signal.alarm(0)
    bad = len(report.failures)
    print(f"browser_check: {'FAILED' if bad else 'ok'}: {report.checks - bad}/{report.checks} checks passed "
          f"in {time.time() - t0:.0f}s; screenshots in {a.out}")
    return 1 if bad else 0


if __name__ == '__main__': sys.exit(main())
