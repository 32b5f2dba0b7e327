"""The outcome mix: which share of the calls ends which way.

    parse_mix("accept=70,decline=30")  ->  {"accept": 70, "decline": 30}

Weights are whole numbers; they need not add up to 100. Outcomes are dealt in proportion
to the weights with a smooth weighted round-robin (the scheduler of nginx), so even a
short run sees every outcome whose share is at least one call, and the order is mixed
(accept, accept, decline, accept, ...), not in blocks.
"""

from __future__ import annotations

OUTCOMES = ("accept", "decline", "busy", "timeout", "cancel", "group")
DEFAULT_MIX = "accept=60,decline=10,busy=5,timeout=10,cancel=10,group=5"


class MixError(ValueError):
    """A mix that cannot be used; the message names the offending item."""


def parse_mix(text: str) -> dict[str, int]:
    """`name=weight,...` -> {name: weight}; raises MixError naming the bad item."""
    if not text or not text.strip():
        raise MixError(f"the mix is empty: give name=weight items, e.g. {DEFAULT_MIX}")
    mix: dict[str, int] = {}
    for position, raw in enumerate(text.split(","), start=1):
        item = raw.strip()
        if not item:
            raise MixError(f"item {position} of the mix is empty (a stray comma?)")
        name, equals, weight_text = item.partition("=")
        name, weight_text = name.strip(), weight_text.strip()
        if not equals or not name or not weight_text:
            raise MixError(f"mix item {item!r} is not name=weight (e.g. accept=60)")
        if name not in OUTCOMES:
            raise MixError(f"mix item {item!r}: unknown outcome {name!r}; one of: {', '.join(OUTCOMES)}")
        if name in mix:
            raise MixError(f"mix item {item!r}: outcome {name!r} is given twice")
        try:
            weight = int(weight_text)
        except ValueError:
            raise MixError(f"mix item {item!r}: weight {weight_text!r} is not a whole number") from None
        if weight < 0:
            raise MixError(f"mix item {item!r}: weight must be 0 or more")
        mix[name] = weight
    if not any(mix.values()):
        raise MixError(f"mix {text!r}: every weight is 0, so no call could start")
    return mix


def format_mix(mix: dict[str, int]) -> str:
    return ",".join(f"{name}={weight}" for name, weight in mix.items())


class Dealer:
    """Deals outcomes in proportion to the mix (smooth weighted round-robin)."""

    def __init__(self, mix: dict[str, int]):
        self.weights = {name: weight for name, weight in mix.items() if weight > 0}
        self.total = sum(self.weights.values())
        self.credit = {name: 0 for name in self.weights}

    def next(self) -> str:
        for name, weight in self.weights.items():
            self.credit[name] += weight
        chosen = max(self.credit, key=lambda name: self.credit[name])
        self.credit[chosen] -= self.total
        return chosen
