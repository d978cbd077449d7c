"""The report as one self-contained HTML page: inline CSS, images embedded as base64.

The page needs no server and no network: it can be mailed, attached to a CI run or opened
from disk. Every text that comes from the run (configuration values, names) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Section", "flatten", "render_page"]


@dataclass(frozen=True)
class Section:
    """One part of the report: a title, an optional figure, table and explanatory text.

    ``png`` is the figure's PNG bytes (None if it could not be drawn; ``note`` then says
    why); ``table`` is trusted HTML built by this module (`per_class_table`).
    """

    title: str
    description: str = ""
    png: bytes | None = None
    file_name: str | None = None
    table: str | None = None
    note: str | None = None


def flatten(data: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as ``(dotted.key, value)`` rows; lists are shown as compact JSON."""
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(flatten(value, prefix=f"{name}."))
        elif isinstance(value, float):
            rows.append((name, f"{value:.6g}"))
        elif isinstance(value, (list, tuple)):
            rows.append((name, json.dumps(value)))
        else:
            rows.append((name, "—" if value is None else str(value)))
    return rows


def key_value_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def per_class_table(per_class: Sequence[Mapping]) -> str:
    """Rows of ``{"name", "precision", "recall", "support"}`` (None shown as a dash)."""

    def percent(value) -> str:
        return "—" if value is None else f"{100 * float(value):.2f}%"

    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>support</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(str(row.get('name', row.get('class'))))}</td>"
        f"<td>{percent(row.get('precision'))}</td><td>{percent(row.get('recall'))}</td>"
        f"<td>{html.escape(str(row.get('support', '—')))}</td></tr>"
        for row in per_class
    )
    return f'<table class="grid">{head}{body}</table>'


_CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #dde2ea; --accent: #2457d6; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--fg); background: #f5f7fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 0 0 8px; font-size: 19px; }
.sub { color: var(--muted); margin: 0 0 20px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }
.card { background: white; border: 1px solid var(--line); border-radius: 10px;
        padding: 12px 16px; min-width: 150px; }
.card .v { font-size: 24px; font-weight: 600; color: var(--accent); }
.card .k { color: var(--muted); font-size: 13px; }
section { background: white; border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 20px; margin-bottom: 18px; overflow-x: auto; }
section p { color: var(--muted); margin: 0 0 10px; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 13px; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 2px 16px 2px 0;
              vertical-align: top; white-space: nowrap; }
table.kv td { font-family: ui-monospace, monospace; word-break: break-all; }
table.grid th, table.grid td { border: 1px solid var(--line); padding: 3px 10px;
                               text-align: right; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 18px; }
.note { color: #8a5a00; }
.files { font-size: 12px; color: var(--muted); }
"""


def _section_html(section: Section) -> str:
    parts = [f"<section><h2>{html.escape(section.title)}</h2>"]
    if section.description:
        parts.append(f"<p>{html.escape(section.description)}</p>")
    if section.png is not None:
        data = base64.b64encode(section.png).decode("ascii")
        parts.append(f'<img alt="{html.escape(section.title)}" src="data:image/png;base64,{data}">')
        if section.file_name:
            parts.append(f'<div class="files">{html.escape(section.file_name)}</div>')
    if section.table:
        parts.append(section.table)
    if section.note:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def render_page(
    title: str,
    subtitle: str,
    headline: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    config: Mapping | None,
    metrics: Mapping | None,
) -> str:
    """The whole report page.

    Args:
        title, subtitle: page heading.
        headline: a few ``(label, value)`` pairs shown as cards (e.g. test accuracy).
        sections: figures and tables, in order.
        config: the run's configuration (config.json), shown as a table; None to omit.
        metrics: the run's final metrics (metrics.json) as a table; None to omit. Large
            arrays (the confusion matrix, per-class rows) are left to their own sections.
    """
    cards = "".join(
        f'<div class="card"><div class="v">{html.escape(v)}</div>'
        f'<div class="k">{html.escape(k)}</div></div>'
        for k, v in headline
    )
    tables = []
    if metrics:
        scalars = {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "per_class")}
        tables.append(f"<div><h2>Final metrics</h2>{key_value_table(flatten(scalars))}</div>")
    if config:
        tables.append(f"<div><h2>Configuration</h2>{key_value_table(flatten(config))}</div>")
    info = f'<section class="two">{"".join(tables)}</section>' if tables else ""
    body = "".join(_section_html(s) for s in sections)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>"
        f'<p class="sub">{html.escape(subtitle)}</p>'
        f'<div class="cards">{cards}</div>{info}{body}</main></body></html>\n'
    )
