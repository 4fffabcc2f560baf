"""Server-side SVG charts for the research dashboards: no JavaScript, no CDN.

Every function takes plain numbers from a snapshot payload and returns escaped SVG markup; the
templates put a table with the same numbers beside each chart. Names are escaped: model names
come from uploads and imports.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
ROLE_COLOURS = {"imitation": "#d9480f", "proprietary": "#1a56db", "base": "#2b8a3e"}
MUTED = "#5f6368"
GRID = "#e3e6ea"


def svg_document(width: int, height: int, title: str, body: list[str]) -> SafeString:
    """One chart as an accessible inline SVG; every string in ``body`` must already be escaped."""
    return mark_safe(  # noqa: S308 - every piece of text below went through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if raw <= step * mult:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """log10 of the round values 1, 2, 5 x 10^k inside [10^lo, 10^hi]."""
    out = []
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = math.log10(m) + k
            if lo <= v <= hi:
                out.append(v)
    return out


def _fmt(v: float) -> str:
    if abs(v) >= 1e9:
        return f"{v / 1e9:g}B"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3 and v == int(v):
        return f"{v:g}"
    return f"{v:.3g}"


@dataclass(frozen=True)
class IntervalRow:
    label: str
    raw: tuple[float, float | None, float | None]  # rating, lower, upper (None: unbounded)
    controlled: tuple[float, float | None, float | None] | None


def interval_chart(
    rows: Sequence[IntervalRow],
    title: str,
    legend: tuple[str, str] = ("raw rating, 95% interval", "style-controlled, 95% interval"),
    x_range: tuple[float, float] | None = None,
) -> SafeString:
    """Each model's value with its 95% interval: the first series (filled circle) and the second (open diamond).

    Ratings by default (raw and style-controlled); ``legend`` names other pairs, e.g. human and automatic accuracy.
    """
    left, right, row_h, top = 170, 30, 26, 30
    width = 760
    height = top + row_h * len(rows) + 40
    # An interval end of None is one the data cannot bound: its line runs to the chart's edge.
    ends = [v for r in rows for v in r.raw] + [v for r in rows if r.controlled for v in r.controlled]
    values = [v for v in ends if v is not None]
    if x_range is not None:
        lo, hi = x_range
    else:
        lo, hi = (min(values), max(values)) if values else (900.0, 1100.0)
        pad = (hi - lo) * 0.05 or 10
        lo, hi = lo - pad, hi + pad

    def x(v: float | None, edge: float = 0.0) -> float:
        if v is None:
            return left if edge < 0 else width - right
        return left + (v - lo) / (hi - lo) * (width - left - right)

    body = []
    for t in _ticks(lo, hi):
        body.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 8}" y2="{height - 30}" stroke="{GRID}"/>')
        body.append(f'<text x="{x(t):.1f}" y="{height - 14}" text-anchor="middle" {FONT} fill="{MUTED}">{t:g}</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h + row_h / 2
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{escape(r.label)}</text>')
        rating, rlo, rhi = r.raw
        body.append(
            f'<line x1="{x(rlo, -1):.1f}" x2="{x(rhi, 1):.1f}" y1="{y - 4:.1f}" y2="{y - 4:.1f}" stroke="#1a56db"/>'
        )
        body.append(f'<circle cx="{x(rating):.1f}" cy="{y - 4:.1f}" r="4" fill="#1a56db"/>')
        if r.controlled:
            c, clo, chi = r.controlled
            yc = y + 5
            body.append(
                f'<line x1="{x(clo, -1):.1f}" x2="{x(chi, 1):.1f}" y1="{yc:.1f}" y2="{yc:.1f}" stroke="#d9480f"/>'
            )
            body.append(
                f'<path d="M{x(c):.1f},{yc - 5:.1f} l5,5 l-5,5 l-5,-5 z" fill="#fff" '
                'stroke="#d9480f" stroke-width="1.5"/>'
            )
    body.append(f'<circle cx="{left}" cy="12" r="4" fill="#1a56db"/>')
    body.append(f'<text x="{left + 8}" y="16" {FONT}>{escape(legend[0])}</text>')
    body.append(f'<path d="M{left + 200},7 l5,5 l-5,5 l-5,-5 z" fill="#fff" stroke="#d9480f" stroke-width="1.5"/>')
    body.append(f'<text x="{left + 210}" y="16" {FONT}>{escape(legend[1])}</text>')
    return svg_document(width, height, title, body)


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    role: str = ""
    y_lower: float | None = None
    y_upper: float | None = None
    series: str = ""
    note: str = ""  # shown on hover (an SVG <title>), e.g. a published score's source


@dataclass(frozen=True)
class Arrow:
    """From a point on the x axis (a model without a y value, e.g. a base model nobody rated) to a point."""

    label: str
    x0: float
    x1: float
    y1: float


def scatter_chart(
    points: Sequence[Point],
    title: str,
    x_label: str,
    y_label: str,
    *,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    log_x: bool = False,
    series_shapes: dict[str, str] | None = None,
    role_names: dict[str, str] | None = None,
    arrows: Sequence[Arrow] = (),
) -> SafeString:
    """Points coloured by role (imitation / proprietary / base), with optional y intervals and the y = x diagonal.

    ``arrows`` start at a hollow mark on the x axis (labelled) and end at a point: a base model's
    accuracy and one of its fine-tunes, so that a sideways shift shows what fine-tuning changed."""
    width, height, left, right, top, bottom = 640, 420, 60, 150, 20, 50
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    xs = [tx(p.x) for p in points]
    ys = [v for p in points for v in (p.y, p.y_lower, p.y_upper) if v is not None]
    x_lo, x_hi = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    y_lo, y_hi = y_range or ((min(ys), max(ys)) if ys else (0.0, 1.0))
    if x_range is None:
        pad = (x_hi - x_lo) * 0.1 or 0.5
        x_lo, x_hi = x_lo - pad, x_hi + pad

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (width - left - right)

    def sy(v: float) -> float:
        return height - bottom - (v - y_lo) / (y_hi - y_lo) * (height - top - bottom)

    body = []
    for t in _log_ticks(x_lo, x_hi) if log_x else _ticks(x_lo, x_hi):
        label = _fmt(10**t) if log_x else _fmt(t)
        body.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{height - bottom}" stroke="{GRID}"/>')
        body.append(
            f'<text x="{sx(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" {FONT} fill="{MUTED}">'
            f"{escape(label)}</text>"
        )
    for t in _ticks(y_lo, y_hi):
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="{GRID}"/>')
        body.append(
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" {FONT} fill="{MUTED}">{_fmt(t)}</text>'
        )
    if diagonal:
        lo, hi = max(x_lo, y_lo), min(x_hi, y_hi)
        body.append(
            f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="5,4"/>'
        )
        body.append(
            f'<text x="{sx(hi) - 4:.1f}" y="{sy(hi) + 14:.1f}" text-anchor="end" {FONT} fill="{MUTED}">y = x</text>'
        )
    drawn_bases = set()
    for a in arrows:
        x0, x1, y0 = sx(tx(a.x0)), sx(tx(a.x1)), sy(y_lo)
        body.append(
            f'<line class="lineage" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{sy(a.y1) + 6:.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="3,3" marker-end="url(#arrowhead)"/>'
        )
        if (a.label, a.x0) not in drawn_bases:
            # Base labels sit on staggered lines so that neighbours on the axis stay readable.
            lift = 9 + 12 * (len(drawn_bases) % 3)
            drawn_bases.add((a.label, a.x0))
            body.append(
                f'<circle cx="{x0:.1f}" cy="{y0:.1f}" r="5" fill="white" stroke="{MUTED}" stroke-width="1.5">'
                f"<title>{escape(a.label)}: not rated in this study</title></circle>"
            )
            body.append(
                f'<text x="{x0:.1f}" y="{y0 - lift:.1f}" text-anchor="middle" {FONT} fill="{MUTED}">'
                f"{escape(a.label)}</text>"
            )
    if arrows:
        body.insert(
            0,
            f'<defs><marker id="arrowhead" markerWidth="8" markerHeight="8" refX="6" refY="3" orient="auto">'
            f'<path d="M0,0 L6,3 L0,6 Z" fill="{MUTED}"/></marker></defs>',
        )
    shapes = series_shapes or {}
    for p, px in zip(points, xs, strict=True):
        colour = ROLE_COLOURS.get(p.role, MUTED)
        cx, cy = sx(px), sy(p.y)
        if p.y_lower is not None and p.y_upper is not None:
            body.append(
                f'<line class="interval" data-point="{escape(p.label)}" x1="{cx:.1f}" x2="{cx:.1f}" '
                f'y1="{sy(p.y_lower):.1f}" y2="{sy(p.y_upper):.1f}" stroke="{colour}" opacity="0.6"/>'
            )
        hover = f"<title>{escape(p.note)}</title>" if p.note else ""
        if shapes.get(p.series) == "square":
            body.append(f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}">{hover}</rect>')
        else:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}">{hover}</circle>')
        body.append(f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" {FONT}>{escape(p.label)}</text>')
    body.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 12}" text-anchor="middle" {FONT}>'
        f"{escape(x_label)}</text>"
    )
    body.append(
        f'<text transform="translate(14,{(top + height - bottom) / 2:.1f}) rotate(-90)" text-anchor="middle" {FONT}>'
        f"{escape(y_label)}</text>"
    )
    legend_y = top + 10
    for role in sorted({p.role for p in points if p.role}):
        colour = ROLE_COLOURS.get(role, MUTED)
        body.append(f'<circle cx="{width - right + 20}" cy="{legend_y}" r="5" fill="{colour}"/>')
        name = (role_names or {}).get(role, role)
        body.append(f'<text x="{width - right + 30}" y="{legend_y + 4}" {FONT}>{escape(name)}</text>')
        legend_y += 18
    for series, shape in shapes.items():
        mark = (
            f'<rect x="{width - right + 16}" y="{legend_y - 4}" width="8" height="8" fill="{MUTED}"/>'
            if shape == "square"
            else f'<circle cx="{width - right + 20}" cy="{legend_y}" r="5" fill="{MUTED}"/>'
        )
        body.append(mark + f'<text x="{width - right + 30}" y="{legend_y + 4}" {FONT}>{escape(series)}</text>')
        legend_y += 18
    return svg_document(width, height, title, body)


def heatmap(
    row_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    title: str,
    col_labels: Sequence[str] | None = None,
) -> SafeString:
    """Cell (i, j): a share, blue above 0.5 and red below; blank where there is none (e.g. models that never met)."""
    cols = list(col_labels) if col_labels is not None else list(row_labels)
    cell, left, top = 44, 150, 130
    width, height = left + cell * len(cols) + 100, top + cell * len(row_labels) + 20
    body = []
    for j, label in enumerate(cols):
        x = left + j * cell + cell / 2
        body.append(f'<text transform="translate({x:.1f},{top - 6}) rotate(-50)" {FONT}>{escape(label)}</text>')
    for i, label in enumerate(row_labels):
        y = top + i * cell
        body.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" {FONT}>{escape(label)}</text>')
        for j in range(len(cols)):
            v = values[i][j]
            x = left + j * cell
            if v is None:
                body.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#f6f7f9" stroke="#fff"/>')
                continue
            strength = min(abs(v - 0.5) * 2, 1)
            rgb = (26, 86, 219) if v >= 0.5 else (201, 42, 42)
            fill = "#{:02x}{:02x}{:02x}".format(*(round(255 - (255 - c) * strength * 0.85) for c in rgb))
            text_colour = "#fff" if strength > 0.6 else "#1d1d1f"
            body.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff"/>')
            body.append(
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle" {FONT} '
                f'fill="{text_colour}">{v:.2f}</text>'
            )
    return svg_document(width, height, title, body)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, y_label: str) -> SafeString:
    """Vertical bars, one per label (e.g. votes per day)."""
    width, height, left, bottom, top = 640, 260, 60, 60, 20
    n = max(len(values), 1)
    top_value = max(values) if values else 1
    ticks = _ticks(0, top_value)
    y_hi = max(ticks[-1], top_value)
    bar_w = (width - left - 20) / n

    def sy(v: float) -> float:
        return height - bottom - v / y_hi * (height - top - bottom)

    body = []
    for t in ticks:
        body.append(f'<line x1="{left}" x2="{width - 20}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" {FONT} fill="{MUTED}">{t:g}</text>')
    step = max(1, math.ceil(n / 12))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = left + i * bar_w
        body.append(
            f'<rect x="{x + bar_w * 0.1:.1f}" y="{sy(v):.1f}" width="{bar_w * 0.8:.1f}" '
            f'height="{sy(0) - sy(v):.1f}" fill="#1a56db"/>'
        )
        if i % step == 0:
            body.append(
                f'<text transform="translate({x + bar_w / 2:.1f},{height - bottom + 14}) rotate(30)" {FONT} '
                f'fill="{MUTED}">{escape(label)}</text>'
            )
    body.append(
        f'<text transform="translate(14,{(top + height - bottom) / 2:.1f}) rotate(-90)" text-anchor="middle" {FONT}>'
        f"{escape(y_label)}</text>"
    )
    return svg_document(width, height, title, body)
