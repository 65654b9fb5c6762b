"""Workspace checkpoint figures on a 10,000-file / ~200 MB workspace: first checkpoint, cost
per step with 1 and 1,000 files changed, store growth per step, fork; and, for the record,
the same first/1-file figures with dulwich when it can be imported. Prints; asserts nothing.

    .venv/bin/python bench/bench_checkpoints.py [--files N] [--seed]

dulwich is not a project dependency: the comparison runs in the interpreter named by
$DULWICH_PYTHON (e.g. a throwaway venv: `python3 -m venv /tmp/dulwich-venv &&
/tmp/dulwich-venv/bin/pip install dulwich`), else this one if it has dulwich.
`--seed` also times `seed_from_repository` on the workspace committed as a git repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from state_store.checkpoints import CheckpointStore  # noqa: E402

WORDS = [
    "def",
    "return",
    "self",
    "import",
    "class",
    "for",
    "in",
    "if",
    "else",
    "while",
    "try",
    "except",
    "with",
    "as",
    "lambda",
    "yield",
    "value",
    "result",
    "data",
    "path",
    "file",
    "name",
    "index",
    "count",
    "total",
    "error",
    "config",
    "state",
    "store",
    "tree",
    "event",
    "step",
    "model",
    "tool",
    "call",
    "run",
    "workspace",
    "checkpoint",
    "item",
    "list",
    "dict",
    "str",
    "int",
    "None",
    "True",
]


def build_workspace(root: Path, files: int, total_bytes: int) -> list[Path]:
    """`files` text files of ~total_bytes/files each in ~files/100 directories."""
    rng = random.Random(7)
    pool = " ".join(rng.choice(WORDS) for _ in range(400_000)).encode()
    lines = pool.replace(b" in ", b" in\n")  # text with lines, compresses like source code
    size, paths = total_bytes // files, []
    for i in range(files):
        directory = root / f"pkg{i % max(files // 100, 1):03d}"
        directory.mkdir(parents=True, exist_ok=True)
        start = rng.randrange(len(lines) - size)
        path = directory / f"mod{i:05d}.py"
        path.write_bytes(f"# file {i}\n".encode() + lines[start : start + size])
        paths.append(path)
    return paths


def objects_bytes(git_dir: Path) -> int:
    return sum(
        os.lstat(os.path.join(d, f)).st_size
        for d, _, fs in os.walk(git_dir / "objects")
        for f in fs
    )


def timed(fn):  # -> (seconds, result)
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def edit(paths: list[Path], step: int) -> tuple[int, int]:
    """Append a line to each file: (bytes of the new contents, same zlib-compressed)."""
    raw = packed = 0
    for path in paths:
        data = path.read_bytes() + f"edit {step}\n".encode()
        path.write_bytes(data)
        raw += len(data)
        packed += len(zlib.compress(data))
    return raw, packed


def steps(store: CheckpointStore, paths: list[Path], changed: int, rounds: int) -> None:
    rng = random.Random(changed)
    times, growth, raw, packed = [], [], [], []
    for step in range(rounds):
        r, p = edit(rng.sample(paths, changed), step)
        before = objects_bytes(store.git_dir)
        seconds, _ = timed(store.save)
        times.append(seconds)
        growth.append(objects_bytes(store.git_dir) - before)
        raw.append(r)
        packed.append(p)
    print(
        f"  {changed:>5} file(s) changed: save median {statistics.median(times) * 1000:7.1f} ms "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {rounds} steps); "
        f"store growth {statistics.median(growth):,.0f} B/step for "
        f"{statistics.median(raw):,.0f} B changed ({statistics.median(packed):,.0f} B zlib)"
    )


def bench_git(tmp: Path, ws: Path, paths: list[Path]) -> None:
    store = CheckpointStore(tmp / "store", ws)
    seconds, first = timed(store.save)
    print(f"  first checkpoint: {seconds:.2f} s, store {objects_bytes(store.git_dir):,} B")
    unchanged = [timed(store.save)[0] for _ in range(10)]
    print(f"  nothing changed: save median {statistics.median(unchanged) * 1000:.1f} ms")
    steps(store, paths, 1, 10)
    steps(store, paths, 99, 5)  # below 100 paths: loose objects
    steps(store, paths, 100, 5)  # from 100 paths a save writes one pack
    steps(store, paths, 1000, 10)
    last = store.save().tree
    seconds, _ = timed(lambda: store.changes(first.tree, last))
    print(f"  changes() first -> last (~{len(paths)} files): {seconds * 1000:.0f} ms")
    seconds, _ = timed(lambda: store.verify(last))
    print(f"  verify(): {seconds * 1000:.0f} ms")
    bench_fork(tmp, store, last)


def bench_fork(tmp: Path, store: CheckpointStore, tree: str) -> None:
    copy_s, _ = timed(lambda: store.copy_to(tmp / "fork"))
    (tmp / "fork-ws").mkdir()
    fork = CheckpointStore(tmp / "fork", tmp / "fork-ws")
    checkout_s, _ = timed(lambda: fork.checkout(tree))
    save_s, saved = timed(fork.save)
    assert saved.tree == tree
    print(
        f"  fork: copy_to {copy_s * 1000:.0f} ms + checkout into an empty dir "
        f"{checkout_s:.2f} s = {copy_s + checkout_s:.2f} s (then save {save_s * 1000:.0f} ms)"
    )


def bench_seed(tmp: Path, ws: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    # gc.auto=0: no background gc of 10,000 loose objects during the measurement.
    git = ["git", "-C", str(ws), "-c", "user.name=b", "-c", "user.email=b@b", "-c", "gc.auto=0"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *args], env=env, check=True)
    store = CheckpointStore(tmp / "seeded", ws)
    seed_s, commit = timed(store.seed_from_repository)
    save_s, _ = timed(store.save)
    print(f"  seed_from_repository: {seed_s:.2f} s ({commit}), then first save {save_s:.2f} s")


DULWICH = r"""
import json, os, statistics, sys, time
from dulwich.index import Index, blob_from_path_and_stat, get_unstaged_changes
from dulwich.index import index_entry_from_stat
from dulwich.repo import Repo

ws, tmp = os.fsencode(sys.argv[1]), sys.argv[2]
store = Repo.init_bare(tmp + "/dulwich", mkdir=True).object_store
index_path = tmp + "/dulwich.index"

def walk():
    for d, dirs, files in os.walk(ws):
        dirs[:] = [x for x in dirs if x != b".git"]
        for f in files:
            yield os.path.relpath(os.path.join(d, f), ws)

def add(index, rel):
    full = os.path.join(ws, rel)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        del index[rel]
        return
    blob = blob_from_path_and_stat(full, st)
    store.add_object(blob)
    index[rel] = index_entry_from_stat(st, blob.id)

def first():
    index = Index(index_path, read=False)
    for rel in walk():
        add(index, rel)
    index.write()
    return index.commit(store)

def step():
    index = Index(index_path)
    changed = list(get_unstaged_changes(index, ws))  # stat, then hash if stat differs
    changed += [p for p in walk() if p not in index]  # untracked
    for rel in changed:
        add(index, rel)
    index.write()
    return index.commit(store)

t = time.perf_counter(); first(); first_s = time.perf_counter() - t
times = []
for i, rel in enumerate(list(walk())[:5]):
    with open(os.path.join(ws, rel), "ab") as f:
        f.write(b"dulwich edit\n")
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
import dulwich
step_s = statistics.median(times)
print(json.dumps({"version": dulwich.__version__, "first": first_s, "step": step_s}))
"""


def bench_dulwich(tmp: Path, ws: Path) -> None:
    python = os.environ.get("DULWICH_PYTHON", sys.executable)
    if not Path(python).exists():
        print(f"  dulwich: not measured ($DULWICH_PYTHON={python} does not exist)")
        return
    proc = subprocess.run(
        [python, "-c", DULWICH, str(ws), str(tmp)], capture_output=True, text=True, check=False
    )
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  dulwich: not measured ({python}: {last})")
        return
    r = json.loads(proc.stdout)
    print(
        f"  dulwich {'.'.join(map(str, r['version']))} (pure index + loose objects): "
        f"first checkpoint {r['first']:.2f} s, 1 file changed {r['step'] * 1000:.1f} ms "
        "(median of 5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--seed", action="store_true", help="also time seed_from_repository")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as name:
        tmp = Path(name)
        ws = tmp / "ws"
        seconds, paths = timed(lambda: build_workspace(ws, args.files, args.mb * 2**20))
        print(
            f"workspace: {len(paths):,} files, {sum(p.stat().st_size for p in paths):,} B "
            f"in {len({p.parent for p in paths})} directories (built in {seconds:.1f} s)"
        )
        print("git checkpoints (state_store.checkpoints):")
        bench_git(tmp, ws, paths)
        if args.seed:
            bench_seed(tmp, ws)
        print("for the record:")
        bench_dulwich(tmp, ws)


if __name__ == "__main__":
    main()
