"""The exposure table as plain text for a terminal."""

from __future__ import annotations

import textwrap

from orthgate.exposure.row import DICOM_PLAIN, UNEXPLAINED, Exposure

_COLUMNS = (
    ("ENDPOINT", 20),
    ("PORT", 10),
    ("SERVICE", 18),
    ("PATH", 26),
    ("SOURCES", 24),
    ("AE TITLES", 16),
    ("PROTECTED BY", 36),
)


def _cells(row: Exposure) -> list[list[str]]:
    port = f"{row.port}/{row.protocol}" if row.port is not None else row.protocol
    sources = list(row.sources) + [f"except {s}" for s in row.except_sources]
    titles = list(row.ae_titles) or (["(none)"] if row.service.startswith("DICOM") else ["-"])
    protected = " ".join(t for t in (row.authentication, f"({row.note})" if row.note else "") if t)
    texts = [
        [row.endpoint],
        [port],
        [row.service],
        [row.path],
        sources or ["-"],
        titles,
        [protected],
    ]
    return [
        [
            line
            for text in cell
            for line in (textwrap.wrap(text, width, break_on_hyphens=False) or [""])
        ]
        for cell, (_, width) in zip(texts, _COLUMNS, strict=True)
    ]


def render_exposure(rows: list[Exposure], *, answers: bool = True) -> str:
    """A plain-text table, one block per row, and (``answers``) the two answers a reviewer
    asks first; a diff shows rows only."""
    if not rows:
        table = ["Nothing is reachable: no security group admits a source; no Client VPN, no VPN."]
    else:
        widths = [w for _, w in _COLUMNS]
        header = "  ".join(name.ljust(w) for (name, _), w in zip(_COLUMNS, widths, strict=True))
        table = [header.rstrip(), "-" * len(header.rstrip())]
        for row in rows:
            cells = _cells(row)
            for i in range(max(len(c) for c in cells)):
                line = "  ".join(
                    (c[i] if i < len(c) else "").ljust(w)
                    for c, w in zip(cells, widths, strict=True)
                )
                table.append(line.rstrip())
    if not answers:
        return "\n".join(table)
    plain_internet = [r for r in rows if r.service == DICOM_PLAIN and r.internet]
    unexplained = [r for r in rows if r.path == UNEXPLAINED]
    table += [
        "",
        "Plaintext DICOM reachable from the Internet: "
        + ("YES, see the rows above" if plain_internet else "no"),
        "Ingress rules not explained: "
        + (", ".join(n for r in unexplained for n in r.rules) if unexplained else "none"),
    ]
    return "\n".join(table)
