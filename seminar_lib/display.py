"""Tables for people: aligned text that fits a terminal's width and the same table as HTML.

A :class:`Grid` is row labels plus column groups; a group is a title over one or more columns
(e.g. ``ndcg@10`` over ``value``, ``low``, ``high``), each column a header and its cells, already
formatted. :meth:`Grid.text` lays the groups side by side and starts a new block of lines below
when the next group would pass ``width`` characters, so a wide table is split, never wrapped;
:meth:`Grid.html` makes one HTML table per block the same way, numbers right-aligned in tabular
figures. Cells are strings here: the numbers stay numbers in the frames the library returns, and
only their display is formatted.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 100  # characters of a text block: readable in a notebook, a terminal or a log
GAP = 2  # spaces between two columns


def format_number(value: float | int | None, digits: int) -> str:
    """``value`` with ``digits`` decimals (``-`` for a missing or non-finite one).

    >>> format_number(0.5, 4), format_number(None, 4), format_number(float("nan"), 2), format_number(3, 2)
    ('0.5000', '-', '-', '3.00')
    """
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):.{digits}f}"


@dataclass(frozen=True)
class Column:
    """One column: its header (may be empty) and its cells, formatted."""

    header: str
    cells: Sequence[str]


@dataclass(frozen=True)
class Group:
    """A title over adjacent columns (one column whose header is the title when it stands alone)."""

    title: str
    columns: Sequence[Column]

    def single(self) -> bool:
        """One column headed by the group's title."""
        return len(self.columns) == 1 and self.columns[0].header in ("", self.title)

    def width(self) -> int:
        inner = sum(self._widths()) + GAP * (len(self.columns) - 1)
        return max(inner, len(self.title))

    def _widths(self) -> list[int]:
        return [max([len(c.header)] + [len(s) for s in c.cells]) for c in self.columns]

    def column_widths(self) -> list[int]:
        """Widths of the columns, the last widened so the group is as wide as its title."""
        widths = self._widths()
        widths[-1] += self.width() - (sum(widths) + GAP * (len(widths) - 1))
        return widths


@dataclass(frozen=True)
class Grid:
    """Row labels under ``label``, then column groups; see the module docstring."""

    label: str
    rows: Sequence[str]
    groups: Sequence[Group]

    def __post_init__(self) -> None:
        for group in self.groups:
            for column in group.columns:
                if len(column.cells) != len(self.rows):
                    raise ValueError(f"column {group.title}/{column.header} has {len(column.cells)} cells "
                                     f"for {len(self.rows)} rows")

    def _label_width(self) -> int:
        return max([len(self.label)] + [len(r) for r in self.rows])

    def blocks(self, width: int = WIDTH) -> list[list[Group]]:
        """The groups in blocks whose text lines stay within ``width`` (at least one group a block)."""
        blocks: list[list[Group]] = [[]]
        used = self._label_width()
        for group in self.groups:
            need = GAP + group.width()
            if blocks[-1] and used + need > width:
                blocks.append([])
                used = self._label_width()
            blocks[-1].append(group)
            used += need
        return blocks if blocks[0] else []

    def _two_header_rows(self) -> bool:
        return not all(g.single() for g in self.groups)

    def text(self, width: int = WIDTH) -> str:
        """Aligned text, split into blocks separated by a blank line."""
        lw = self._label_width()
        two = self._two_header_rows()
        out: list[str] = []
        for block in self.blocks(width):
            titles = [(" " if two else self.label).ljust(lw)]
            headers = [self.label.ljust(lw)]
            body = [[r.ljust(lw)] for r in self.rows]
            for group in block:
                widths = group.column_widths()
                if not two:
                    titles.append(group.title.rjust(group.width()))
                else:  # a lone column's header sits in the second row, like the row labels' header
                    titles.append(" " * group.width() if group.single() else group.title.center(group.width()))
                headers.append((" " * GAP).join(c.header.rjust(w) for c, w in zip(group.columns, widths)))
                for i, line in enumerate(body):
                    line.append((" " * GAP).join(c.cells[i].rjust(w) for c, w in zip(group.columns, widths)))
            lines = [(" " * GAP).join(titles)] + ([(" " * GAP).join(headers)] if two else [])
            lines += [(" " * GAP).join(parts) for parts in body]
            out.append("\n".join(line.rstrip() for line in lines))
        return "\n\n".join(out)

    def html(self, width: int = WIDTH) -> str:
        """One HTML table per text block; numbers right-aligned, interval columns in grey."""
        two = self._two_header_rows()
        tables = []
        for block in self.blocks(width):
            head = [f'<th style="text-align:left"{" rowspan=2" if two else ""}>{html.escape(self.label)}</th>']
            sub = []
            for group in block:
                if two and group.single():
                    head.append(f'<th style="text-align:right" rowspan=2>{html.escape(group.title)}</th>')
                elif two:
                    head.append(f'<th colspan="{len(group.columns)}" style="text-align:center">'
                                f"{html.escape(group.title)}</th>")
                    sub += [f'<th style="text-align:right">{html.escape(c.header)}</th>' for c in group.columns]
                else:
                    head.append(f'<th style="text-align:right">{html.escape(group.title)}</th>')
            rows = []
            for i, label in enumerate(self.rows):
                cells = [f'<td style="text-align:left">{html.escape(label)}</td>']
                for group in block:
                    for j, c in enumerate(group.columns):
                        grey = "color:#777;" if j > 0 else ""
                        cells.append(f'<td style="text-align:right;{grey}">{html.escape(c.cells[i])}</td>')
                rows.append(f"<tr>{''.join(cells)}</tr>")
            header = f"<tr>{''.join(head)}</tr>" + (f"<tr>{''.join(sub)}</tr>" if two else "")
            tables.append('<table style="font-variant-numeric:tabular-nums">'
                          f"<thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>")
        return "\n".join(tables)
