"""Every image of the built book has a text alternative a blind reader can use.

Static checks of the HTML of the session's one book build (the fixture
``book_html``, see conftest.py and tests/bookbuild.py); axe-core's checks of
the same pages in Chromium, light and dark, are in tests/book/test_book_browser.py.

A chapter's figure gets its alternative text from its code cell's metadata,
next to its caption (MyST-NB)::

    mystnb:
      image:
        alt: "What is plotted, and what it shows."
      figure:
        caption: ...

Without it MyST-NB writes the image's file path, ``../_images/<sha256>.png``,
which a screen reader reads out as a hash.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

# An alternative text that is a file name, a path or a hash says nothing about the image
# (a slash inside a sentence, as in "slope -1/2", is fine).
IMAGE_FILE = re.compile(r"\.(png|jpe?g|svg|gif|webp|pdf)\b", re.IGNORECASE)
HASH = re.compile(r"\b[0-9a-f]{16,}\b", re.IGNORECASE)


def file_like(alt: str) -> bool:
    """Whether ``alt`` is a file name, a path or a hash rather than words."""
    one_token = len(alt.split()) == 1
    return bool(IMAGE_FILE.search(alt) or HASH.search(alt) or (one_token and re.search(r"[/\\]", alt)))


# A figure's text says what is plotted and what it shows: a sentence, not a label such as "plot".
MIN_FIGURE_ALT_WORDS = 12


def _pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_"))


def test_file_like_tells_file_names_from_sentences():
    """The check itself: MyST-NB's default alt and paths are caught, alt texts with slopes are not."""
    assert file_like("../_images/ffb234aa0e8b4094c573bc12dec52cd6265175e43584c16c.png")
    assert file_like("fig1.png") and file_like("_static/images/plot") and file_like("ffb234aa0e8b4094c5")
    assert not file_like("Log-log plot of the error against width, with slopes -1/2 and -1.")


def _images(book_html):
    for page in _pages(book_html):
        soup = BeautifulSoup(page.read_text(encoding="utf8"), "html.parser")
        for img in soup.find_all("img"):
            yield page.relative_to(book_html).as_posix(), img


def test_every_image_has_an_alternative_text_that_is_not_a_file_name(book_html):
    problems = []
    for page, img in _images(book_html):
        alt = img.get("alt")
        if alt is None:
            problems.append(f"{page}: <img src={img.get('src')!r}> has no alt attribute")
        elif not alt.strip():
            problems.append(f"{page}: <img src={img.get('src')!r}> has an empty alt")
        elif file_like(alt):
            problems.append(f"{page}: <img src={img.get('src')!r}> has a file name or hash as alt: {alt[:80]!r}")
    assert not problems, (
        "images without a usable text alternative (set `mystnb: image: alt:` in the figure's cell metadata):\n"
        + "\n".join(problems)
    )


def test_every_figure_describes_what_it_plots(book_html):
    """A figure's image (inside <figure>) has an alt of at least MIN_FIGURE_ALT_WORDS words, unlike its caption."""
    problems, figures = [], 0
    for page, img in _images(book_html):
        figure = img.find_parent("figure")
        if figure is None:
            continue
        figures += 1
        alt = " ".join((img.get("alt") or "").split())
        caption = figure.find("figcaption")
        caption_text = " ".join(caption.get_text(" ").split()) if caption else ""
        if len(alt.split()) < MIN_FIGURE_ALT_WORDS:
            problems.append(f"{page}: figure alt of {len(alt.split())} words: {alt[:80]!r}")
        elif caption_text and alt in caption_text:
            problems.append(f"{page}: figure alt repeats its caption: {alt[:80]!r}")
    assert figures > 0, "the book has no figure at all"
    assert not problems, "\n".join(problems)
