"""The flow rows of the JSON report: one encoder for all rows gives exactly ``json.dumps`` of each."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from segverify.model.addresses import V6_BASE, int_to_addr
from segverify.report.rows import row_encoder

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.dictionaries(st.text(), values, max_size=8), max_size=5))
def test_row_encoder_is_json_dumps(rows: list[dict]) -> None:
    enc = row_encoder()
    for row in rows:
        assert enc(row) == json.dumps(row, ensure_ascii=False)


@given(st.integers(0, (1 << 32) - 1) | st.integers(V6_BASE, V6_BASE + (1 << 128) - 1))
def test_int_to_addr_is_ipaddress(value: int) -> None:
    import ipaddress

    expected = str(ipaddress.IPv4Address(value)) if value < V6_BASE else str(ipaddress.IPv6Address(value - V6_BASE))
    assert int_to_addr(value) == expected
