"""Cutting a `_detail.md` document into chunks a retriever can return on their own.

A chunk is one `## ` section (or the part before the first one), prefixed with the document's title so it
still says which table it is about; a section longer than the bound is cut at line ends.
"""

from __future__ import annotations

MAX_CHUNK_CHARS = 1500


def _pieces(lines: list[str], budget: int) -> list[list[str]]:
    pieces: list[list[str]] = [[]]
    size = 0
    for line in lines:
        line = line if len(line) <= budget else line[: budget - 1] + "…"
        if pieces[-1] and size + len(line) + 1 > budget:
            pieces.append([])
            size = 0
        pieces[-1].append(line)
        size += len(line) + 1
    return pieces


def chunk_markdown(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    lines = text.strip().splitlines()
    if not lines:
        return []
    title = lines[0] if lines[0].startswith("# ") else ""
    body = lines[1:] if title else lines
    sections: list[list[str]] = [[]]
    for line in body:
        if line.startswith("## "):
            sections.append([])
        sections[-1].append(line)

    chunks: list[str] = []
    for section in sections:
        if not any(line.strip() for line in section):
            continue
        heading = section[0] if section[0].startswith("## ") else ""
        content = section[1:] if heading else section
        prefix = [p for p in (title, heading) if p]
        budget = max(200, max_chars - sum(len(p) + 1 for p in prefix))
        for piece in _pieces(content, budget):
            chunk = "\n".join([*prefix, *piece]).strip()
            if chunk and chunk not in prefix:
                chunks.append(chunk)
    return chunks
