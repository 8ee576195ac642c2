"""Red team: dishonest submissions graded in one run with honest ones (issue 17).

Each attack below is a submission of ``ch00_warmup`` whose answers are all
wrong or unanswered, plus code that tries one way of getting points, reading
secrets or harming the run; the honest submissions next to them must keep
exactly their marks. The attacks know the real paths (solutions, package,
``--out``, the submissions), as a student who read the grader's source and
guessed the layout would. Everything is graded once, two jobs at a time, with
a 10 s cell timeout, 1 GB per kernel process, 4 MB of output per notebook.

The isolation half of this file needs the grader to run as root (as in CI and
on a grading server), with Linux namespaces and a writable memory cgroup: as
another user it cannot create the run slots' users or namespaces, and the
module fails at once saying what is missing.
"""
import csv
import hashlib
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest

from ntkcourse.grading import checks
from ntkcourse.grading.grade import gradebook_text, grade
from ntkcourse.grading.notebook_format import cell_info, load_assignment
from ntkcourse.grading.results import read_result
from ntkcourse.grading.sandbox import SLOT_USER_PREFIX, probe

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
PACKAGE = ROOT / "ntkcourse"
CORPUS = ROOT / "tests" / "grading_corpus" / "ch00_warmup"
MARKER = "ntk-redteam-marker"
JOBS = 2

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


def _exercise():
    return nbformat.read(str(ROOT / "exercises" / "ch00_warmup.ipynb"), as_version=4)


def _with_attack(code, **paths):
    """The released exercise (every answer the stub) with the attack's code in its answer cells.

    ``code`` is the code of the first answer cell, or a tuple of codes for the
    first answer cells. The first answer is also given a wrong definition (a
    constant), so the attack has nothing to earn honestly.
    """
    codes = code if isinstance(code, tuple) else (code,)
    nb = _exercise()
    answers = [cell for cell in nb.cells if cell_info(cell) and cell_info(cell).role == "answer"]
    answers[0].source = "def relu_expectation(a, b, c):\n    return 0.0 * (a + b + c)\n"
    for cell, text in zip(answers, codes):
        cell.source = text.format(**paths) + "\n" + (cell.source if cell is answers[0] else "")
    return nb


# Each attack is code put into an answer cell. {out}, {solutions}, {package},
# {submissions} and {marker} are filled in with the real paths.
ATTACKS = {
    "patch_check_helper": '''
import sys
helper = sys.modules["ntkcourse.grading.checks"]
for name in ("close", "close_to_reference", "shape", "finite", "symmetric", "psd", "true"):
    setattr(helper.Checker, name, lambda self, *args, **kwargs: None)
def _exit(self, *exc):
    sys.stdout = self._saved[0]
    print(f"PASS {{self.question}} (3 checks)")
    return True
helper.checking.__exit__ = _exit
''',
    "forge_reports": '''
import sys
import numpy as np
helper = sys.modules["ntkcourse.grading.checks"]
original = helper.Checker._report
def forged(self, kind, label, options, **values):
    # Claim the expected value as the answer, and infinite tolerances.
    if "expected" in values:
        values["answer"] = values["expected"]
    if kind == "true":
        values["value"] = True
    options = {{k: 1e300 for k in options}} if kind != "shape" else options
    return original(self, kind, label, options, **values)
helper.Checker._report = forged
''',
    "patch_numpy": '''
import numpy as np
np.all = lambda *args, **kwargs: True
np.any = lambda *args, **kwargs: False
np.allclose = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), dtype=bool)
''',
    "switch_mode": '''
import importlib, os, sys
os.environ["NTKCOURSE_CHECKS_MODE"] = "student"
helper = importlib.reload(sys.modules["ntkcourse.grading.checks"])
''',
    "overwrite_results_file": '''
import glob, json, os
forged = json.dumps({{"cell": 0, "when": "call", "outcome": "passed", "outputs": []}})
for pattern in ("../private/results.jsonl", "/tmp/**/private/results.jsonl", "{scratch}/**/results.jsonl"):
    for path in glob.glob(pattern, recursive=True):
        try:
            open(path, "w").write(forged * 50)
        except OSError:
            pass
''',
    "steal_reference_via_proc": '''
import glob, json, os
found = []
for cmdline in glob.glob("/proc/*/cmdline"):
    try:
        words = open(cmdline, "rb").read().split(b"\\0")
        cwd = os.readlink(cmdline.replace("cmdline", "cwd"))
    except OSError:
        continue
    for i, word in enumerate(words):
        if word == b"--solutions" and i + 1 < len(words):
            found.append(os.path.join(cwd, words[i + 1].decode()))
found.append("{solutions}")
for folder in found:
    try:
        solution = json.load(open(os.path.join(folder, "ch00_warmup.ipynb")))
    except OSError:
        continue
    for cell in solution["cells"]:
        if cell.get("metadata", {{}}).get("ntkcourse", {{}}).get("role") == "answer":
            exec("".join(cell["source"]), globals())
''',
    "detached_rewriter": '''
import subprocess, sys
loop = """
import glob, time
deadline = time.time() + 60
while time.time() < deadline:
    for pattern in ('/tmp/**/results.jsonl', '{scratch}/**/results.jsonl', '{out}/results/*.json',
                    '{out}/gradebook.csv', '{submissions}/*.ipynb'):
        for path in glob.glob(pattern, recursive=True):
            try:
                open(path, 'w').write('forged')
            except OSError:
                pass
    time.sleep(0.2)
"""
subprocess.Popen([sys.executable, "-c", loop, "{marker}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
''',
    "edit_solutions_and_package": '''
import glob, os
targets = ["{solutions}/ch00_warmup.ipynb", "{package}/grading/checks.py", "{package}/__init__.py",
           "{out}/gradebook.csv"]
targets += glob.glob(os.path.dirname(os.__file__) + "/json/__init__.py")
for path in targets:
    try:
        open(path, "a").write("# forged")
    except OSError:
        pass
''',
    "stop_the_grader": '''
import os, signal
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(int(entry), sig)
            except OSError:
                pass
pid = os.getppid()
while pid > 1:
    try:
        os.kill(pid, signal.SIGSTOP)
        pid = int(open(f"/proc/{{pid}}/stat").read().split(")")[1].split()[1])
    except (OSError, ValueError, IndexError):
        break
''',
    "leave_processes": '''
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
    os._exit(0)
''',
    "leak_hidden_checks_through_errors": ('''
captured = []
def _capture(lines):
    captured.append("".join(lines))
    return lines
get_ipython().input_transformers_post.append(_capture)
''', '''
def relu_prime_expectation(a, b, c):
    # Called by the checks of q2, after the hidden check of q1 has run: its
    # text, a piece of a line and two pieces across a line break.
    hidden = [text for text in captured if "hidden=True" in text][0]
    middle = len(hidden) // 2
    raise RuntimeError(hidden[middle - 30:middle + 30])
'''),
    "fork_bomb": '''
import os, time
children = []
while True:
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
''',
    "fill_the_disk": ('''
with open("big_file", "wb") as handle:  # one file beyond RLIMIT_FSIZE (64 MB)
    for _ in range(80):
        handle.write(b"x" * 2**20)
''', '''
for number in range(10):  # 50 MB files until /tmp (a 256 MB tmpfs) is full
    with open(f"/tmp/fill_{{number}}", "wb") as handle:
        for _ in range(50):
            handle.write(b"x" * 2**20)
'''),
    "reach_the_network": '''
import socket
reached = 0
for address in [("127.0.0.1", {port})]:  # a port the grader's machine listens on
    try:
        socket.create_connection(address, timeout=2).close()
        reached += 1
    except OSError:
        pass
raise RuntimeError(f"reached {{reached}} of 1")
''',
    "memory_across_processes": '''
import os, time
import numpy as np
children = []
for _ in range(4):  # 400 MB each, under the 1 GB per process; 1.6 GB together
    pid = os.fork()
    if pid == 0:
        block = np.ones(50 * 2**20)
        time.sleep(2)  # all four hold their blocks at once; the cell ends well within its 10 s on a busy machine
        os._exit(0)
    children.append(pid)
killed = sum(1 for pid in children if os.WIFSIGNALED(os.waitpid(pid, 0)[1]))
raise RuntimeError(f"{{killed}} of 4 children were killed")
''',
    "output_flood": '''
import sys
for _ in range(40):
    sys.stdout.write("x" * 2**20)
    sys.stdout.flush()
''',
}


def _make_corpus(folder: Path, paths: dict) -> dict:
    """Write every submission into ``folder``; return ``{student: expected total}`` (None: an error row)."""
    folder.mkdir()
    expected = {}
    for name, code in ATTACKS.items():
        nbformat.write(_with_attack(code, **paths), str(folder / f"{name}.ipynb"))
        expected[name] = 0.0
    # Honest submissions graded in the same run keep exactly their marks.
    shutil.copy(CORPUS / "correct.ipynb", folder / "honest_correct.ipynb")
    shutil.copy(CORPUS / "swapped_recursion.ipynb", folder / "honest_swapped.ipynb")
    shutil.copy(CORPUS / "float32_lists_equivalent.ipynb", folder / "honest_float32.ipynb")
    # The marks the corpus says these submissions earn (tests/grading_corpus/ch00_warmup/expected.json).
    corpus_marks = json.loads((CORPUS / "expected.json").read_text())
    marks = {name: float(sum(corpus_marks[name]["points"].values()))
             for name in ("correct", "swapped_recursion", "float32_lists_equivalent")}
    expected.update(honest_correct=marks["correct"], honest_swapped=marks["swapped_recursion"],
                    honest_float32=marks["float32_lists_equivalent"])
    # A name that is not UTF-8 and one that a spreadsheet would run: escaped, graded as usual.
    shutil.copy(CORPUS / "correct.ipynb", os.path.join(os.fsencode(folder), b"caf\xe9.ipynb"))
    shutil.copy(CORPUS / "correct.ipynb", folder / "=cmd.ipynb")
    expected.update({"caf%E9": marks["correct"], "%3Dcmd": marks["correct"]})
    # Files alone.
    (folder / "symlink_to_solution.ipynb").symlink_to(SOLUTIONS / "ch00_warmup.ipynb")
    (folder / "symlink_to_classmate.ipynb").symlink_to(folder / "honest_correct.ipynb")
    (folder / "nested_json.ipynb").write_text("[" * 200_000 + "]" * 200_000)
    with open(folder / "sparse_huge.ipynb", "wb") as handle:
        handle.truncate(100 * 2**30)  # 100 GB apparent size, no blocks on disk
    (folder / "twin").mkdir()
    shutil.copy(CORPUS / "correct.ipynb", folder / "twin" / "ch00_warmup.ipynb")
    shutil.copy(CORPUS / "correct.ipynb", folder / "twin.ipynb")
    expected.update(symlink_to_solution=None, symlink_to_classmate=None, nested_json=None, sparse_huge=None,
                    **{"twin~1": None, "twin~2": None})
    return expected


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        info = path.stat()
        # Files too large to read (the sparse one) by size and modification time.
        content = path.read_bytes() if info.st_size < 2**26 else f"{info.st_size} {info.st_mtime_ns}".encode()
        digest.update(os.fsencode(path) + content)
    return digest.hexdigest()


def _marked_processes():
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if MARKER in (process.info["cmdline"] or []):
                found.append(process.pid)
        except psutil.Error:
            pass
    return found


def _slot_user_processes():
    """Processes of every slot user (another grader running on this machine would add its own)."""
    import pwd

    uids = {entry.pw_uid for entry in pwd.getpwall() if entry.pw_name.startswith(SLOT_USER_PREFIX)}
    return [p.pid for p in psutil.process_iter(["uids", "status"]) if p.info["uids"]
            and p.info["uids"].real in uids and p.info["status"] != psutil.STATUS_ZOMBIE]


@pytest.fixture(scope="module")
def redteam(tmp_path_factory):
    isolation = probe()
    if isolation.missing():
        pytest.fail(f"the red-team corpus needs the grader to run as root with Linux namespaces (as in CI); "
                    f"here: {isolation.missing()}")
    base = tmp_path_factory.mktemp("redteam")
    out, scratch, key = base / "out", base / "scratch", base / "key" / "grader.key"
    scratch.mkdir()
    submissions = base / "submissions"
    listening = socket.create_server(("127.0.0.1", 0))
    paths = dict(out=out, solutions=SOLUTIONS, package=PACKAGE, submissions=submissions, scratch=scratch,
                 marker=MARKER, port=listening.getsockname()[1])
    expected = _make_corpus(submissions, paths)
    before = {"solutions": _tree_digest(SOLUTIONS), "package": _tree_digest(PACKAGE),
              "submissions": _tree_digest(submissions)}
    summary = grade([submissions], "ch00_warmup", out, solutions_dir=SOLUTIONS, jobs=JOBS, cell_timeout=10.0,
                    memory_mb=1024, scratch_root=scratch, key_path=key, output_limit=4 * 2**20)
    after_run = {"marked": _marked_processes(), "slot_users": _slot_user_processes()}
    listening.close()
    time.sleep(1.0)  # a process that survived would rewrite the results now
    with open(out / "gradebook.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    return dict(summary=summary, rows=rows, expected=expected, out=out, key=key, scratch=scratch, before=before,
                after_run=after_run, submissions=submissions,
                results={r.student: r for r in summary.results})


def test_every_submission_has_one_row(redteam):
    assert sorted(redteam["rows"]) == sorted(redteam["expected"])


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_earns_no_points(redteam, attack):
    assert float(redteam["rows"][attack]["total"]) == 0.0, redteam["rows"][attack]


@pytest.mark.parametrize("student", ["honest_correct", "honest_swapped", "honest_float32", "caf%E9", "%3Dcmd"])
def test_honest_submissions_in_the_same_run_keep_exactly_their_marks(redteam, student):
    row = redteam["rows"][student]
    assert (float(row["total"]), row["status"]) == (redteam["expected"][student], "ok"), row


@pytest.mark.parametrize("student, code", [("symlink_to_solution", "not-a-regular-file"),
                                           ("symlink_to_classmate", "not-a-regular-file"),
                                           ("nested_json", "not-json"), ("sparse_huge", "too-large"),
                                           ("twin~1", "duplicate-student"), ("twin~2", "duplicate-student")])
def test_files_that_cannot_be_graded_get_an_error_row_with_a_reason(redteam, student, code):
    row = redteam["rows"][student]
    assert (row["status"], row["total"], row["reason"].split(":")[0]) == ("error", "0", code)


def test_limits_end_as_that_students_error(redteam):
    codes = {s: {p.code for p in redteam["results"][s].problems} for s in ("fork_bomb", "output_flood")}
    assert "process-limit" in codes["fork_bomb"] and "output-limit" in codes["output_flood"], codes


def test_a_file_beyond_the_size_limit_and_a_full_tmp_fail_that_students_cells(redteam):
    reason = redteam["rows"]["fill_the_disk"]["reason"]
    assert "File too large" in reason and "No space left on device" in reason, reason


def test_the_memory_limit_holds_for_all_processes_of_a_submission_together(redteam):
    row = redteam["rows"]["memory_across_processes"]
    killed = re.search(r"RuntimeError: (\d) of 4 children were killed", row["reason"])
    assert (killed and int(killed.group(1)) >= 1) or "kernel-died" in row["reason"], row["reason"]
    assert row["status"] == "error" and "memory-limit: " in row["reason"]


def test_a_submission_reaches_no_network(redteam):
    # It could reach this machine's loopback (other kernels, the grader) if it shared its network.
    assert "RuntimeError: reached 0 of 1" in redteam["rows"]["reach_the_network"]["reason"]


def test_a_csv_cell_that_a_spreadsheet_would_run_is_neutralised(redteam):
    text = (redteam["out"] / "gradebook.csv").read_text()
    assert not any(line.startswith(("=", "+", "-", "@")) for line in text.splitlines())


def test_solutions_package_and_submissions_are_unchanged(redteam):
    now = {"solutions": _tree_digest(SOLUTIONS), "package": _tree_digest(PACKAGE),
           "submissions": _tree_digest(redteam["submissions"])}
    assert now == redteam["before"]


def test_out_holds_only_what_the_grader_wrote(redteam):
    out = redteam["out"]
    results = {p.stem: read_result(p, redteam["key"].read_bytes()) for p in (out / "results").glob("*.json")}
    assignment = load_assignment(SOLUTIONS / "ch00_warmup.ipynb")
    assert sorted(results) == sorted(redteam["expected"])
    assert (out / "gradebook.csv").read_text() == gradebook_text(assignment, results)
    assert sorted(p.name for p in out.iterdir()) == ["feedback", "gradebook.csv", "results"]


def test_no_process_of_a_submission_survives_the_run(redteam):
    assert redteam["after_run"] == {"marked": [], "slot_users": []}
    assert _marked_processes() == [] and list(redteam["scratch"].iterdir()) == []


def _secrets():
    """The reference's close_to_reference values and the hidden checks' values and source lines."""
    assignment = load_assignment(SOLUTIONS / "ch00_warmup.ipynb")
    namespace, sent = {}, []
    for cell in assignment.notebook.cells:
        info = cell_info(cell)
        if cell.cell_type == "code" and not (info and info.role == "check"):
            exec(cell.source, namespace)
    session, send = checks._SESSION, checks._send
    checks._SESSION, checks._send = checks._Session("report"), sent.append
    try:
        for cell in assignment.notebook.cells:
            info = cell_info(cell)
            if info and info.role == "check":
                exec(cell.source, namespace)
                payload = sent.pop()
                for entry in payload["checks"]:
                    if entry["kind"] == "close_to_reference" or info.hidden:
                        yield from (("value", v) for name in ("answer", "expected") if name in entry
                                    for v in entry[name]["data"] if abs(v) > 1e-6)
                    elif entry["kind"] == "close":
                        # Written in a released check: the student has it anyway.
                        yield from (("public", v) for v in entry["expected"]["data"])
                if info.hidden:
                    yield from (("line", line.strip()) for line in cell.source.splitlines()
                                if len(line.strip()) >= 12)
    finally:
        checks._SESSION, checks._send = session, send


def test_no_feedback_file_holds_a_reference_value_or_a_hidden_checks_source(redteam):
    secrets = list(_secrets())
    public = [v for kind, v in secrets if kind == "public"]
    values = [v for kind, v in secrets if kind == "value" and not np.isclose(public, v, rtol=1e-4).any()]
    lines = [v for kind, v in secrets if kind == "line"]
    assert values and lines
    for path in (redteam["out"] / "feedback").glob("*.md"):
        text = path.read_text()
        shown = [float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]
        assert not any(np.isclose(s, v, rtol=1e-4) for s in shown for v in values), path.name
        assert not any(line in text for line in lines), path.name


def test_the_leak_attempt_is_reported_without_the_hidden_text(redteam):
    text = (redteam["out"] / "feedback" / "leak_hidden_checks_through_errors.md").read_text()
    assert "RuntimeError" in text and "message withheld" in text
