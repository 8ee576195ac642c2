"""The grading run's compilation cache (ntkcourse/grading/grade.py, kernel_launcher.py).

The reference solution's run writes the programs JAX compiles into a folder;
every submission's kernel then reads them, read-only, by key, and cannot list
the folder or write to it. Like the red-team file, these tests need the grader
to run as root with Linux namespaces (as in CI and on a grading server).
"""
import os
import sys
from pathlib import Path

import nbformat
import pytest

import ntkcourse.grading.grade as grading
from ntkcourse.grading.grade import compile_cache_for_submissions
from ntkcourse.grading.runner import run_notebook
from ntkcourse.grading.sandbox import SlotPool, probe

pytestmark = pytest.mark.notebook


def _notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _run(notebook, tmp_path, cache, writable):
    isolation = probe()
    assert isolation.namespaces and isolation.slot_users, f"these tests need root and namespaces: {isolation}"
    # What a kernel must read (the interpreter, its environment, the package), as the grader exposes it.
    expose = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(__file__).resolve().parents[2]}
    pool = SlotPool(isolation, slots=1, expose=sorted(map(str, expose)), hide=[str(tmp_path)])
    token, sandbox = pool.acquire()
    sandbox.compile_cache, sandbox.compile_cache_writable = str(cache), writable
    if writable:
        os.chown(cache, sandbox.uid, sandbox.gid)
    try:
        return run_notebook(notebook, cell_timeout=120, memory_mb=0, sandbox=sandbox, scratch_root=tmp_path)
    finally:
        pool.release(token)


def _text(result, cell):
    return "".join(o.get("text", "") for o in result.cells[cell]["outputs"])


# A jitted function, and the persistent-cache hits JAX reports (jax.monitoring, a public API).
COMPILE = '''
import jax, jax.numpy as jnp
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event)
                                       if event == "/jax/compilation_cache/cache_hits" else None)
print(float(jax.jit(lambda v: jnp.sin(v) @ v)(jnp.arange(64.0).reshape(8, 8))[0, 0]))
print("hits", len(hits))
'''


def test_a_submission_reads_the_reference_runs_programs_but_cannot_list_or_change_them(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    writer = _run(_notebook(COMPILE), tmp_path, cache, writable=True)
    assert writer.cells[0]["outcome"] == "passed", writer.cells[0]
    written = sorted(os.listdir(cache))
    assert written and _text(writer, 0).endswith("hits 0\n")
    compile_cache_for_submissions(cache)
    entry = written[0]
    probe_cell = f'''
import os
path = os.environ["JAX_COMPILATION_CACHE_DIR"]
for what, act in [("list", lambda: os.listdir(path)), ("create", lambda: open(path + "/new", "w")),
                  ("change", lambda: open(path + "/{entry}", "r+b")), ("remove", lambda: os.remove(path + "/{entry}"))]:
    try:
        act()
        print(what, "allowed")
    except OSError as error:
        print(what, "refused")
print("read by key", len(open(path + "/{entry}", "rb").read()) > 0)
'''
    reader = _run(_notebook(COMPILE, probe_cell), tmp_path, cache, writable=False)
    # The same value, and the programs came from the cache (the jitted one and the eager arange and reshape).
    value, hits = _text(reader, 0).splitlines()
    assert value == _text(writer, 0).splitlines()[0] and int(hits.split()[1]) >= 1
    assert _text(reader, 1) == ("list refused\ncreate refused\nchange refused\nremove refused\n"
                                "read by key True\n")
    assert sorted(os.listdir(cache)) == written


def test_without_being_asked_the_grader_shares_no_compilation_with_submissions(tmp_path, monkeypatch):
    """The sharing opens a timing side channel (README: threat model), so a plain grading run of two
    submissions must not prepare a shared folder; `share_compilations=True` must."""
    import shutil
    prepared = []
    monkeypatch.setattr(grading, "compile_cache_for_submissions", lambda folder: prepared.append(folder))
    root = Path(__file__).resolve().parents[2]
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    for student in ("alice", "bob"):
        shutil.copy(root / "solutions" / "ch00_warmup.ipynb", submissions / f"{student}.ipynb")
    options = dict(solutions_dir=root / "solutions", jobs=2, cell_timeout=60, scratch_root=tmp_path)
    grading.grade([submissions], "ch00_warmup", tmp_path / "out", **options)
    assert prepared == []
    grading.grade([submissions], "ch00_warmup", tmp_path / "out", force=True, share_compilations=True, **options)
    assert len(prepared) == 1
