"""Data Docs views that escape every value a validation result carries.

GX 1.24 renders its Data Docs with Jinja templates named `*.j2`, which its
`select_autoescape(["html", "xml"])` does not cover: nothing is escaped by the
template engine. GX escapes the parameters of its string templates itself, but
a plain string reaches the page raw: the cells of the "unexpected values"
table (the failing values of a delivery, as sent), an observed value, the
items of a list. A delivery whose `facility_id` is `<img src=x onerror=...>`
would run script in the browser of the operator who opens the page.

These views escape every plain string (and anything printed through `str`)
before it is placed in the page. The few literal HTML snippets GX itself
puts into plain strings are kept, by exact match only. The committed context
(`expectations/gx/great_expectations.yml`, written by
`penstat.validation.gx_context.write_context`) names these classes for the
index page and for every section of the `local_site`.
"""

from __future__ import annotations

import html
from typing import Any

from great_expectations.render import RenderedComponentContent
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

try:  # the decorator GX's own filters use (jinja2 >= 3: pass_context)
    from jinja2 import pass_context
except ImportError:  # pragma: no cover - jinja2 < 3
    from jinja2 import contextfilter as pass_context  # type: ignore[attr-defined,no-redef]

MODULE = __name__
PAGE_VIEW = "EscapingPageView"
INDEX_VIEW = "EscapingIndexPageView"

# Markup that GX's own renderers place in plain strings: trusted by exact match only.
_TRUSTED_GX_MARKUP = frozenset({
    'Failed expectations <span class="mr-3 triangle"></span>',
})


def escape_text(value: object) -> str:
    """`value` as text that cannot open a tag, an attribute or an entity."""
    return html.escape(str(value), quote=True)


class _Escaping:
    """The `render_content_block` filter of GX's views, with plain content escaped."""

    @pass_context
    def render_content_block(self, jinja_context: Any, content_block: Any, index: Any = None,
                             content_block_id: Any = None,
                             render_to_markdown: bool = False) -> Any:
        if render_to_markdown:
            return super().render_content_block(  # type: ignore[misc]
                jinja_context, content_block, index, content_block_id, render_to_markdown)
        if content_block is None:
            return ""
        if isinstance(content_block, str):
            return content_block if content_block in _TRUSTED_GX_MARKUP \
                else escape_text(content_block)
        if isinstance(content_block, bool | int | float):
            return content_block
        if isinstance(content_block, list):
            rendered = ""
            for i, element in enumerate(content_block):
                block = _as_block(element)
                if block is None:
                    rendered += f"<span>{escape_text(element)}</span>"
                    continue
                child_id = f"{content_block_id}-{i}" if content_block_id else None
                rendered += str(self.render_content_block(
                    jinja_context, block, i, content_block_id=child_id))
            return rendered
        block = _as_block(content_block)
        if block is not None:
            return super().render_content_block(  # type: ignore[misc]
                jinja_context, block, index, content_block_id, render_to_markdown)
        # anything else would be printed through str(): a dict without a block type,
        # an object of the result
        return escape_text(content_block)


def _as_block(value: Any) -> dict | None:
    """A rendered content block as the dict GX's templates take, or None."""
    if isinstance(value, RenderedComponentContent):
        value = value.to_json_dict()
    if isinstance(value, dict) and value.get("content_block_type") is not None:
        return value
    return None


class EscapingPageView(_Escaping, DefaultJinjaPageView):
    """A validation result or expectation suite page."""


class EscapingIndexPageView(_Escaping, DefaultJinjaIndexPageView):
    """The index page of the site."""


def site_views() -> dict[str, Any]:
    """The `local_site` settings that make the site builders use these views."""
    page = {"module_name": MODULE, "class_name": PAGE_VIEW}
    return {
        "site_index_builder": {"view": {"module_name": MODULE, "class_name": INDEX_VIEW}},
        "site_section_builders": {section: {"view": dict(page)}
                                  for section in ("expectations", "validations", "profiling")},
    }
