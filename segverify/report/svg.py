"""The topology drawn as SVG, laid out by segverify itself (no graphviz): families as columns
MN | LG | SZ | IN | public, devices placed between the segments they join, declarations and
violations as labelled curves. Deterministic (same drawing dict, same bytes) and every piece of
text escaped, since names come from the inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

from .i18n import FAMILY_LABELS, label

COLUMNS = ("MN", "LG", "SZ", "IN", "public")
COL_W = 290
MARGIN = 40
TOP = 150
BOX_W, BOX_H = 156, 62
ROW_H = 160
DEV_W, DEV_H = 104, 30
FAMILY_STYLE = {  # fill, stroke
    "MN": ("#fff1cc", "#a66f00"),
    "LG": ("#deebf7", "#2b5d9b"),
    "SZ": ("#ece3f5", "#6b3fa0"),
    "IN": ("#e3f2e3", "#2e7d32"),
    "public": ("#eeeeee", "#666666"),
}
EDGE_STYLE = {"channel": "#1b7f3b", "exception": "#1f5fbf", "violation": "#c62828"}
RED = "#c62828"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


@dataclass
class Box:
    x: float  # centre
    y: float
    w: float
    h: float

    def overlaps(self, other: Box, pad: float = 8) -> bool:
        return abs(self.x - other.x) * 2 < self.w + other.w + pad and abs(self.y - other.y) * 2 < self.h + other.h + pad

    def border(self, dx: float, dy: float) -> tuple[float, float]:
        """Where a ray from the centre in direction (dx, dy) leaves the box."""
        if dx == 0 and dy == 0:
            return self.x, self.y
        t = min(self.w / 2 / abs(dx) if dx else math.inf, self.h / 2 / abs(dy) if dy else math.inf)
        return self.x + t * dx, self.y + t * dy


def _column(seg: dict[str, Any]) -> str:
    return "public" if seg["kind"] == "public" else seg["family"]


def layout(drawing: dict[str, Any]) -> tuple[dict[str, Box], list[tuple[dict[str, Any], Box]], int, int]:
    """Segment boxes by column, then devices at the mean of their segments, pushed down until free."""
    used = [c for c in COLUMNS if any(_column(s) == c for s in drawing["segments"])]
    col_x = {c: MARGIN + BOX_W / 2 + i * COL_W for i, c in enumerate(used)}
    boxes: dict[str, Box] = {}
    rows: dict[str, int] = {}
    for seg in drawing["segments"]:
        c = _column(seg)
        boxes[seg["name"]] = Box(col_x[c], TOP + BOX_H / 2 + rows.get(c, 0) * ROW_H, BOX_W, BOX_H)
        rows[c] = rows.get(c, 0) + 1
    devices: list[dict[str, Any]] = (
        [{"type": "firewall", "name": f["name"], "links": [(i["name"], i["segment"]) for i in f["interfaces"]]}
         for f in drawing["firewalls"]]
        + [{"type": "router", "name": r["name"], "links": [("", s) for s in r["segments"]]} for r in drawing["routers"]]
        + [{"type": "sanitizer" if h["sanitizer"] else "host", "name": h["name"],
            "links": [("", s) for s in h["segments"]]} for h in drawing["multihomed"]]
    )
    placed: list[tuple[dict[str, Any], Box]] = []
    occupied = list(boxes.values())
    for dev in devices:
        segs = [boxes[s] for _, s in dev["links"] if s in boxes]
        if not segs:
            continue
        xs = sorted({b.x for b in segs})
        x = sum(xs) / len(xs) if len(xs) > 1 else xs[0] + COL_W / 2
        y = sum(b.y for b in segs) / len(segs) + ROW_H / 2  # between rows: the arcs run above the boxes
        box = Box(x, y, DEV_W, DEV_H)
        while any(box.overlaps(o) for o in occupied):
            box = Box(x, box.y + DEV_H + 12, DEV_W, DEV_H)
        occupied.append(box)
        placed.append((dev, box))
    width = max(int(MARGIN * 2 + BOX_W + (len(used) - 1) * COL_W + 60) if used else 0, 960)  # room for the legend
    bottom = max([b.y + b.h / 2 for b in occupied] or [TOP])
    return boxes, placed, width, int(bottom + 60)


def render_svg(drawing: dict[str, Any], lang: str) -> str:
    """The drawing as one standalone SVG document (also inlined into index.html)."""
    boxes, devices, width, height = layout(drawing)
    legend_y = height
    height += 50
    used = [c for c in COLUMNS if any(_column(s) == c for s in drawing["segments"])]
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="topology" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{_e(label('svg_title', lang))}: {_e(drawing['name'])}</title>",
        "<defs>",
    ]
    for kind, colour in EDGE_STYLE.items():
        out.append(f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                   f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
                   "</marker>")
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    for i, c in enumerate(used):
        fill, stroke = FAMILY_STYLE[c]
        x = MARGIN - 14 + i * COL_W
        out.append(f'<rect x="{x}" y="20" width="{BOX_W + 28}" height="{legend_y - 40}" rx="10" fill="{fill}" '
                   f'fill-opacity="0.35" stroke="{stroke}" stroke-opacity="0.4"/>')
        out.append(f'<text x="{_n(x + (BOX_W + 28) / 2)}" y="46" text-anchor="middle" font-weight="bold" '
                   f'fill="{stroke}">{_e(FAMILY_LABELS[c][lang])}</text>')
        if c != "public":
            out.append(f'<text x="{_n(x + (BOX_W + 28) / 2)}" y="64" text-anchor="middle" fill="{stroke}" '
                       f'font-size="11">{_e(c)}</text>')
    # device links first, so that boxes cover their ends
    for dev, box in devices:
        colour = {"firewall": "#444444", "router": "#d9822b", "host": RED, "sanitizer": "#1b7f3b"}[dev["type"]]
        dash = "" if dev["type"] == "firewall" else ' stroke-dasharray="5,3"'
        for iface, seg in dev["links"]:
            if seg not in boxes:
                continue
            s = boxes[seg]
            out.append(f'<line x1="{_n(box.x)}" y1="{_n(box.y)}" x2="{_n(s.x)}" y2="{_n(s.y)}" stroke="{colour}" '
                       f'stroke-width="1.5"{dash}/>')
            if iface:
                lx, ly = box.x + (s.x - box.x) * 0.55, box.y + (s.y - box.y) * 0.55
                out.append(f'<text x="{_n(lx)}" y="{_n(ly - 3)}" text-anchor="middle" font-size="10" '
                           f'fill="#444444" class="iface">{_e(iface)}</text>')
    out += _edges(drawing, boxes)
    for seg in drawing["segments"]:
        b = boxes[seg["name"]]
        fill, stroke = FAMILY_STYLE[_column(seg)]
        cidrs = ", ".join(seg["cidrs"])
        short = cidrs if len(cidrs) <= 26 else cidrs[:25] + "…"
        out.append(f'<g class="segment" data-family="{_e(seg["family"])}"><title>{_e(seg["name"])} '
                   f'({_e(seg["kind"])}): {_e(cidrs)}</title>')
        out.append(f'<rect x="{_n(b.x - b.w / 2)}" y="{_n(b.y - b.h / 2)}" width="{_n(b.w)}" height="{_n(b.h)}" '
                   f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="2"/>')
        out.append(f'<text x="{_n(b.x)}" y="{_n(b.y - 8)}" text-anchor="middle" font-weight="bold">'
                   f'{_e(seg["name"])}</text>')
        out.append(f'<text x="{_n(b.x)}" y="{_n(b.y + 8)}" text-anchor="middle" font-size="10">{_e(seg["kind"])}'
                   "</text>")
        out.append(f'<text x="{_n(b.x)}" y="{_n(b.y + 22)}" text-anchor="middle" font-size="10" fill="#333333">'
                   f"{_e(short)}</text></g>")
    for dev, box in devices:
        fill, stroke, text = {"firewall": ("#333333", "#000000", "#ffffff"), "router": ("#ffe0b8", "#d9822b", "#000"),
                              "host": ("#ffdede", RED, RED), "sanitizer": ("#e3f2e3", "#1b7f3b", "#000")}[dev["type"]]
        prefix = {"firewall": "FW ", "router": "", "host": "", "sanitizer": ""}[dev["type"]]
        kind_label = {"firewall": "firewall", "router": "router", "host": "host_bypass",
                      "sanitizer": "sanitizer"}[dev["type"]]
        out.append(f'<g class="device {dev["type"]}"><title>{_e(label(kind_label, lang))}: {_e(dev["name"])}</title>')
        out.append(f'<rect x="{_n(box.x - box.w / 2)}" y="{_n(box.y - box.h / 2)}" width="{_n(box.w)}" '
                   f'height="{_n(box.h)}" rx="{4 if dev["type"] == "firewall" else 14}" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="2"/>')
        out.append(f'<text x="{_n(box.x)}" y="{_n(box.y + 4)}" text-anchor="middle" font-size="11" fill="{text}">'
                   f"{_e(prefix + dev['name'])}</text></g>")
    out += _legend(lang, legend_y)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edges(drawing: dict[str, Any], boxes: dict[str, Box]) -> list[str]:
    """Declarations and violations as quadratic curves, bowed apart when several join one pair."""
    out: list[str] = []
    seen: dict[frozenset[str], int] = {}
    for edge in drawing["edges"]:
        a, b = boxes.get(edge["src"]), boxes.get(edge["dst"])
        if a is None or b is None:
            continue
        pair = frozenset((edge["src"], edge["dst"]))
        k = seen.get(pair, 0)
        seen[pair] = k + 1
        dx, dy = b.x - a.x, b.y - a.y
        length = math.hypot(dx, dy) or 1.0
        px, py = -dy / length, dx / length
        if py > 0 or (py == 0 and px > 0):  # the first arcs of a pair go above (or left of) the boxes
            px, py = -px, -py
        side = 1 if k % 2 == 0 else -1
        bow = (0.2 * length + 24 + 26 * (k // 2)) * side
        cx, cy = (a.x + b.x) / 2 + px * bow, (a.y + b.y) / 2 + py * bow
        x1, y1 = a.border(cx - a.x, cy - a.y)
        x2, y2 = b.border(cx - b.x, cy - b.y)
        colour = RED if edge["violation"] else EDGE_STYLE[edge["kind"]]
        marker = "violation" if edge["violation"] else edge["kind"]
        width = 3 if edge["violation"] else 2
        dash = ' stroke-dasharray="7,4"' if edge["kind"] == "violation" else ""
        label_text = edge["label"] + (f" [{', '.join(edge['codes'])}]" if edge["kind"] != "violation"
                                      and edge["codes"] else "")
        out.append(f'<g class="edge {_e(edge["kind"])}{" violation" if edge["violation"] else ""}">'
                   f"<title>{_e(label_text)}</title>")
        out.append(f'<path d="M{_n(x1)},{_n(y1)} Q{_n(cx)},{_n(cy)} {_n(x2)},{_n(y2)}" fill="none" '
                   f'stroke="{colour}" stroke-width="{width}"{dash} marker-end="url(#arrow-{marker})"/>')
        mx, my = 0.25 * x1 + 0.5 * cx + 0.25 * x2, 0.25 * y1 + 0.5 * cy + 0.25 * y2
        out.append(f'<text x="{_n(mx)}" y="{_n(my - 4)}" text-anchor="middle" font-size="10" fill="{colour}" '
                   f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{_e(label_text)}</text></g>')
    return out


def _legend(lang: str, y: float) -> list[str]:
    items = [("channel", EDGE_STYLE["channel"], ""), ("exception", EDGE_STYLE["exception"], ""),
             ("violation", RED, ' stroke-dasharray="7,4"')]
    out = []
    x = MARGIN
    for key, colour, dash in items:
        out.append(f'<line x1="{x}" y1="{_n(y)}" x2="{x + 36}" y2="{_n(y)}" stroke="{colour}" stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 44}" y="{_n(y + 4)}">{_e(label(key, lang))}</text>')
        x += 150
    out.append(f'<rect x="{x}" y="{_n(y - 10)}" width="40" height="20" rx="4" fill="#333333"/>')
    out.append(f'<text x="{x + 48}" y="{_n(y + 4)}">{_e(label("firewall", lang))}</text>')
    x += 170
    out.append(f'<rect x="{x}" y="{_n(y - 10)}" width="40" height="20" rx="10" fill="#ffe0b8" stroke="#d9822b"/>')
    out.append(f'<text x="{x + 48}" y="{_n(y + 4)}">{_e(label("router", lang))}</text>')
    x += 130
    out.append(f'<rect x="{x}" y="{_n(y - 10)}" width="40" height="20" rx="10" fill="#ffdede" stroke="{RED}"/>')
    out.append(f'<text x="{x + 48}" y="{_n(y + 4)}">{_e(label("host_bypass", lang))}</text>')
    return out
