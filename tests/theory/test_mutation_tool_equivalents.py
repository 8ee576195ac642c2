"""tools/mutation.py: an EQUIVALENT entry is trusted only while its name still names the mutant it was written for.

mutmut numbers the mutants of a function in the order it makes them, so editing the function renumbers them.
Each EQUIVALENT entry records the mutant's change (the lines it changes, stripped); the tool excludes an entry
only when the mutant of that name has that change, reports the others as stale with the mutant that has the
change now. These tests run the tool's functions on mutated code written here in mutmut 3's layout (an
``__mutmut_orig`` copy of each function and one copy per mutant; methods inside their class), so they need
neither mutmut nor a run.
"""
import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mutation.py"

# A source function `scale(x)` and its mutants in mutmut's layout, before and after a line was added at the top
# of its body: the mutant `2.0 * x -> 3.0 * x` is number 2 before and number 3 after.
BEFORE = '''
def x_scale__mutmut_orig(x):
    return 2.0 * x
def x_scale__mutmut_1(x):
    return 2.0 / x
def x_scale__mutmut_2(x):
    return 3.0 * x
class Box:
    def xǁBoxǁsize__mutmut_orig(self):
        return len(self.items)
    def xǁBoxǁsize__mutmut_1(self):
        return len(None)
'''
AFTER = '''
def x_scale__mutmut_orig(x):
    x = float(x)
    return 2.0 * x
def x_scale__mutmut_1(x):
    x = None
    return 2.0 * x
def x_scale__mutmut_2(x):
    x = float(x)
    return 2.0 / x
def x_scale__mutmut_3(x):
    x = float(x)
    return 3.0 * x
'''


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("mutation_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_mutants_change_is_the_lines_it_changes_stripped_with_methods_named_by_their_class(tool):
    """Each mutant -> 'old -> new' of its changed lines (indentation dropped), methods under mutmut's xǁClassǁ
    names; the orig copies are not mutants.
    """
    assert tool.mutant_changes(BEFORE, "pkg.mod") == {
        "pkg.mod.x_scale__mutmut_1": "return 2.0 * x -> return 2.0 / x",
        "pkg.mod.x_scale__mutmut_2": "return 2.0 * x -> return 3.0 * x",
        "pkg.mod.xǁBoxǁsize__mutmut_1": "return len(self.items) -> return len(None)",
    }


def test_an_entry_renumbered_by_an_edit_is_stale_and_the_mutant_with_its_change_is_named(tool):
    """After the edit, number 2 is `2.0 / x`: the entry written for `3.0 * x` under that name is stale (not
    valid, so not excluded), and the mutant that has its change now, number 3, is reported as its new name.
    """
    table = {"pkg.mod.x_scale__mutmut_2": ("return 2.0 * x -> return 3.0 * x", "why")}
    assert tool.check_equivalent(tool.mutant_changes(BEFORE, "pkg.mod"), table)["valid"] == {
        "pkg.mod.x_scale__mutmut_2"}
    check = tool.check_equivalent(tool.mutant_changes(AFTER, "pkg.mod"), table)
    assert check["valid"] == set()
    assert check["stale"] == {"pkg.mod.x_scale__mutmut_2": (
        "return 2.0 * x -> return 3.0 * x", "return 2.0 * x -> return 2.0 / x", ["pkg.mod.x_scale__mutmut_3"])}


def test_entries_without_a_change_are_unchecked_and_other_modules_entries_are_ignored(tool):
    """A plain reason (no recorded change) whose name exists is 'unchecked' (still excluded); one whose name is
    gone is stale; entries of a module not among the mutants are left out of the check.
    """
    table = {"pkg.mod.x_scale__mutmut_1": "why", "pkg.mod.x_scale__mutmut_9": "why",
             "pkg.other.x_f__mutmut_1": ("a -> b", "why")}
    check = tool.check_equivalent(tool.mutant_changes(BEFORE, "pkg.mod"), table)
    assert (check["valid"], check["unchecked"]) == (set(), {"pkg.mod.x_scale__mutmut_1"})
    assert check["stale"] == {"pkg.mod.x_scale__mutmut_9": (None, None, [])}


def test_a_stale_entrys_surviving_mutant_counts_as_surviving(tool):
    """figures() excludes only the names it is given: the survivor named by a stale entry is in the fraction
    (1 of 2 counted), while a valid entry's survivor is counted as equivalent.
    """
    found = {"pkg.mod.x_scale__mutmut_1": "killed", "pkg.mod.x_scale__mutmut_2": "survived",
             "pkg.mod.x_scale__mutmut_3": "survived"}
    result = tool.figures(found, excluded={"pkg.mod.x_scale__mutmut_3"})
    assert (result["survived"], result["equivalent"], result["fraction"]) == (1, 1, 0.5)
    assert result["real"] == ["pkg.mod.x_scale__mutmut_2"]


# --sample: a uniform, seeded sample of the mutants and the Wilson interval of its surviving fraction.
NAMES = [f"pkg.mod.x_f{f}__mutmut_{n}" for f in range(3) for n in range(1, 41)]


@pytest.mark.parametrize("k, n", [(0, 400), (20, 400), (7, 30), (30, 30)])
def test_the_sample_interval_is_the_wilson_score_interval(tool, k, n):
    # Wilson's bounds are the two roots p of (k/n - p)^2 = z^2 p (1 - p) / n, z the 97.5 % normal quantile.
    z2 = 1.959964 ** 2
    a, b, c = 1 + z2 / n, -(2 * k / n + z2 / n), (k / n) ** 2
    roots = sorted(((-b - (b * b - 4 * a * c) ** 0.5) / (2 * a), (-b + (b * b - 4 * a * c) ** 0.5) / (2 * a)))
    low, high = tool.wilson_interval(k, n)
    assert low == pytest.approx(max(0.0, roots[0]), abs=1e-12) and high == pytest.approx(min(1.0, roots[1]), abs=1e-12)


def test_the_sample_of_no_mutant_tested_has_no_interval(tool):
    low, high = tool.wilson_interval(0, 0)
    assert low != low and high != high  # NaN


def test_a_sample_is_reproducible_from_its_seed_and_drawn_from_the_names_given(tool):
    first, again = tool.draw_sample(NAMES, 25, seed=9), tool.draw_sample(list(reversed(NAMES)), 25, seed=9)
    assert first == again and len(set(first)) == 25 and set(first) <= set(NAMES)
    assert tool.draw_sample(NAMES, 25, seed=10) != first


def test_a_sample_lists_its_mutants_by_function_then_number(tool):
    drawn = tool.draw_sample(NAMES, 30, seed=1)
    assert drawn == sorted(drawn, key=lambda n: (n.rpartition("__mutmut_")[0], int(n.rpartition("__mutmut_")[2])))


def test_a_sample_at_least_as_large_as_the_names_takes_them_all(tool):
    assert tool.draw_sample(NAMES[:5], 8, seed=0) == NAMES[:5]


def test_a_sample_draws_every_mutant_with_the_same_chance(tool):
    # 2000 samples of 12 of the 120 names (fixed seeds): each name is drawn 200 times on average, with a binomial
    # standard deviation of sqrt(2000 * 0.1 * 0.9) = 13.4; every count within 5 of them (67 below / above).
    counts = dict.fromkeys(NAMES, 0)
    for seed in range(2000):
        for name in tool.draw_sample(NAMES, 12, seed=seed):
            counts[name] += 1
    assert all(133 <= c <= 267 for c in counts.values()), sorted(counts.values())[:3] + sorted(counts.values())[-3:]
