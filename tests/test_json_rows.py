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


names = st.none() | st.text(max_size=12) | st.sampled_from(
    ["lg-office", "インターネット接続系", 'a"b\\c', "\x00\x1f\u2028"])


@st.composite
def verdicts(draw: st.DrawFn):
    from segverify.analysis.replay import FlowVerdict
    from segverify.capture.flows import Flow

    addr = st.integers(0, (1 << 32) - 1) | st.integers(V6_BASE, V6_BASE + (1 << 128) - 1)
    n = st.integers(0, 1 << 62)
    flow = Flow(draw(st.sampled_from([6, 17, 1, 58, 132, 47, 255])), 4, draw(addr), draw(st.integers(0, 65535)),
                draw(addr), draw(st.integers(0, 65535)), draw(st.booleans()), draw(st.sampled_from(["syn",
                "first-packet"])), draw(n), draw(n), draw(n), draw(n), draw(n), draw(n), draw(n), draw(n),
                draw(st.booleans()), 0, 0, draw(st.none() | st.integers(0, 4095)), (), 0, 0)
    v = FlowVerdict(flow, draw(names), draw(names), draw(st.sampled_from(["intra-family", "UNSANITIZED_FLOW"])
                                                         | st.text(max_size=20)))
    v.notes = draw(st.lists(st.text(max_size=30), max_size=3))
    v.denied = draw(st.booleans())
    return v


@settings(max_examples=300, deadline=None)
@given(verdicts())
def test_a_flow_row_written_directly_is_the_encoders(v) -> None:
    """FlowVerdict.row_bytes writes the row without a dict: the same bytes as the encoder of its to_json."""
    from segverify.report.rows import row_bytes

    assert v.row_bytes() == row_bytes()(v.to_json())
