"""The report `quantize_` and `convert` return: every layer's fate, and why a layer stayed float."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass

FATES = ("integer", "weight_only", "qat", "decomposed", "folded", "float", "skipped")


@dataclass(frozen=True)
class LayerFate:
    """One layer: its name, type before quantization, what became of it, and the detail."""

    name: str
    type: str
    fate: str
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class QuantReport:
    """The fates of a model's layers (iterate for LayerFate rows; `str()` is a table)."""

    def __init__(self, rows: list[LayerFate]):
        self.rows = list(rows)

    def __iter__(self) -> Iterator[LayerFate]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> LayerFate:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def names(self, fate: str) -> list[str]:
        """The layers with this fate."""
        return [r.name for r in self.rows if r.fate == fate]

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.fate for r in self.rows))

    def to_dicts(self) -> list[dict]:
        return [r.to_dict() for r in self.rows]

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {fate}" for fate, n in self.counts().items())
        return f"QuantReport({counts})"

    def __str__(self) -> str:
        if not self.rows:
            return "(no layers)"
        width = max(5, *(len(r.name) for r in self.rows))
        kind = max(4, *(len(r.type) for r in self.rows))
        lines = [f"{'layer':{width}s} {'type':{kind}s} {'fate':10s} detail"]
        lines += [f"{r.name:{width}s} {r.type:{kind}s} {r.fate:10s} {r.detail}"
                  for r in self.rows]
        return "\n".join(lines)
