"""Small fixes to what the rendered book's pages load, so that a page opens with
no error in the browser console (``tests/book/test_book_browser.py`` checks this).

sphinx-thebe 0.3.1 adds its inline configuration script once to Sphinx's
registry and once to the HTML builder, and under Sphinx 7.4 both copies end up
on every page; the second ``const THEBE_JS_URL = ...`` then throws "Identifier
'THEBE_JS_URL' has already been declared". Each page keeps the first copy of
every script.
"""
from __future__ import annotations


def _script_key(script):
    attributes = getattr(script, "attributes", {}) or {}
    return (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))


def keep_one_copy_of_each_script(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # After every other handler (default priority 500) has added its scripts.
    app.connect("html-page-context", keep_one_copy_of_each_script, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
