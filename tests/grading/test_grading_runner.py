"""The nbval runner: one process, kernel and scratch folder per notebook, and nothing left running."""
import os
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from ntkcourse.grading.runner import run_notebook

pytestmark = pytest.mark.notebook


def notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_each_cell_gets_a_result_with_its_outputs(tmp_path):
    result = run_notebook(notebook("print('hello')", "1 / 0"), cell_timeout=30, memory_mb=0,
                          scratch_root=tmp_path)
    assert (result.cells[0]["outcome"], result.cells[0]["outputs"][0]["text"]) == ("passed", "hello\n")
    assert (result.cells[1]["outcome"], result.cells[1]["outputs"][0]["ename"]) == ("failed", "ZeroDivisionError")


def test_a_dead_kernel_is_noticed_without_waiting_for_the_cell_timeout(tmp_path):
    result = run_notebook(notebook("import os\nos._exit(3)", "print('never')"), cell_timeout=120,
                          memory_mb=0, scratch_root=tmp_path)
    assert (result.cells[0]["kernel_died"], result.cells[0]["kernel_exit_code"]) == (True, 3)
    assert result.seconds < 60


def test_the_memory_limit_turns_an_allocation_beyond_it_into_memory_error(tmp_path):
    # 3 GB under a 1 GB limit; the machine could give it, the kernel may not.
    result = run_notebook(notebook("import numpy as np\nx = np.ones(3 * 2**27)"), cell_timeout=30,
                          memory_mb=1024, scratch_root=tmp_path)
    assert "MemoryError" in result.cells[0]["outputs"][0]["ename"]


def test_processes_started_by_student_code_do_not_outlive_the_run(tmp_path):
    pid_file = tmp_path / "pid"
    result = run_notebook(notebook(f"import subprocess\np = subprocess.Popen(['sleep', '300'], "
                                   f"start_new_session=True)\nopen({str(pid_file)!r}, 'w').write(str(p.pid))"),
                          cell_timeout=30, memory_mb=0, scratch_root=tmp_path)
    assert result.cells[0]["outcome"] == "passed"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_scratch_folder_is_removed_after_the_run(tmp_path):
    run_notebook(notebook("open('scratch_file.txt', 'w').write('x')"), cell_timeout=30,
                 memory_mb=0, scratch_root=tmp_path)
    assert os.listdir(tmp_path) == []


def test_runs_work_from_a_script_without_a_main_guard(tmp_path):
    # multiprocessing's fork server would re-run such a script in every child.
    import subprocess
    import sys

    script = tmp_path / "grade_quickly.py"
    script.write_text("import nbformat\nfrom ntkcourse.grading.runner import run_notebook\n"
                      "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])\n"
                      "print(run_notebook(nb, cell_timeout=30, memory_mb=0).cells[0]['outputs'])\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.count("'text': '42\\n'") == 1, out.stderr[-2000:]
