"""Accessibility fixes to the HTML that the theme and Sphinx write, checked by axe-core
in ``tests/book/test_book_browser.py``.

- The sidebar's expand/collapse buttons: pydata-sphinx-theme 0.17 turns every
  table-of-contents entry with sub-pages into ``<a>title</a><details><summary>``
  whose summary holds only a chevron icon, so a screen reader announces an
  unnamed button (axe rule ``summary-name``, WCAG 4.1.2). Each such summary is
  named after its entry: "Pages under Exercise notebooks".
- The bibliography: Sphinx writes its citation list as ``role="list"`` holding
  entries of ``role="doc-biblioentry"``, a role that DPUB-ARIA 1.1 deprecates;
  the list is then a list without list items (axe rules ``aria-deprecated-role``
  and ``aria-required-children``, WCAG 1.3.1). The entries become
  ``role="listitem"``.
"""
from __future__ import annotations

import html
import re

# <a ...>title</a><details [open="open"]><summary>: an entry with sub-pages (the title may hold markup).
_TOGGLE = re.compile(
    r'(<a class="[^"]*\breference\b[^"]*" href="[^"]*">((?:(?!</a>).)*)</a>\s*<details[^>]*>)<summary>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _named_toggles(toctree_html: str) -> str:
    def name(match):
        title = " ".join(html.unescape(_TAG.sub("", match.group(2))).split())
        return f'{match.group(1)}<summary aria-label="Pages under {html.escape(title, quote=True)}">'

    return _TOGGLE.sub(name, toctree_html)


def name_sidebar_toggles(app, pagename, templatename, context, doctree):
    """Wrap the theme's ``generate_toctree_html`` so that its toggles carry a name."""
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "names_its_toggles", False):
        return

    def generate_named(*args, **kwargs):
        return _named_toggles(str(generate(*args, **kwargs)))

    generate_named.names_its_toggles = True
    context["generate_toctree_html"] = generate_named


def bibliography_entries_as_list_items(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app):
    # After pydata-sphinx-theme has put its functions into the context (default priority 500).
    app.connect("html-page-context", name_sidebar_toggles, priority=900)
    app.connect("html-page-context", bibliography_entries_as_list_items, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
