"""The upload history as an inline SVG bar chart (no script, no external resource)."""

from __future__ import annotations

import html
import math

from oort_lib.views.render import human_bytes, plural


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _nice_step(top: float, ticks: int = 5) -> float:
    """A 1-2-5 step so that about ``ticks`` gridlines cover ``top``."""
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def bar_chart(history: list[dict], width: int = 960, height: int = 320) -> str:
    """An inline SVG bar chart, one ``rect.bar`` per night (works for a single night)."""
    left, right, top, bottom = 78, 16, 16, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(h["bytes"] for h in history) or 1
    step = _nice_step(peak)
    y_max = step * math.ceil(peak / step)
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Bytes uploaded per night, {len(history)} nights">']
    for index in range(round(y_max / step) + 1):
        tick = index * step
        y = top + plot_h - plot_h * tick / y_max
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{_e(human_bytes(tick).replace('.0 ', ' '))}</text>")
    slot = plot_w / len(history)
    bar_w = min(max(slot * 0.8, 0.5), 60)
    # Thin the date labels so they never overlap, whatever the number of nights.
    every = max(1, math.ceil(len(history) / (plot_w / 28)))
    for index, night in enumerate(history):
        centre = left + slot * (index + 0.5)
        bar_h = plot_h * night["bytes"] / y_max
        if night["bytes"]:
            bar_h = max(bar_h, 1.0)
        label = f"{night['night']}: {human_bytes(night['bytes'])}, " + plural(night["files"],
                                                                              "file")
        out.append(f'<rect class="bar" x="{centre - bar_w / 2:.2f}" '
                   f'y="{top + plot_h - bar_h:.2f}" width="{bar_w:.2f}" height="{bar_h:.2f}">'
                   f"<title>{_e(label)}</title></rect>")
        if index % every == 0:
            ty = top + plot_h + 14
            out.append(f'<text x="{centre:.1f}" y="{ty}" text-anchor="end" '
                       f'transform="rotate(-40 {centre:.1f} {ty})">{_e(night["night"])}</text>')
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
               f'y2="{top + plot_h}"/><line class="axis" x1="{left}" x2="{left}" y1="{top}" '
               f'y2="{top + plot_h}"/>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">Bytes uploaded</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">'
               "Night</text></svg>")
    return "".join(out)


# --- writing ---------------------------------------------------------------------------
