"""The judges' own chart: position bias at a glance (server-side SVG, like ratings/web/research/charts.py).

Each judge's share of decisive verdicts that went to the answer shown first, drawn as a bar from 0.5 (no
bias) with its 95% Wilson interval; red when the interval excludes 0.5, grey when it does not.
"""

from collections.abc import Sequence

from django.utils.html import escape

from ratings.web.research.charts import FONT, GRID, MUTED, svg_document

BIASED = "#c92a2a"
UNBIASED = "#868e96"


def position_bias_chart(rows: Sequence[tuple[str, float, float, float, int]], title: str):
    """rows: (label, share for the first-shown answer, lower, upper, decisive verdicts)."""
    left, right, row_h, top = 170, 200, 30, 34
    width = 760
    height = top + row_h * len(rows) + 40

    def x(v: float) -> float:
        return left + v * (width - left - right)

    body = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        stroke = MUTED if t == 0.5 else GRID
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 6}" y2="{height - 30}" stroke="{stroke}"/>')
        body.append(f'<text x="{x(t):.1f}" y="{height - 14}" text-anchor="middle" {FONT} fill="{MUTED}">{t:g}</text>')
    body.append(f'<text x="{x(0.02):.1f}" y="{top - 14}" {FONT} fill="{MUTED}">&#8592; favours the second shown</text>')
    body.append(
        f'<text x="{x(0.98):.1f}" y="{top - 14}" text-anchor="end" {FONT} fill="{MUTED}">'
        "favours the first shown &#8594;</text>"
    )
    for i, (label, share, lo, hi, n) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = BIASED if lo > 0.5 or hi < 0.5 else UNBIASED
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
        x0, x1 = sorted((x(0.5), x(share)))
        body.append(
            f'<rect x="{x0:.1f}" y="{y - 8:.1f}" width="{max(x1 - x0, 1):.1f}" height="16" fill="{colour}" '
            'fill-opacity="0.75"/>'
        )
        body.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#212529"/>')
        for edge in (lo, hi):
            xe = x(edge)
            body.append(f'<line x1="{xe:.1f}" x2="{xe:.1f}" y1="{y - 5:.1f}" y2="{y + 5:.1f}" stroke="#212529"/>')
        body.append(f'<text x="{width - right + 8}" y="{y + 4:.1f}" {FONT}>{share:.0%} first ({n} decisive)</text>')
    return svg_document(width, height, title, body)
