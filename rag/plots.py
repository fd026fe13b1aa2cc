"""The eval's pictures, as plain SVG (no plotting library): the judged answers' risk-coverage
curve and reliability diagram, which a user choosing a threshold would rather look at than read.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

SIZE, PAD = 300, 40  # one panel's plot area and its margin, in pixels
TOP = 24  # room above the panels for the picture's title


def _panel(x0: int, title: str, xlabel: str, ylabel: str, body: list[str]) -> list[str]:
    """A square panel at x0 with axes from 0 to 1, its title and labels, and body inside it."""
    left, top = x0 + PAD, TOP + PAD
    out = [
        '<g font-family="sans-serif" font-size="11">',
        f'<text x="{left + SIZE / 2}" y="{top - 14}" text-anchor="middle" font-size="13">'
        f"{escape(title)}</text>",
        f'<rect x="{left}" y="{top}" width="{SIZE}" height="{SIZE}" fill="none" stroke="#888"/>',
    ]
    for i in range(0, 11, 2):
        v = i / 10
        x, y = left + v * SIZE, top + SIZE - v * SIZE
        out.append(f'<text x="{x}" y="{top + SIZE + 14}" text-anchor="middle">{v:.1f}</text>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{v:.1f}</text>')
    out.append(
        f'<text x="{left + SIZE / 2}" y="{top + SIZE + 30}" text-anchor="middle">'
        f"{escape(xlabel)}</text>"
    )
    out.append(
        f'<text x="{left - 30}" y="{top + SIZE / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {left - 30} {top + SIZE / 2})">{escape(ylabel)}</text>'
    )
    out += body
    out.append("</g>")
    return out


def _point(x0: int, x: float, y: float) -> tuple[float, float]:
    return x0 + PAD + x * SIZE, TOP + PAD + SIZE - y * SIZE


def judgement_svg(
    curve: Sequence[tuple[float, float]],
    bins: Sequence[tuple[float, float, int]],
    threshold_coverage: float | None,
    title: str,
) -> str:
    """Two panels: precision against coverage as answers are added best first (with the 0.80
    line and where the threshold stops), and share right against judged probability per bin
    (circles sized by answers; on the diagonal is calibrated)."""
    width = 2 * (SIZE + 2 * PAD) + 20
    rc = []
    if curve:
        points = " ".join("{:.1f},{:.1f}".format(*_point(0, c, p)) for c, p in curve)
        rc.append(f'<polyline points="{points}" fill="none" stroke="#1f6feb" stroke-width="2"/>')
    x1, y80 = _point(0, 0, 0.8)
    x2, _ = _point(0, 1, 0.8)
    rc.append(f'<line x1="{x1}" y1="{y80}" x2="{x2}" y2="{y80}" stroke="#999" '
              'stroke-dasharray="4 3"/>')  # fmt: skip
    rc.append(f'<text x="{x2 - 4}" y="{y80 - 4}" text-anchor="end" fill="#666">0.80</text>')
    if threshold_coverage is not None:
        tx, top = _point(0, threshold_coverage, 1)
        _, bottom = _point(0, threshold_coverage, 0)
        rc.append(f'<line x1="{tx}" y1="{top}" x2="{tx}" y2="{bottom}" stroke="#d1242f"/>')
        rc.append(f'<text x="{tx + 4}" y="{bottom - 6}" fill="#d1242f">answered</text>')
    x0 = SIZE + 2 * PAD + 20
    rel = []
    a, b = _point(x0, 0, 0), _point(x0, 1, 1)
    rel.append(f'<line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" stroke="#999" '
               'stroke-dasharray="4 3"/>')  # fmt: skip
    most = max((n for *_, n in bins), default=1)
    for p, share, n in bins:
        cx, cy = _point(x0, p, share)
        r = 3 + 9 * (n / most) ** 0.5
        rel.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="#1f6feb" '
                   f'fill-opacity="0.5"><title>{n} answers</title></circle>')  # fmt: skip
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{TOP + SIZE + 2 * PAD + 30}">',
        f'<text x="10" y="16" font-family="sans-serif" font-size="12">{escape(title)}</text>',
        *_panel(0, "risk-coverage", "coverage (share of questions answered)", "precision", rc),
        *_panel(x0, "reliability", "judged probability", "share right", rel),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
