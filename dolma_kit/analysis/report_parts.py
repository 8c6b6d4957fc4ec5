"""The building blocks of report.html: page CSS, number formatting, escaped tables, embedded PNGs.

Shared by the section renderers (`report_html`, `report_stages`, `report_training`) so that every number on the
page is formatted one way: counts with thousands separators and never rounded, fractions to 4 significant digits.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em}.meta{color:#555}.empty{color:#777;font-style:italic}
table{border-collapse:collapse;margin:.8em 0}th,td{padding:.25em .7em;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;border-top:2px solid #ccc}.bad{color:#b00;font-weight:600}.ok{color:#080}
img{max-width:100%;display:block;margin:.5em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:0 1.5em}
.grid table{font-size:12px;margin:.3em 0}.grid td,.grid th{padding:.15em .35em;white-space:nowrap}
.grid h3{margin:.6em 0 0}.grid p{margin:0}h3{margin-bottom:.2em}
table.stages{font-size:13px;width:100%}table.stages th{white-space:nowrap}
table.stages td,table.stages th{padding:.25em .45em}code{background:#f3f3f3;padding:0 .25em}
table.examples{font-size:12px;width:100%}table.examples td{vertical-align:top}
table.examples .sample{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace}
details{margin:.3em 0 1em}summary{cursor:pointer;color:#036}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(value: int | float) -> str:
    """Counts with thousands separators; fractions to 4 significant digits."""
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "–"


def img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    total: Sequence[object] | None = None,
    css_class: str = "",
) -> str:
    """An HTML table; int/float cells are right-aligned numbers, other cells escaped text."""

    def cells(row: Sequence[object], tag: str = "td") -> str:
        out = []
        for cell in row:
            if isinstance(cell, (int, float)) and not isinstance(cell, bool):
                out.append(f'<{tag} class="n">{num(cell)}</{tag}>')
            elif isinstance(cell, Raw):
                out.append(f"<{tag}>{cell.html}</{tag}>")
            else:
                out.append(f"<{tag}>{esc(cell)}</{tag}>")
        return "".join(out)

    body = "".join(f"<tr>{cells(r)}</tr>" for r in rows)
    if total is not None:
        body += f'<tr class="total">{cells(total)}</tr>'
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    attr = f' class="{esc(css_class)}"' if css_class else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Raw:
    """Trusted HTML for a table cell (built here from escaped parts)."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def empty(message: str) -> str:
    return f'<p class="empty">{esc(message)}</p>'
