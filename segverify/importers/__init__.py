"""Vendor configuration importers: one module per format, one small interface.

An importer is a function ``load(path, interfaces) -> RuleSet``: it reads the vendor's own file
and returns the firewall's rules in the vendor-independent model (first match, then a default),
with each rule's id being the vendor's own and its source the file and line. It knows nothing of
the analysis. ``interfaces`` are the topology's interface names for that firewall, which the
vendor's interface, zone or nameif names are matched against.

A construct an importer cannot model exactly is over-approximated (an allow that might match is
taken as matching, a deny that might not match as not matching) and marked on the rule with
``approximation``; a malformed file raises InputError naming the file and line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from ..model.rules import TRUE, Rule, RuleSet, SourceRef

Importer = Callable[[str, Sequence[str]], RuleSet]

# format name → module under segverify.importers (None: not implemented yet)
FORMATS: dict[str, str | None] = {
    "iptables-save": "iptables",
    "nftables": "nftables",
    "nftables-json": "nftables_json",
    "fortios": "fortios",
    "cisco-asa": "cisco_asa",
    "panos": "panos",
    "junos": "junos",
    "yamaha-rtx": "yamaha_rtx",
}


def get_importer(fmt: str) -> Importer | None:
    """The importer for a format name, or None if the format is unknown."""
    if fmt not in FORMATS:
        return None
    module = FORMATS[fmt]
    if module is None:
        return lambda path, interfaces: _not_yet(fmt, path)
    return importlib.import_module(f"{__name__}.{module}").load  # type: ignore[no-any-return]


def _not_yet(fmt: str, path: str) -> RuleSet:
    """A known format whose importer is not written yet: over-approximate as allowing everything.

    Never optimistic: the analysis then reports every path through this firewall, and the rule
    itself is reported as UNSUPPORTED_RULE.
    """
    rule = Rule(
        id="(whole file)",
        action="allow",
        match=TRUE,
        source=SourceRef(path, 1),
        approximation=f"the {fmt} importer is not available yet: every packet is taken as allowed",
    )
    return RuleSet((rule,), "allow")
