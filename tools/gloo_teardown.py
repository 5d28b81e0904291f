"""Run the 2-rank gloo test of nbs/08b_distributed.ipynb many times under CPU load; count the failures.

    python tools/gloo_teardown.py --runs 50 --hogs 1 --label after --out benchmarks/gloo_teardown.json

The worker script is the notebook's own `WORKER` cell; each run is one `launch(WORKER, 2)`. A failing run's
rank and the last lines of its stderr are recorded (a teardown abort shows there). `--hogs` starts that many
busy-looping processes for the whole campaign, so the ranks are descheduled at random moments.
"""
from __future__ import annotations
import argparse, json, multiprocessing as mp, sys, tempfile, time
from pathlib import Path


def worker_script(nb: Path) -> str:
    "The `WORKER = '''...'''` string of the notebook's test cell."
    cells = json.loads(nb.read_text())['cells']
    src = next(''.join(c['source']) for c in cells
               if c['cell_type'] == 'code' and ''.join(c['source']).startswith('WORKER = """'))
    ns = {}
    exec(src, ns)
    return ns['WORKER']


LIGHT = """
import torch, torch.distributed as dist
from zer0llm.config import ModelConfig
from zer0llm.model import Transformer
from zer0llm.distributed import init_distributed, fsdp_wrap, cleanup_distributed
torch.set_num_threads(1)
env = init_distributed()
torch.manual_seed(0)
model = fsdp_wrap(Transformer(ModelConfig.from_name('tiny')), env)
model(torch.randint(0, 512, (2, 16))).float().mean().backward()
t = torch.ones(3)
dist.all_reduce(t)
print('ok', flush=True)
cleanup_distributed()
"""


def hog():
    while True: pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', type=int, default=50)
    p.add_argument('--hogs', type=int, default=1, help='busy-looping processes running alongside')
    p.add_argument('--label', default='run')
    p.add_argument('--nb', type=Path, default=Path(__file__).parents[1]/'nbs'/'08b_distributed.ipynb')
    p.add_argument('--out', type=Path, default=None, help='JSON file; results are stored under --label')
    p.add_argument('--worker', choices=('notebook', 'light'), default='notebook',
                   help="the notebook's WORKER, or a light one: FSDP forward/backward, an all-reduce, teardown")
    p.add_argument('--roots', default=None,
                   help='LABEL=DIR,...: alternate runs between zer0llm copies (DIR holds zer0llm/), '
                        'so each sees the same load; results stored per label')
    args = p.parse_args(argv)
    roots = dict(kv.split('=', 1) for kv in args.roots.split(',')) if args.roots else {args.label: None}
    from zer0llm.distributed import launch      # the ranks import zer0llm from the PYTHONPATH it passes
    script = worker_script(args.nb) if args.worker == 'notebook' else LIGHT
    hogs = [mp.Process(target=hog, daemon=True) for _ in range(args.hogs)]
    for h in hogs: h.start()
    res = {label: dict(runs=0, failures=0, hogs=args.hogs, worker=args.worker, root=root, seconds=0.,
                       errors=[]) for label, root in roots.items()}
    try:
        for i in range(args.runs * len(roots)):
            label, root = list(roots.items())[i % len(roots)]
            r, t0 = res[label], time.time()
            if root: sys.path.insert(0, root)
            with tempfile.TemporaryDirectory() as d:
                try: launch(script, 2, args=[d], timeout=900)
                except Exception as e:
                    r['failures'] += 1
                    r['errors'].append(dict(run=r['runs'], error=str(e)[-1500:]))
                    print(f'{label} run {r["runs"]}: FAILED {str(e)[-300:]}', flush=True)
            if root: sys.path.remove(root)
            r['runs'] += 1
            r['seconds'] = round(r['seconds'] + time.time() - t0, 1)
            print(f'{label}: {r["failures"]}/{r["runs"]} failed', flush=True)
            if args.out: save(args.out, res)
    finally:
        for h in hogs: h.terminate()
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != 'errors'} for k, v in res.items()}))


def save(path: Path, res: dict):
    "Merge `res` (by label) into the JSON file at `path`."
    all_res = json.loads(path.read_text()) if path.exists() else {}
    all_res.update(res)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(all_res, indent=2))


if __name__ == '__main__':
    main()
