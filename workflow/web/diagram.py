"""An appeal type drawn as an SVG state diagram, top to bottom, with the current state highlighted."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from html import escape

from workflow.domain.spec import AppealDefinition, pick_title
from workflow.web.charts import FONT, INK, fit, text_width

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 150.0, 58.0, 22.0, 44.0, 44.0
LINE, SIZE, MAX_LINES = 15.0, 12.0, 3
CURRENT, VISITED, PLAIN, EDGE, NEXT = "#1d5fa8", "#dceafa", "#ffffff", "#9aa5b1", "#1d5fa8"
MANY_SOURCES = 4  # a trigger possible from this many states (e.g. withdraw) is drawn faint


def _e(text: object) -> str:
    return escape(str(text), quote=True)


@dataclass(frozen=True)
class _Edge:
    source: str
    dest: str
    titles: tuple[str, ...]
    faint: bool


def _marker(name: str, colour: str) -> str:
    # Sized in user units: an arrowhead must not grow with the stroke of a highlighted edge.
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
        f'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{colour}"/></marker>'
    )


def layers(definition: AppealDefinition) -> dict[str, int]:
    """Each state's row: the longest path to it from the initial state, loops (back edges) left out."""
    names = list(definition.states)
    following: dict[str, list[str]] = {name: [] for name in names}
    for transition in definition.transitions:
        for source in transition.sources:
            if transition.dest != source and transition.dest not in following[source]:
                following[source].append(transition.dest)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the walk's stack, 2 done

    def walk(node: str) -> None:
        state[node] = 1
        for nxt in following[node]:
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                walk(nxt)
        state[node] = 2

    for start in [definition.initial, *names]:
        if start not in state:
            walk(start)
    forward = {name: [n for n in following[name] if (name, n) not in back] for name in names}
    incoming = {name: 0 for name in names}
    for name in names:
        for nxt in forward[name]:
            incoming[nxt] += 1
    row = {name: 0 for name in names}
    ready = [name for name in names if incoming[name] == 0]
    while ready:
        node = ready.pop(0)
        for nxt in forward[node]:
            row[nxt] = max(row[nxt], row[node] + 1)
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
    return row


def _wrap(text: str, room: float) -> list[str]:
    words = text.split(" ") if " " in text else list(text)
    joiner = " " if " " in text else ""
    lines: list[str] = []
    for word in words:
        candidate = f"{lines[-1]}{joiner}{word}" if lines else word
        if lines and text_width(candidate, SIZE) <= room:
            lines[-1] = candidate
        else:
            lines.append(word)
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], fit(joiner.join(lines[MAX_LINES - 1 :]), SIZE, room)]
    return [fit(line, SIZE, room) for line in lines]


def state_diagram(
    definition: AppealDefinition, *, current: str | None, visited: Collection[str] = (), locale: str = "zh-CN"
) -> str:
    """The definition's states and transitions; `current` filled, `visited` tinted, its next steps in colour."""
    row = layers(definition)
    rows: dict[int, list[str]] = {}
    for name in definition.states:
        rows.setdefault(row[name], []).append(name)
    edges: dict[tuple[str, str], _Edge] = {}
    for transition in definition.transitions:
        title = pick_title(transition.title, locale)
        for source in transition.sources:
            if source == transition.dest:
                continue
            key = (source, transition.dest)
            old = edges.get(key)
            faint = len(transition.sources) >= MANY_SOURCES
            edges[key] = _Edge(
                source, transition.dest, (*old.titles, title) if old else (title,), faint and (old is None or old.faint)
            )
    # Order each row by where its predecessors sit, to keep lines from crossing.
    column: dict[str, float] = {}
    for index in sorted(rows):
        names = rows[index]
        if index > 0:

            def centre(name: str, fallback: float) -> float:
                parents = [column[e.source] for e in edges.values() if e.dest == name and e.source in column]
                return sum(parents) / len(parents) if parents else fallback

            original = {name: i for i, name in enumerate(names)}
            names.sort(key=lambda n: centre(n, original[n]))
        for position, name in enumerate(names):
            column[name] = position - (len(names) - 1) / 2
    widest = max(len(names) for names in rows.values())
    width = MARGIN * 2 + widest * NODE_W + (widest - 1) * GAP_X
    height = MARGIN / 2 + len(rows) * (NODE_H + GAP_Y) - GAP_Y + MARGIN / 2
    where: dict[str, tuple[float, float]] = {}
    for name, offset in column.items():
        cx = width / 2 + offset * (NODE_W + GAP_X)
        top = MARGIN / 2 + row[name] * (NODE_H + GAP_Y)
        where[name] = (cx, top)

    title = pick_title(definition.title, locale)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" class="diagram" '
        f'role="img" aria-label="{_e(title)}" font-family="{_e(FONT)}" font-size="{SIZE:.0f}">',
        f"<title>{_e(title)}</title>",
        f"<defs>{_marker('dg-arrow', EDGE)}{_marker('dg-arrow-next', NEXT)}</defs>",
    ]
    loops = 0
    for edge in sorted(edges.values(), key=lambda e: (e.source == current and not e.faint, not e.faint)):
        (sx, sy), (dx, dy) = where[edge.source], where[edge.dest]
        if row[edge.dest] > row[edge.source]:
            x1, y1, x2, y2 = sx, sy + NODE_H, dx, dy
            bend = (y2 - y1) / 2
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2:.1f}"
        elif row[edge.source] == row[edge.dest] + 1:  # one row back up: beside the edge coming down
            side = 18 if sx >= dx else -18
            x1, y1, x2, y2 = sx + side, sy, dx + side, dy + NODE_H
            bend = (y1 - y2) / 2
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 - bend:.1f} {x2:.1f},{y2 + bend:.1f} {x2:.1f},{y2:.1f}"
        else:  # a longer loop back: around the left-hand side
            loops += 1
            x1, y1 = sx - NODE_W / 2, sy + NODE_H * 0.65
            x2, y2 = dx - NODE_W / 2, dy + NODE_H * 0.35
            out = 18 + 6 * (loops % 3)
            path = f"M{x1:.1f},{y1:.1f} C{x1 - out:.1f},{y1:.1f} {x2 - out:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        is_next = edge.source == current and not edge.faint
        colour = NEXT if is_next else EDGE
        marker = "dg-arrow-next" if is_next else "dg-arrow"
        dash = ' stroke-dasharray="4 4" stroke-opacity="0.55"' if edge.faint else ""
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{2.2 if is_next else 1.4}"{dash} '
            f'marker-end="url(#{marker})"><title>{_e(" / ".join(edge.titles))}</title></path>'
        )
    for name, spec in definition.states.items():
        cx, top = where[name]
        label = pick_title(spec.title, locale)
        if name == current:
            fill, stroke, ink, weight = CURRENT, CURRENT, "#ffffff", ' font-weight="600"'
        elif name in visited:
            fill, stroke, ink, weight = VISITED, "#7ea6d8", INK, ""
        else:
            fill, stroke, ink, weight = PLAIN, EDGE, INK, ""
        radius = NODE_H / 2 if spec.terminal else 8
        classes = "state current" if name == current else "state"
        parts.append(
            f'<g class="{classes}" data-state="{_e(name)}"><title>{_e(label)} ({_e(name)})</title>'
            f'<rect x="{cx - NODE_W / 2:.1f}" y="{top:.1f}" width="{NODE_W:.0f}" height="{NODE_H:.0f}" '
            f'rx="{radius:.0f}" fill="{fill}" stroke="{stroke}" stroke-width="{2.5 if name == current else 1.2}"/>'
        )
        lines = _wrap(label, NODE_W - 16)
        first = top + NODE_H / 2 - (len(lines) - 1) * LINE / 2 + SIZE * 0.35
        for i, line in enumerate(lines):
            parts.append(
                f'<text x="{cx:.1f}" y="{first + i * LINE:.1f}" text-anchor="middle" fill="{ink}"{weight}>'
                f"{_e(line)}</text>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
