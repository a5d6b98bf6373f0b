"""The report's Markdown rendered as one self-contained HTML page (markdown-it-py; raw HTML in values
is escaped), plots embedded as ``data:`` URIs.
"""

from __future__ import annotations

import html
import secrets

from markdown_it import MarkdownIt

PNG_URI = "data:image/png;base64,"

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}"
    "table{border-collapse:collapse;margin:.5em 0;font-size:.85em;display:block;overflow-x:auto;max-width:100%}"
    "td,th{border:1px solid #999;padding:.2em .5em;text-align:left}th{background:#eee}img{max-width:100%}"
)


def render_html(title: str, markdown: str, plots: list[str]) -> str:
    """A self-contained page: the report's Markdown (GFM tables; raw HTML escaped), its style inline.

    The parser is given a short reference for each plot, and the rendered ``src`` gets the PNG back:
    scanning the base64 text made up most of the parser's time.
    """
    token = secrets.token_hex(8)
    for i, png in enumerate(plots):
        markdown = markdown.replace(f"({PNG_URI}{png})", f"(#{token}-{i})", 1)
    body = MarkdownIt("js-default").render(markdown)
    for i, png in enumerate(plots):
        body = body.replace(f'src="#{token}-{i}"', f'src="{PNG_URI}{png}"', 1)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n"
    )
