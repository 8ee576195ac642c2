"""The rendered book, as a reader sees it: every page opened in headless Chromium.

Debian's ``chromium`` (``/usr/bin/chromium``) driven by Playwright; the book
is served over HTTP from the build of the session fixture ``book`` (see
conftest.py). Every page is opened once (``page_visits``): the tests below read
what that visit recorded (console errors, requests, typeset math, images), then
axe-core analyses the same loaded page in light and dark mode.
Requests to any other host are refused and reported: the book must work
offline, which is also how a reader behind a firewall or on a plane sees it.
Screenshots go to test-artifacts/.

No browser, no skip: a missing chromium or playwright fails with what to install.
"""
from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
import yaml

from bookbuild import ARTIFACTS

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.notebook]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGE_TIMEOUT_MS = 30_000
# Raw TeX that MathJax would have replaced: display/inline delimiters and environments.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\s][^$]*\\[A-Za-z]+[^$]*\$")

# What the page shows once loaded, as plain data (run in the page).
PAGE_REPORT_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  window.scrollTo(0, document.body.scrollHeight);
  const images = Array.from(document.images);
  await Promise.all(images.map(img => img.complete ? null : new Promise(resolve => {
    img.addEventListener('load', resolve); img.addEventListener('error', resolve);
    setTimeout(resolve, 10000);
  })));
  window.scrollTo(0, 0);
  const main = document.querySelector('main') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const inContent = img => !!img.closest('main article, main .bd-article, figure, .cell_output');
  return {
    title: document.title,
    mathjax: window.MathJax && MathJax.version ? MathJax.version : null,
    mathElements: document.querySelectorAll('main .math').length,
    untypesetMath: Array.from(document.querySelectorAll('main .math'))
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    typeset: document.querySelectorAll('main mjx-container').length,
    mathErrors: Array.from(document.querySelectorAll('mjx-merror'))
      .map(e => e.getAttribute('data-mjx-error') || e.textContent),
    text: clone.textContent,
    images: images.map(img => ({
      src: img.currentSrc || img.src,
      loaded: img.complete && img.naturalWidth > 0,
      inContent: inContent(img),
      width: img.getBoundingClientRect().width,
      height: img.getBoundingClientRect().height,
    })),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => ({
      href: a.href, raw: a.getAttribute('href'), text: a.textContent.trim(),
      cls: a.className,
    })),
    codeBlocks: document.querySelectorAll('main div.highlight pre').length,
    copyButtons: document.querySelectorAll('main div.highlight button.copybtn').length,
  };
}
"""


EMPTY_REPORT = {"title": "", "mathjax": None, "mathElements": 0, "untypesetMath": [], "typeset": 0,
                "mathErrors": [], "text": "", "images": [], "links": [], "codeBlocks": 0, "copyButtons": 0}


@dataclass
class Visit:
    """What opening one page recorded."""

    path: str
    report: dict = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(book_html):
    handler = functools.partial(QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser tests need the Python package playwright (pinned in requirements.lock): "
                    "run `python3 tasks.py test`, or `.venv/bin/pip install -r requirements.lock`.")
    if not Path(CHROMIUM).exists():
        found = shutil.which("chromium")
        pytest.fail(f"The browser tests need Debian's Chromium at {CHROMIUM}"
                    + (f" (found {found} instead)" if found else "")
                    + ": install it with `apt-get install chromium` (as root; `python3 tasks.py test` "
                      "does it when run as root). Never `playwright install`: it downloads a browser.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.rstrip("/"))
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    # The book must not depend on another host: refuse every such request (and report it).
    ctx.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/).*"), lambda route: route.abort())
    yield ctx
    ctx.close()


def _page_paths(book) -> list[str]:
    return [f"{name}.html" for name in book.docnames] + ["search.html", "genindex.html"]


def _watch(page, visit: Visit, server: str) -> None:
    page.on("console", lambda m: visit.console_errors.append(f"{m.text} (at {m.location.get('url')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
    page.on("request", lambda r: visit.external_requests.append(r.url) if not r.url.startswith(server) else None)
    page.on("response", lambda r: visit.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: visit.failed.append(f"{r.failure} {r.url}")
            if r.url.startswith(server) else None)


SCREENSHOTS = {"book/index.html": "front-page", "book/exercises.html": "exercises"}


def _record(page, path: str, visit: Visit, shots: dict[str, str], chapters: list[str], server: str) -> Visit | None:
    """Open the page and record what a reader sees (and take the screenshots of ``shots``).

    Returns a copy of what ``visit`` recorded up to then, so that the later analysis of the same page does
    not add to it; None when the page does not open (the error is then in ``visit``).
    """
    try:
        page.goto(server + path, wait_until="load")
        visit.report = page.evaluate(PAGE_REPORT_JS)
    except Exception as exc:  # a page that does not open fails the tests, not the fixture
        visit.page_errors.append(f"could not open the page: {exc}")
        visit.report = dict(EMPTY_REPORT)
        return None
    if path in shots:
        # A chapter is long: its first screen, and its first figure on its own.
        page.screenshot(path=str(ARTIFACTS / f"book-{shots[path]}.png"), full_page=path not in chapters)
        figure = page.locator("main figure").first
        if path in chapters and figure.count():
            figure.scroll_into_view_if_needed()
            figure.screenshot(path=str(ARTIFACTS / "book-chapter-figure.png"))
    return Visit(path, visit.report, list(visit.console_errors), list(visit.page_errors),
                 list(visit.external_requests), list(visit.failed))


@pytest.fixture(scope="module")
def page_visits(book, context, server) -> tuple[dict[str, Visit], dict[str, "AxeVisit"]]:
    """Open every page of the book once: record what happened (``visits``), then analyse it with axe-core.

    The analysis (``axe_visits``: light, then dark) runs on the page as loaded for the record. The chapter
    with the most code blocks is opened a second time, for the parts every page repeats (REPEATED_PARTS).
    """
    ARTIFACTS.mkdir(exist_ok=True)
    chapters = _chapter_paths(book)
    shots = dict(SCREENSHOTS)
    if chapters:
        shots[chapters[0]] = "chapter"
    exercise_pages = [f"{name}.html" for name in book.docnames if name.startswith("book/exercises/")]
    if exercise_pages:
        shots[exercise_pages[0]] = "exercise-page"
    script = _axe_script()
    visits, axe_visits = {}, {}
    for path in _page_paths(book):
        page = context.new_page()
        watched = Visit(path)
        _watch(page, watched, server)
        recorded = _record(page, path, watched, shots, chapters, server)
        visits[path], axe_visits[path] = recorded or watched, AxeVisit(path)
        if recorded is None:
            axe_visits[path].error = "could not analyse the page: " + watched.page_errors[-1]
        else:
            _analyse(page, axe_visits[path], script, {"exclude": [[s] for s in REPEATED_PARTS]})
        page.close()
    if chapters:
        code_page = max(chapters, key=lambda path: visits[path].report["codeBlocks"])
        page = context.new_page()
        try:
            page.goto(server + code_page, wait_until="load")
        except Exception as exc:  # reported by the test, like any other page that cannot be analysed
            axe_visits[code_page].error = f"could not analyse the page: {exc}"
        else:
            _analyse(page, axe_visits[code_page], script, {"include": [[s] for s in REPEATED_PARTS]})
        page.close()
    return visits, axe_visits


@pytest.fixture(scope="module")
def visits(page_visits) -> dict[str, Visit]:
    """What opening each page recorded: console errors, requests, typeset math, images, links."""
    return page_visits[0]


def _chapter_paths(book) -> list[str]:
    return [f"{name}.html" for name in book.docnames
            if (book.source / f"{name}.md").exists()
            and "```{code-cell}" in (book.source / f"{name}.md").read_text(encoding="utf8")]


def _report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{path}:\n  " + "\n  ".join(items) for path, items in problems.items() if items)


# --- every page ----------------------------------------------------------------------

def test_no_console_errors_on_any_page(visits):
    problems = {path: [f"console error: {e}" for e in v.console_errors] + [f"uncaught: {e}" for e in v.page_errors]
                for path, v in visits.items()}
    assert not any(problems.values()), _report(problems)


def test_every_page_works_offline(visits):
    """No request to another host (they are refused), and every request to the book succeeds."""
    problems = {path: [f"requests another host: {u}" for u in v.external_requests] + [f"failed: {f}" for f in v.failed]
                for path, v in visits.items()}
    assert not any(problems.values()), _report(problems)


def test_math_is_typeset_by_mathjax_on_every_page(visits):
    problems = {}
    for path, visit in visits.items():
        report, items = visit.report, []
        if report["mathElements"]:
            if not (report["mathjax"] or "").startswith("3."):
                items.append(f"MathJax 3 did not load (MathJax.version = {report['mathjax']!r})")
            items += [f"math not typeset: {m!r}" for m in report["untypesetMath"]]
            items += [f"MathJax error: {e!r}" for e in report["mathErrors"]]
        items += [f"raw TeX in the text: {m.group(0)[:60]!r}" for m in RAW_TEX.finditer(report["text"])]
        problems[path] = items
    assert not any(problems.values()), _report(problems)
    assert sum(v.report["typeset"] for v in visits.values()) > 0, "no page of the book has typeset math"


def test_every_image_loads_and_every_figure_has_a_size(visits):
    problems = {}
    for path, visit in visits.items():
        items = []
        for image in visit.report["images"]:
            if not image["loaded"]:
                items.append(f"image does not load: {image['src']}")
            elif image["inContent"] and (image["width"] <= 0 or image["height"] <= 0):
                items.append(f"image shown with zero size: {image['src']}")
        problems[path] = items
    assert not any(problems.values()), _report(problems)


def test_code_cells_have_copy_buttons(visits):
    problems = {path: [f"{v.report['codeBlocks']} code blocks but {v.report['copyButtons']} copy buttons"]
                for path, v in visits.items() if v.report["copyButtons"] != v.report["codeBlocks"]}
    assert not problems, _report(problems)
    assert any(v.report["codeBlocks"] for v in visits.values()), "no code block in the whole book"


# --- interaction -----------------------------------------------------------------------

def _title_term(title: str) -> str:
    """A word of a page's title to search for: its longest word (titles are indexed with a bonus)."""
    words = re.findall(r"[A-Za-z]{4,}", title.split("—")[0].split("|")[0])
    return max(words, key=len) if words else title


def test_search_box_finds_every_chapter(book, context, server, visits):
    chapters = _chapter_paths(book)
    assert chapters, "no chapter (a page with code cells) to search for"
    page = context.new_page()
    visit = Visit("search")
    _watch(page, visit, server)
    missing = []
    for number, chapter in enumerate(chapters):
        term = _title_term(visits[chapter].report["title"])
        if number == 0:
            # The way a reader searches: the search box of a page, then Enter.
            page.goto(server + chapter)
            page.keyboard.press("Control+k")
            box = page.locator("input[name='q']:visible").first
            box.fill(term)
            box.press("Enter")
            page.wait_for_url(re.compile(r"search\.html\?q="))
        else:
            page.goto(server + f"search.html?q={term}")
        page.wait_for_function(
            "() => /Search finished|found/.test((document.querySelector('#search-results') || {}).textContent || '')"
        )
        hrefs = page.eval_on_selector_all("#search-results a[href]", "els => els.map(e => e.getAttribute('href'))")
        if not any(h.split("?")[0].split("#")[0].endswith(chapter) for h in hrefs):
            missing.append(f"searching {term!r} does not list {chapter} (results: {hrefs[:10]})")
        if number == 0:
            page.screenshot(path=str(ARTIFACTS / "book-search.png"))
    page.close()
    assert not missing, "\n".join(missing)
    on_search_page = [e for e in visit.console_errors + visit.page_errors if "search.html" in e]
    assert not on_search_page, on_search_page


def test_copy_button_copies_the_code(book, context, server):
    chapters = _chapter_paths(book)
    assert chapters, "no chapter (a page with code cells)"
    page = context.new_page()
    page.goto(server + chapters[0])
    block = page.locator("main div.cell_input div.highlight").first
    block.hover()
    block.locator("button.copybtn").click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    shown = block.locator("pre").inner_text()
    page.close()
    assert copied.strip() == shown.strip()


def test_dark_mode_switch(book, context, server):
    chapters = _chapter_paths(book) or ["book/index.html"]
    page = context.new_page()
    page.goto(server + chapters[0])
    light = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    for _ in range(3):  # the theme's button cycles light -> dark -> system
        if page.evaluate("() => document.documentElement.dataset.theme") == "dark":
            break
        page.locator("button.theme-switch-button:visible").first.click()
    theme = page.evaluate("() => document.documentElement.dataset.theme")
    dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.screenshot(path=str(ARTIFACTS / "book-chapter-dark.png"))
    page.evaluate("() => localStorage.clear()")
    page.close()
    assert theme == "dark" and dark != light, f"theme {theme!r}, background {light} -> {dark}"


# --- launch buttons and downloads ---------------------------------------------------

def _repository(book) -> tuple[str, str]:
    config = yaml.safe_load((book.source / "_config.yml").read_text(encoding="utf8"))
    return config["repository"]["url"].rstrip("/"), str(config["repository"].get("branch", "main"))


def _launch_target(url: str, repo_url: str, branch: str) -> tuple[str, str] | None:
    """(service, path in the repository) of a Binder/Colab/GitHub link to this repository, else None."""
    org_repo = urlsplit(repo_url).path.strip("/")
    parts = urlsplit(url)
    if parts.netloc == "mybinder.org" and parts.path.startswith("/v2/"):
        prefix = f"/v2/gh/{org_repo}/{branch}"
        if not parts.path.startswith(prefix):
            return "binder", f"<another repository or branch: {parts.path}>"
        urlpath = parse_qs(parts.query).get("urlpath", [""])[0]
        return "binder", re.sub(r"^(lab/tree|tree|notebooks)/", "", unquote(urlpath))
    if parts.netloc == "colab.research.google.com" and parts.path.startswith("/github/"):
        prefix = f"/github/{org_repo}/blob/{branch}/"
        if not parts.path.startswith(prefix):
            return "colab", f"<another repository or branch: {parts.path}>"
        return "colab", unquote(parts.path[len(prefix):])
    if url.rstrip("/").startswith(repo_url):
        rest = url.rstrip("/")[len(repo_url):]
        match = re.match(r"^/(?:blob|tree|edit)/([^/]+)/(.+)$", rest)
        if rest == "":
            return "github", ""
        if match and match.group(1) == branch:
            return "github", unquote(match.group(2))
        return "github", f"<not a file on branch {branch}: {rest}>"
    return None


def test_launch_links_point_to_files_of_this_repository(book, visits):
    """Binder/Colab/GitHub links name this repository, its branch and a file that exists in it."""
    repo_url, branch = _repository(book)
    problems, seen = {}, {}
    for path, visit in visits.items():
        items = []
        for link in visit.report["links"]:
            target = _launch_target(link["href"], repo_url, branch)
            if target is None:
                continue
            service, rel = target
            seen.setdefault(path, set()).add(service)
            if rel and not (book.source / rel).exists():
                items.append(f"{service} link to {rel!r}, not a file of the repository ({link['href']})")
            if service == "colab" and not rel.endswith(".ipynb"):
                items.append(f"Colab opens only .ipynb files: {link['href']}")
        problems[path] = items
    for chapter in _chapter_paths(book):
        if "binder" not in seen.get(chapter, set()):
            problems.setdefault(chapter, []).append("no Binder launch button")
    for notebook in sorted((book.source / "exercises").glob("*.ipynb")):
        page = f"book/exercises/{notebook.stem}.html"
        if not {"binder", "colab"} <= seen.get(page, set()):
            problems.setdefault(page, []).append(f"expected Binder and Colab links, found {sorted(seen.get(page, []))}")
    assert not any(problems.values()), _report(problems)


def test_download_links_serve_the_notebooks(book, context, server, visits):
    """Exercise downloads are exactly exercises/*.ipynb; a chapter's downloads (.md, .ipynb) are served."""
    problems = []
    for path, visit in visits.items():
        for link in visit.report["links"]:
            href = link["href"]
            if not href.startswith(server) or not re.search(r"/(_downloads|_sources)/", href):
                continue
            response = context.request.get(href)
            if not response.ok:
                problems.append(f"{path}: {href} -> HTTP {response.status}")
                continue
            if "/_downloads/" in href and href.endswith(".ipynb"):
                name = Path(urlsplit(href).path).name
                if response.body() != (book.source / "exercises" / name).read_bytes():
                    problems.append(f"{path}: {href} is not exercises/{name}")
                json.loads(response.text())
    for chapter in _chapter_paths(book):
        hrefs = [link["href"] for link in visits[chapter].report["links"]]
        if not any("/_sources/" in h and h.endswith(".ipynb") for h in hrefs):
            problems.append(f"{chapter}: no .ipynb download of the chapter")
    assert not problems, "\n".join(problems)


# --- accessibility: axe-core in light and dark mode, keyboard ---------------------------
#
# axe-core (Deque, MPL-2.0) is the script bundled in the PyPI package axe-playwright-python,
# injected into each page and run there: every rule tagged WCAG 2.0/2.1 level A or AA.
# The structure of a page does not change with the theme, so dark mode reruns only the
# rules that read colours, on the same loaded page (no second visit).
#
# Two parts of a page repeat the same markup on every page and hold most of its elements
# (a chapter has ~13 000: ~5 000 highlighted code tokens, ~7 000 MathJax glyph elements):
# code blocks (the theme's Pygments colours) and typeset formulas (glyphs drawn by CSS; the
# words a screen reader gets are the assistive MathML, counted below). They are analysed,
# in both modes, on the chapter with the most code blocks; elsewhere they are left out,
# which takes the time of the analysis from minutes to seconds.

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# axe's best practices that the book's own sources decide (its headings and image texts);
# "region" (content outside landmarks) is left out: the theme's sidebar decides it.
BOOK_RULES = ["heading-order", "page-has-heading-one", "empty-heading", "landmark-one-main", "image-redundant-alt"]
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
# Violations that come from the theme and cannot be fixed from the book: (rule id, CSS selector
# of the element as axe reports it) -> why. Everything else fails the test.
THEME_EXCEPTIONS: dict[tuple[str, str], str] = {}

# The rules of the given tags (experimental ones left out) and, for runs that name rules, the run itself.
AXE_RULES_JS = "tags => axe.getRules(tags).filter(r => !r.tags.includes('experimental')).map(r => r.ruleId)"
AXE_RUN_JS = """([rules, context]) => axe.run(context || document,
  {runOnly: {type: 'rule', values: rules}, resultTypes: ['violations']})"""
REPEATED_PARTS = ["div.highlight", "mjx-container"]
# The theme fades colours when the mode changes; axe must measure the final colours, not a blend.
NO_TRANSITIONS_CSS = "*, *::before, *::after { transition: none !important; animation: none !important; }"
SET_THEME_JS = """mode => {
  document.documentElement.dataset.theme = mode;
  document.documentElement.dataset.mode = mode;
  return getComputedStyle(document.body).backgroundColor;
}"""
MATH_TEXT_JS = """() => ({
  typeset: document.querySelectorAll('main mjx-container').length,
  assistive: document.querySelectorAll('main mjx-container > mjx-assistive-mml > math').length,
})"""


def _axe_script() -> str:
    try:
        from axe_playwright_python.base import AXE_SCRIPT
    except ImportError:
        pytest.fail("The accessibility tests need axe-core, bundled in the Python package axe-playwright-python "
                    "(pinned in requirements.lock): `.venv/bin/pip install -r requirements.lock`.")
    return AXE_SCRIPT


@dataclass
class AxeVisit:
    """What axe-core found on one page, in both modes."""

    path: str
    violations: list[tuple[str, str, str, str]] = field(default_factory=list)  # (mode, rule, target, summary)
    backgrounds: dict[str, str] = field(default_factory=dict)
    math: dict = field(default_factory=dict)
    error: str = ""


def _violations(result: dict, mode: str) -> list[tuple[str, str, str, str]]:
    found = []
    for rule in result["violations"]:
        for node in rule["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            summary = " ".join((node.get("failureSummary") or rule["help"]).split())
            found.append((mode, rule["id"], target, summary[:200]))
    return found


def _analyse(page, visit: AxeVisit, script: str, context: dict) -> None:
    """axe-core on the loaded page, light then dark, within ``context`` (include/exclude selectors)."""
    try:
        page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        if not visit.math:
            visit.math = page.evaluate(MATH_TEXT_JS)
        page.add_style_tag(content=NO_TRANSITIONS_CSS)
        page.evaluate(script)
        all_rules = page.evaluate(AXE_RULES_JS, WCAG_TAGS) + BOOK_RULES
        for mode, rules in (("light", all_rules), ("dark", COLOUR_RULES)):
            visit.backgrounds[mode] = page.evaluate(SET_THEME_JS, mode)
            visit.violations += _violations(page.evaluate(AXE_RUN_JS, [rules, context]), mode)
    except Exception as exc:  # a page that cannot be analysed fails the test, not the fixture
        visit.error = f"could not analyse the page: {exc}"


@pytest.fixture(scope="module")
def axe_visits(page_visits) -> dict[str, AxeVisit]:
    """Every page of the book analysed by axe-core, light then dark, on the visit of ``page_visits``."""
    return page_visits[1]


def test_no_wcag_a_or_aa_violation_on_any_page_in_light_or_dark_mode(axe_visits):
    problems = {}
    for path, visit in axe_visits.items():
        items = [visit.error] if visit.error else []
        items += [f"[{mode}] {rule} at {target}: {summary}" for mode, rule, target, summary in visit.violations
                  if (rule, target) not in THEME_EXCEPTIONS]
        problems[path] = items
    assert not any(problems.values()), "axe-core (WCAG 2.1 A/AA):\n" + _report(problems)


def test_dark_mode_was_really_analysed(axe_visits):
    """The second run saw the dark theme: every page's background changed when the theme did."""
    same = [path for path, v in axe_visits.items() if not v.error and v.backgrounds["light"] == v.backgrounds["dark"]]
    assert not same, f"background unchanged in dark mode on: {same}"


def test_axe_reports_an_image_without_alternative_text(book, context, server):
    """The check has teeth: the same engine, on a chapter given one image with no alt, reports it."""
    page = context.new_page()
    page.goto(server + (_chapter_paths(book) or ["book/index.html"])[0], wait_until="load")
    page.evaluate(_axe_script())
    page.evaluate("""() => { const img = document.createElement('img');
      img.src = document.images[0] ? document.images[0].src : '';
      document.querySelector('main').appendChild(img); }""")
    result = page.evaluate(AXE_RUN_JS, [["image-alt"], None])
    page.close()
    assert [rule["id"] for rule in result["violations"]] == ["image-alt"]


def test_every_formula_carries_assistive_mathml(axe_visits):
    """MathJax adds a hidden MathML copy of each typeset formula, which screen readers read."""
    problems = {path: [f"{v.math.get('assistive')} of {v.math.get('typeset')} formulas have assistive MathML"]
                for path, v in axe_visits.items()
                if v.math and v.math["assistive"] != v.math["typeset"]}
    assert not problems, _report(problems)
    assert sum(v.math.get("typeset", 0) for v in axe_visits.values()) > 0, "no typeset formula in the book"


FOCUSED_JS = """() => { const e = document.activeElement; const box = e.getBoundingClientRect();
  return {label: e.getAttribute('aria-label') || e.getAttribute('title') || '', href: e.getAttribute('href') || '',
          tag: e.tagName.toLowerCase(), name: e.getAttribute('name') || '', sidebar: !!e.closest('.bd-sidebar-primary'),
          expanded: e.getAttribute('aria-expanded'), visible: box.width > 0 && box.height > 0}; }"""
TAB_LIMIT = 40  # the header's buttons come after the sidebar's links: about 20 stops on this book


def _tab_to(page, wanted, what):
    """Press Tab until ``wanted(focused)``; the element reached must be visible."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if wanted(focused):
            assert focused["visible"], f"{what} takes the keyboard focus but is not visible: {focused}"
            return focused
    raise AssertionError(f"{what} is not reached within {TAB_LIMIT} presses of Tab")


def test_keyboard_search_from_a_chapter(book, context, server):
    page = context.new_page()
    page.goto(server + _chapter_paths(book)[0], wait_until="load")
    _tab_to(page, lambda f: f["label"] == "Search" and f["sidebar"], "the sidebar's search button")
    page.keyboard.press("Enter")
    focused = page.evaluate(FOCUSED_JS)
    assert focused["tag"] == "input" and focused["name"] == "q", f"Enter did not open the search box: {focused}"
    page.keyboard.type("kernel")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=kernel"))
    page.close()


def test_keyboard_sidebar_link_opens_the_next_chapter(book, context, server):
    chapters = _chapter_paths(book)
    assert len(chapters) >= 2, "need two chapters"
    target = Path(chapters[1]).name
    page = context.new_page()
    page.goto(server + chapters[0], wait_until="load")
    _tab_to(page, lambda f: f["sidebar"] and f["href"] == target, f"the sidebar's link to {target}")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(target) + "$"))
    page.close()


@pytest.mark.parametrize("menu, item", [("Launch interactive content", "mybinder.org/v2/"),
                                        ("Download this page", ".ipynb")])
def test_keyboard_opens_the_launch_and_download_menus_and_follows_a_link(book, context, server, menu, item):
    chapter = _chapter_paths(book)[0]
    page = context.new_page()
    page.goto(server + chapter, wait_until="load")
    _tab_to(page, lambda f: f["label"] == menu, f"the {menu!r} button")
    page.keyboard.press("Enter")
    assert page.evaluate(FOCUSED_JS)["expanded"] == "true", f"Enter does not open the {menu!r} menu"
    link = _tab_to(page, lambda f: item in f["href"], f"the {item!r} link of the {menu!r} menu")
    address = unquote(urljoin(server + chapter, link["href"]))
    # The link opens a new tab; the request it makes is the proof (Binder's is refused: the tests stay offline).
    before = set(context.pages)
    with context.expect_event("request", predicate=lambda r: unquote(r.url) == address):
        page.keyboard.press("Enter")
    for opened in set(context.pages) - before:
        opened.close()
    page.close()
