"""The book builds cleanly, and what it builds is what _toc.yml says.

Static checks of the HTML written by one ``jupyter-book build -W --keep-going``
of a clean copy of the checkout (the session fixture ``book`` in conftest.py);
tests/book/test_book_browser.py opens the same pages in Chromium.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup

from bookbuild import ARTIFACTS, ROOT, SPHINX_PAGES, missing_toc_pages, run_build, strip_ansi

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

CACHED_REBUILD_LIMIT_S = 60
# MyST roles that, left in a page's text, mean a reference was not parsed.
RAW_ROLE = re.compile(r"\{(?:eq|numref|ref|doc|download|cite(?::[a-z]+)?|term|math|glue(?::[a-z]+)?)\}`")


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf8"), "html.parser")


def _main_text(soup: BeautifulSoup) -> str:
    main = soup.select_one("main") or soup
    for tag in main.select("pre, code, script, style"):
        tag.decompose()
    return main.get_text(" ")


def _pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_"))


def _chapters(book) -> list[str]:
    """Chapter pages: the documents of _toc.yml that are notebooks (they have code cells)."""
    return [name for name in book.docnames
            if (book.source / f"{name}.md").exists()
            and "```{code-cell}" in (book.source / f"{name}.md").read_text(encoding="utf8")]


# --- build hygiene -----------------------------------------------------------------

def test_book_builds_without_warnings_from_a_clean_checkout(book):
    assert book.returncode == 0, (
        f"jupyter-book build -W --keep-going failed (status {book.returncode}); "
        "its warnings (full log: test-artifacts/book-build.log):\n" + "\n".join(book.warnings()[:60])
    )


def test_every_page_of_the_toc_exists():
    missing = missing_toc_pages(ROOT)
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_every_page_of_the_toc_is_built_and_no_other(book, book_html):
    expected = {f"{name}.html" for name in book.docnames} | SPHINX_PAGES
    built = {p.relative_to(book_html).as_posix() for p in _pages(book_html)}
    assert built == expected, (
        f"pages built but not in _toc.yml: {sorted(built - expected)}; "
        f"pages of _toc.yml not built: {sorted(expected - built)}"
    )
    sources = {p.relative_to(book_html / "_sources").as_posix()
               for p in (book_html / "_sources").rglob("*") if p.is_file()}
    assert {re.sub(r"\.(md|ipynb)(\.txt)?$", "", s) for s in sources} <= set(book.docnames), (
        f"_sources holds files of documents outside _toc.yml: {sorted(sources)}"
    )


def test_no_solution_is_published(book_html):
    """Reference solutions stay out of the book: no file from solutions/ and no solution block."""
    leaked = []
    for path in book_html.rglob("*"):
        if not path.is_file() or path.suffix not in {".html", ".ipynb", ".txt", ".md", ".js"}:
            continue
        text = path.read_text(encoding="utf8", errors="replace")
        if "### BEGIN SOLUTION" in text or '"hidden": true' in text:
            leaked.append(path.relative_to(book_html).as_posix())
    assert not leaked, f"solution code or hidden checks in the built book: {leaked}"


def _local_target(page: Path, url: str, html: Path) -> tuple[Path, str] | None:
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
        return None
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_internal_links_and_anchors_resolve(book_html):
    """Every relative href/src of every page names a file of the build, and every #anchor an id."""
    ids: dict[Path, set[str]] = {}
    broken = []
    for page in _pages(book_html):
        soup = _soup(page)
        ids[page.resolve()] = {tag["id"] for tag in soup.select("[id]")}
    for page in _pages(book_html):
        soup = _soup(page)
        for tag in soup.select("a[href], img[src], link[href], script[src]"):
            url = tag.get("href") or tag.get("src")
            found = _local_target(page, url, book_html)
            if found is None:
                continue
            target, fragment = found
            where = f"{page.relative_to(book_html)}: {url}"
            if not target.exists():
                broken.append(f"{where} (no such file)")
            elif fragment and target.suffix == ".html" and fragment not in ids.get(target, set()):
                broken.append(f"{where} (no id {fragment!r} on that page)")
            elif target.suffix == ".md" and "_sources" not in target.parts:
                broken.append(f"{where} (a link to a Markdown source: write it as a MyST reference)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_cross_references_are_resolved(book_html):
    """No role left as raw text, no unresolved (problematic) reference, no '??' number."""
    problems = []
    for page in _pages(book_html):
        soup = _soup(page)
        name = page.relative_to(book_html).as_posix()
        problems += [f"{name}: unresolved reference {tag.get_text()!r}" for tag in soup.select(".problematic")]
        text = _main_text(soup)
        problems += [f"{name}: raw role {m.group(0)!r}" for m in RAW_ROLE.finditer(text)]
        if "??" in text:
            problems.append(f"{name}: '??' where a number or a reference should be")
    assert not problems, "\n".join(problems)


def test_one_bibliography_with_unique_keys_and_citations_that_land_on_it(book, book_html):
    config = yaml.safe_load((book.source / "_config.yml").read_text(encoding="utf8"))
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    keys = re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", (book.source / "book/references.bib").read_text(encoding="utf8"), re.M)
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"book/references.bib defines these keys more than once: {duplicates}"

    with_bibliography = [p.relative_to(book_html).as_posix() for p in _pages(book_html)
                         if _soup(p).select(".citation-list, div.bibliography")]
    assert with_bibliography == ["book/references.html"], (
        f"the book must have one bibliography, on book/references.html; found on {with_bibliography}"
    )
    bibliography_ids = {tag["id"] for tag in _soup(book_html / "book/references.html").select(".citation[id]")}
    elsewhere = []
    for page in _pages(book_html):
        for link in _soup(page).select("a[href*='references.html#']"):
            fragment = link["href"].split("#", 1)[1]
            if fragment not in bibliography_ids:
                elsewhere.append(f"{page.relative_to(book_html)}: {link['href']}")
    assert not elsewhere, f"citations that do not point at a bibliography entry: {elsewhere}"


def test_cached_rebuild_after_a_prose_edit_is_quick_and_clean(book, book_html):
    """Edit one chapter's prose, rebuild incrementally: -W passes, the edit shows, within the limit.

    Rebuilds the session's copy in place: later tests see the rebuilt HTML, which
    differs from the clean build by that one sentence.
    """
    chapters = _chapters(book) or [book.docnames[0]]
    docname = chapters[0]
    source = book.source / f"{docname}.md"
    sentence = "A sentence added by the cached-rebuild test."
    source.write_text(source.read_text(encoding="utf8").rstrip("\n") + f"\n\n{sentence}\n", encoding="utf8")
    returncode, log, seconds = run_build(book.source)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "book-rebuild.log").write_text(strip_ansi(log), encoding="utf8")
    (ARTIFACTS / "book-timings.txt").write_text(
        f"clean build: {book.seconds:.1f} s\ncached rebuild after editing {docname}.md: {seconds:.1f} s\n",
        encoding="utf8",
    )
    print(f"\ncached rebuild after a prose edit of {docname}: {seconds:.1f} s")
    assert returncode == 0, "the cached rebuild failed; see test-artifacts/book-rebuild.log"
    assert "Executing notebook" not in strip_ansi(log), "a prose edit re-executed a notebook"
    assert sentence in book.page(docname).read_text(encoding="utf8")
    assert seconds <= CACHED_REBUILD_LIMIT_S, (
        f"a cached rebuild after a prose edit took {seconds:.0f} s (limit {CACHED_REBUILD_LIMIT_S} s)"
    )


# --- exercise pages ----------------------------------------------------------------

def test_exercise_pages_are_up_to_date():
    proc = subprocess.run([sys.executable, "tools/exercise_pages.py", "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_exercise_notebook_has_a_page_with_its_download(book, book_html):
    notebooks = sorted((book.source / "exercises").glob("*.ipynb"))
    assert notebooks, "no exercise notebook in exercises/"
    overview = _soup(book_html / "book/exercises.html")
    problems = []
    for notebook in notebooks:
        page = book_html / "book" / "exercises" / f"{notebook.stem}.html"
        if not page.exists():
            problems.append(f"{notebook.name}: no page book/exercises/{notebook.stem}.html")
            continue
        if not overview.select(f"a[href='exercises/{notebook.stem}.html']"):
            problems.append(f"{notebook.name}: not listed on book/exercises.html")
        downloads = [a["href"] for a in _soup(page).select("a.download[href]")]
        if len(downloads) != 1:
            problems.append(f"{notebook.name}: expected one download link on its page, found {downloads}")
            continue
        served = (page.parent / unquote(downloads[0])).resolve()
        if served.name != notebook.name or served.read_bytes() != notebook.read_bytes():
            problems.append(f"{notebook.name}: the download {downloads[0]} is not exercises/{notebook.name}")
        else:
            json.loads(served.read_text(encoding="utf8"))
    assert not problems, "\n".join(problems)


# --- what readers expect -------------------------------------------------------------

def test_front_page_says_what_the_course_is_and_how_to_run_it(book_html):
    soup = _soup(book_html / "book/index.html")
    headings = [h.get_text(" ", strip=True).rstrip("#").strip() for h in soup.select("main h2")]
    for heading in ("What the course covers", "Prerequisites", "Running the notebooks"):
        assert heading in headings, f"the front page has no section {heading!r}; it has {headings}"
    text = " ".join((soup.select_one("main") or soup).get_text(" ").split())
    for needle in ("pip install", "Binder", "Colab", "tasks.py book"):
        assert needle in text, f"the front page does not mention {needle!r}"


def test_chapters_number_their_figures_and_equations_and_refer_to_them(book, book_html):
    """Each chapter has a numbered figure and a numbered equation, and its text refers to them."""
    chapters = _chapters(book)
    if not chapters:
        pytest.fail("no chapter (a page of _toc.yml with code cells) was built")
    problems = []
    for docname in chapters:
        soup = _soup(book.page(docname))
        figures = [fig.get("id") or (fig.select_one("[id]") or {}).get("id")
                   for fig in soup.select("figure") if fig.select_one(".caption-number")]
        equations = [span.find_parent(class_="math").get("id") for span in soup.select(".math .eqno")
                     if span.find_parent(class_="math")]
        referenced = {a["href"].split("#", 1)[1] for a in soup.select("main a.reference.internal[href*='#']")}
        if not figures:
            problems.append(f"{docname}: no numbered figure (give a figure a caption)")
        elif not referenced & set(figures):
            problems.append(f"{docname}: no figure is referred to from the text ({{numref}})")
        if not equations:
            problems.append(f"{docname}: no numbered equation (label one: $$ ... $$ (eq-label))")
        elif not referenced & set(equations):
            problems.append(f"{docname}: no equation is referred to from the text ({{eq}})")
    assert not problems, "\n".join(problems)
