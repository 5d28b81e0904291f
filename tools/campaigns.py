"""Reliability campaigns for zer0llm runs: kill -9, checkpoint corruption, bad values.

    python tools/campaigns.py --kills 20 --out benchmarks/campaigns.json

- kill: for FO, ZO, LoRA and FSDP (2 gloo ranks), a `zer0llm train --resume auto` run is SIGKILLed (its whole
  process group) again and again, half of the kills at a random moment after it made progress, half while a
  checkpoint is being written; it is resumed until it finishes, and its final weights are compared bitwise
  with an uninterrupted run; then the finished run is resumed once more and must stay bitwise the same.
- corrupt: every checkpoint of a finished run is damaged in each way (truncate, flip a byte, edit a JSON
  value, delete a file), one at a time: `verify_checkpoint` must name the damaged file; then every
  checkpoint is damaged at once and `zer0llm train --resume auto` must refuse with one message, rc 2.
- badvalue: every numeric `TrainConfig` field (`FIELD_RANGES`) with each out-of-range value, and every
  choice field (`FIELD_CHOICES`) with an unknown value, through `zer0llm train`: rc 2, one message line
  naming the flag, no traceback.

Run it with `nice` and one thread; it writes JSON results and prints a markdown summary.
"""
from __future__ import annotations
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')   # before torch is imported
import argparse, json, random, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

BASE = ['--model-size', 'tiny', '--batch-size', '4', '--save-every', '1', '--keep-checkpoints', '2',
        '--eval-every', '0', '--no-progress', '--max-samples', '200', '--vocab-size', '512',
        '--sample-tokens', '0', '--seed', '0']
KINDS = {
    'FO': ['--mode', 'FO', '--optimizer', 'adamw', '--lr', '3e-3'],
    'ZO': ['--mode', 'ZO', '--optimizer', 'zo-sgd', '--query-budget', '2', '--lr', '1e-4'],
    'LoRA': ['--mode', 'FO', '--optimizer', 'adamw', '--scope', 'lora', '--lr', '3e-3'],
    'FSDP': ['--mode', 'FO', '--optimizer', 'adamw', '--nproc', '2', '--parallel', 'fsdp', '--lr', '3e-3'],
}
STEPS = {'FO': 60, 'ZO': 60, 'LoRA': 60, 'FSDP': 30}


def env() -> dict:
    "One thread per process, unbuffered, no W&B."
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1',
            'WANDB_MODE': 'disabled'}


def train_cmd(kind: str, out: Path, extra=()) -> list[str]:
    return ['zer0llm', 'train', *BASE, *KINDS[kind], '--max-steps', str(STEPS[kind]), '--out', str(out),
            *extra]


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Forked:
    """`zer0llm ARGS` in a forked child of this process, in a session of its own (so a kill of its group
    reaches every rank); `--nproc N` runs N ranks in that session with torchrun's environment. Forking from a
    process that has imported torch and zer0llm saves each attempt the start-up a new interpreter costs.
    stdout goes to `log`, stderr to `log` + '.err'. Popen's `pid`, `poll`, `wait` and `returncode`."""
    def __init__(self, cmd: list[str], log: Path):
        argv = list(cmd[1:])
        nproc = 1
        if '--nproc' in argv:
            i = argv.index('--nproc')
            nproc = int(argv[i + 1])
            del argv[i:i + 2]
        port, self.returncode = free_port(), None
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0: self._child(argv, nproc, port, log)

    @staticmethod
    def _child(argv, nproc, port, log):
        code = 1
        try:
            os.setsid()
            for fd, path in ((1, str(log)), (2, f'{log}.err')):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), fd)
            os.environ.update(env())
            rank, kids = 0, []
            if nproc > 1:
                os.environ.update(WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR='127.0.0.1',
                                  MASTER_PORT=str(port))
                for r in range(1, nproc):
                    if (kid := os.fork()) == 0:
                        rank, kids = r, []
                        break
                    kids.append(kid)
                os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
            from zer0llm.cli import main as cli_main
            try: code = cli_main(argv)
            except SystemExit as e: code = e.code if isinstance(e.code, int) else 2
            for kid in kids: code = code or os.waitstatus_to_exitcode(os.waitpid(kid, 0)[1])
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) and code >= 0 else 1)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid: self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None: self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def start(cmd: list[str], log: Path):
    "A training command started in a session of its own: forked (default) or a fresh interpreter (--spawn)."
    if not SPAWN: return Forked(cmd, log)
    return subprocess.Popen(cmd, stdout=open(log, 'ab'), stderr=open(f'{log}.err', 'ab'), env=env(),
                            start_new_session=True)


def run_to_end(cmd: list[str], log: Path) -> tuple[int, str, str]:
    "Run a training command to its end: (exit status, stdout, stderr)."
    for f in (log, Path(f'{log}.err')): f.unlink(missing_ok=True)
    rc = start(cmd, log).wait()
    return rc, log.read_text(errors='replace'), Path(f'{log}.err').read_text(errors='replace')


SPAWN = False


def weights(run: Path) -> dict:
    "{file/tensor: tensor} of every safetensors file of the run's `checkpoints/last`."
    from safetensors.torch import load_file
    last = run/'checkpoints'/'last'
    return {f'{f.name}/{k}': v for f in sorted(last.glob('*.safetensors')) for k, v in load_file(f).items()}


def same(a: dict, b: dict) -> bool:
    import torch
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def step_dirs(run: Path) -> set:
    root = run/'checkpoints'
    return {p.name for p in root.glob('step_*')} if root.is_dir() else set()


def saving(run: Path) -> bool:
    "A checkpoint is being written: a temporary or a replaced directory exists."
    root = run/'checkpoints'
    try: return any(n.startswith('.') and n.endswith(('.tmp', '.old')) for n in os.listdir(root))
    except OSError: return False


def wait_and_kill(proc, run: Path, how: str, rng: random.Random, bound: float = 300.) -> str:
    "Kill `proc` (SIGKILL to its group) at a random moment after a new checkpoint, or while one is saved."
    before, t0 = step_dirs(run), time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < bound:
        if how == 'save' and saving(run): break
        if how == 'random' and step_dirs(run) - before:
            time.sleep(rng.uniform(0, 1.5))
            break
        time.sleep(0.001 if how == 'save' else 0.02)
    if proc.poll() is not None: return 'finished first'
    hit = 'during save' if saving(run) else 'between saves'
    try: os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError: return 'finished first'     # it ended just now
    proc.wait()
    return hit


def kill_campaign(kind: str, kills: int, root: Path, rng: random.Random) -> dict:
    "Kill runs of `kind` until `kills` kills landed; each resumed run must end bitwise equal the reference."
    ref = root/f'{kind}-ref'
    rc, out, err = run_to_end(train_cmd(kind, ref), root/f'{kind}-ref.log')
    if rc: raise RuntimeError(f'{kind} reference run failed:\n{err[-3000:]}')
    ref_w = weights(ref)
    res = dict(kind=kind, kills=0, during_save=0, between_saves=0, cycles=0, bitwise_equal=0,
               finished_resume_equal=0, bad_returncodes=[], failures=[])
    while res['kills'] < kills:
        run = root/f"{kind}-run{res['cycles']}"
        res['cycles'] += 1
        for attempt in range(1000):
            how = 'save' if res['kills'] % 2 else 'random'
            proc = start(train_cmd(kind, run, ['--resume', 'auto']), run.parent/f'{run.name}.log')
            hit = wait_and_kill(proc, run, how, rng) if res['kills'] < kills else 'finished first'
            if hit == 'finished first':
                proc.wait()
                if proc.returncode:
                    res['failures'].append(f'{run.name}: rc {proc.returncode}')
                break
            res['kills'] += 1
            res['during_save' if hit == 'during save' else 'between_saves'] += 1
            if proc.returncode != -signal.SIGKILL: res['bad_returncodes'].append(proc.returncode)
        if not (run/'summary.json').exists():
            res['failures'].append(f'{run.name}: no summary.json')
            continue
        ok = same(weights(run), ref_w)
        res['bitwise_equal'] += ok
        if not ok: res['failures'].append(f'{run.name}: final weights differ from the uninterrupted run')
        rc, _, err = run_to_end(train_cmd(kind, run, ['--resume', 'auto']), run.parent/f'{run.name}-again.log')
        still = rc == 0 and same(weights(run), ref_w)
        res['finished_resume_equal'] += still
        if not still: res['failures'].append(f'{run.name}: resuming the finished run changed it '
                                             f'(rc {rc}) {err[-500:]}')
    return res


# --- corruption ---------------------------------------------------------------------------------------

def _flip(f: Path):
    b = bytearray(f.read_bytes())
    b[len(b)//2] ^= 0xFF
    f.write_bytes(bytes(b))

def _truncate(f: Path): f.write_bytes(f.read_bytes()[:f.stat().st_size//2])

def _edit_json(f: Path):
    "Change one value, keeping the file valid JSON (and, where it can, its size)."
    d = json.loads(f.read_text())
    def bump(o):
        for k, v in (o.items() if isinstance(o, dict) else enumerate(o)):
            if isinstance(v, bool): continue
            if isinstance(v, int):
                o[k] = v + 1 if v % 10 != 9 else v - 1
                return True
            if isinstance(v, (dict, list)) and bump(v): return True
        return False
    if not bump(d): d['edited'] = True
    f.write_text(json.dumps(d, indent=2))

DAMAGE = {
    'truncate model.safetensors': ('model.safetensors', _truncate),
    'truncate trainer_state.json': ('trainer_state.json', _truncate),
    'flip a byte of model.safetensors': ('model.safetensors', _flip),
    'flip a byte of trainer_state.safetensors': ('trainer_state.safetensors', _flip),
    'edit a value of trainer_state.json': ('trainer_state.json', _edit_json),
    'edit a value of train_config.json': ('train_config.json', _edit_json),
    'edit a value of config.json': ('config.json', _edit_json),
    'edit a value of meta.json': ('meta.json', _edit_json),
    'delete model.safetensors': ('model.safetensors', Path.unlink),
    'delete trainer_state.json': ('trainer_state.json', Path.unlink),
    'delete meta.json': ('meta.json', Path.unlink),
    'delete tokenizer/tokenizer.json': ('tokenizer/tokenizer.json', Path.unlink),
}


def damaged_detected(ck: Path) -> tuple[bool, str]:
    "Whether `verify_checkpoint` refuses `ck`, and its message."
    from zer0llm.checkpoint import verify_checkpoint
    try: verify_checkpoint(ck)
    except (ValueError, FileNotFoundError) as e: return True, str(e)
    return False, ''


def corruption_campaign(root: Path) -> dict:
    "Damage each checkpoint of a finished run in each way; then every checkpoint at once."
    run = root/'corrupt-ref'
    rc, _, err = run_to_end(train_cmd('FO', run, ['--max-steps', '6', '--eval-every', '3']), root/'corrupt-ref.log')
    if rc: raise RuntimeError(f'corruption run failed:\n{err[-3000:]}')
    cks = sorted(p for p in (run/'checkpoints').iterdir() if p.is_dir())
    res = dict(checkpoints=[p.name for p in cks], cases=0, detected=0, named_file=0, undetected=[],
               every_checkpoint={})
    for ck in cks:
        for what, (name, damage) in DAMAGE.items():
            if not (ck/name).exists(): continue
            with tempfile.TemporaryDirectory() as d:
                copy = Path(d)/ck.name
                shutil.copytree(ck, copy)
                damage(copy/name)
                hit, msg = damaged_detected(copy)
                res['cases'] += 1
                res['detected'] += hit
                res['named_file'] += hit and Path(name).name in msg
                if not hit: res['undetected'].append(f'{ck.name}: {what}')
    for what, (name, damage) in DAMAGE.items():     # every checkpoint damaged: resume must refuse
        with tempfile.TemporaryDirectory() as d:
            copy = Path(d)/'run'
            shutil.copytree(run, copy)
            for ck in (copy/'checkpoints').iterdir():
                if (ck/name).exists(): damage(ck/name)
            rc, _, stderr = run_to_end(train_cmd('FO', copy, ['--max-steps', '6', '--resume', 'auto']),
                                Path(d)/'resume.log')
            err = [l for l in stderr.splitlines() if l.strip() and 'Warning' not in l]
            res['every_checkpoint'][what] = dict(returncode=rc, refused=rc == 2 and len(err) == 1,
                                                 traceback='Traceback' in stderr, message=err[-1] if err else '')
    return res


# --- bad values ---------------------------------------------------------------------------------------

def bad_values(low, high, low_included: bool) -> list:
    "Values just outside `[low, high]` (or `(low, high]`)."
    vals = [low - 1 if low_included else low]
    if high is not None: vals.append(high + 1)
    return vals


def badvalue_cases() -> list[tuple[str, str, str]]:
    "(field, flag, value) for every range and choice field of TrainConfig."
    from zer0llm.train import FIELD_RANGES, FIELD_CHOICES
    cases = []
    for name, rule in FIELD_RANGES.items():
        for v in bad_values(*rule): cases.append((name, '--' + name.replace('_', '-'), str(v)))
    for name in FIELD_CHOICES: cases.append((name, '--' + name.replace('_', '-'), 'no-such-value'))
    return cases


def run_cli(argv: list[str]) -> tuple[int, str]:
    "The exit status and stderr of `zer0llm` with `argv`, run in this process (argparse's exits included)."
    import contextlib, io
    from zer0llm.cli import main as cli_main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: rc = cli_main(argv)
        except SystemExit as e: rc = e.code
        except Exception:
            import traceback
            traceback.print_exc()
            rc = 1
    return rc, err.getvalue()


def badvalue_campaign(root: Path) -> dict:
    "Every out-of-range value through `zer0llm train`: rc 2, one message line naming the flag, no traceback."
    res = dict(cases=0, ok=0, failures=[])
    for name, flag, value in badvalue_cases():
        steps = [] if flag == '--max-steps' else ['--max-steps', '1']   # a valid run would stop at once
        rc, err = run_cli(['train', flag, value, '--out', str(root/'bad'), *steps])
        lines = [l for l in err.splitlines() if l.strip()]
        ok = rc == 2 and len(lines) == 1 and flag in lines[0] and 'Traceback' not in err
        res['cases'] += 1
        res['ok'] += ok
        if not ok: res['failures'].append(dict(flag=flag, value=value, rc=rc, stderr=lines[-5:]))
    return res


# --- report -------------------------------------------------------------------------------------------

def markdown(results: dict) -> str:
    out = ['# zer0llm reliability campaigns', '']
    if 'kill' in results:
        out += ['| run | kills | during a save | between saves | resumed runs | bitwise equal | '
                'finished run resumed, still equal | failures |', '|---|---|---|---|---|---|---|---|']
        for r in results['kill']:
            out.append(f"| {r['kind']} | {r['kills']} | {r['during_save']} | {r['between_saves']} | "
                       f"{r['cycles']} | {r['bitwise_equal']}/{r['cycles']} | "
                       f"{r['finished_resume_equal']}/{r['cycles']} | {len(r['failures'])} |")
        out.append('')
    if 'corrupt' in results:
        c = results['corrupt']
        every = c['every_checkpoint'].values()
        out += [f"Corruption: {c['detected']}/{c['cases']} damaged checkpoints detected "
                f"({c['named_file']} naming the damaged file) over {', '.join(c['checkpoints'])}; "
                f"every checkpoint damaged: resume refused {sum(e['refused'] for e in every)}/{len(every)}, "
                f"with a traceback {sum(e['traceback'] for e in every)}.", '']
        out += [f"- undetected: {u}" for u in c['undetected']]
    if 'badvalue' in results:
        b = results['badvalue']
        out += [f"Bad values: {b['ok']}/{b['cases']} rejected with rc 2 and one message naming the flag.", '']
        out += [f"- {f['flag']} {f['value']}: rc {f['rc']}, {f['stderr']}" for f in b['failures']]
    return '\n'.join(out) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--kills', type=int, default=20, help='kills per kind')
    p.add_argument('--kinds', default='FO,ZO,LoRA,FSDP')
    p.add_argument('--only', default='kill,corrupt,badvalue')
    p.add_argument('--out', type=Path, default=Path('benchmarks/campaigns.json'))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--work', type=Path, default=None, help='scratch directory (default: a temporary one)')
    p.add_argument('--spawn', action='store_true', help='a fresh interpreter per attempt (default: fork this one)')
    args = p.parse_args(argv)
    global SPAWN
    SPAWN = args.spawn
    if not SPAWN:
        import torch
        torch.set_num_threads(1)         # no thread pool in the process the attempts are forked from
        import zer0llm.cli  # noqa: F401  (imported once, here)
    rng, only = random.Random(args.seed), args.only.split(',')
    work = args.work or Path(tempfile.mkdtemp(prefix='zer0llm-campaigns-'))
    work.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    t0 = time.time()
    def save():
        results['seconds'] = round(time.time() - t0, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        args.out.with_suffix('.md').write_text(markdown(results))
    if 'badvalue' in only:
        results['badvalue'] = badvalue_campaign(work)
        save()
    if 'corrupt' in only:
        results['corrupt'] = corruption_campaign(work)
        save()
    if 'kill' in only:
        kinds = args.kinds.split(',')
        results['kill'] = [r for r in results.get('kill', []) if r['kind'] not in kinds]   # others' kept
        for kind in kinds:
            results['kill'].append(kill_campaign(kind, args.kills, work, rng))
            save()
    print(markdown(results))
    if not args.work: shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
