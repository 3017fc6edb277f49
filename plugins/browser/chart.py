"""The benchmark chart of the Hokusai view, drawn as SVG by the server: no
script, no build step, and it renders wherever the page does."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_Y = 640, 240, 56, 16, 28


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def benchmark_chart(points: list[tuple[int, float | None, float | None]], metric: str) -> Markup:
    """A line of benchmark values over versions, each point naming its
    improvement (versions without a value are skipped); an empty chart says
    so instead of drawing nothing."""
    shown = [(version, value, gain) for version, value, gain in points if value is not None]
    label = escape(metric or "benchmark")
    if not shown:
        return Markup('<p class="empty">No version has a benchmark value yet.</p>')
    low = min(v for _, v, _ in shown)
    high = max(v for _, v, _ in shown)
    span = (high - low) or (abs(high) or 1.0)
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - 2 * PAD_Y
    step = inner_w / max(len(shown) - 1, 1)

    def xy(index: int, value: float) -> tuple[float, float]:
        x = PAD_LEFT + (index * step if len(shown) > 1 else inner_w / 2)
        y = PAD_Y + inner_h - (value - low) / span * inner_h if high != low else HEIGHT / 2
        return round(x, 1), round(y, 1)

    coords = [xy(i, value) for i, (_, value, _) in enumerate(shown)]
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" aria-label="{label} by version">',
             f'<title>{label} by version</title>',
             f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_Y}" x2="{WIDTH - PAD_RIGHT}" '
             f'y2="{HEIGHT - PAD_Y}"/>',
             f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_Y + 4}" text-anchor="end">'
             f'{_fmt(high)}</text>',
             f'<text class="tick" x="{PAD_LEFT - 6}" y="{HEIGHT - PAD_Y + 4}" '
             f'text-anchor="end">{_fmt(low)}</text>',
             '<polyline class="line" points="' + " ".join(f"{x},{y}" for x, y in coords) + '"/>']
    for (version, value, gain), (x, y) in zip(shown, coords, strict=True):
        change = f" ({gain:+.4g})" if gain is not None else ""
        parts.append(f'<circle class="point" cx="{x}" cy="{y}" r="4" data-version="{version}">'
                     f'<title>v{version}: {_fmt(value)}{change}</title></circle>')
        parts.append(f'<text class="tick" x="{x}" y="{HEIGHT - 8}" text-anchor="middle">'
                     f'v{version}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
