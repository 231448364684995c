"""Decoding stored records: each record is exactly one JSON object, or the read fails."""

from __future__ import annotations

import pytest

import sessions
from sessions._message import decode_records, encode_message

MESSAGES = [
    {"role": "user", "content": "héllo \u2028 \"quoted\""},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
    {"role": "tool", "tool_call_id": "c", "content": "", "x_extra": [1, 2.5, True, None]},
]


def test_records_decode_to_the_messages_encoded() -> None:
    records = [encode_message(m) for m in MESSAGES]
    assert decode_records(records) == MESSAGES
    assert decode_records([r.encode() for r in records]) == MESSAGES
    assert decode_records([]) == []


def test_surrounding_whitespace_is_accepted() -> None:
    records = [" " + encode_message(MESSAGES[0]), encode_message(MESSAGES[1]) + "\n"]
    assert decode_records(records) == MESSAGES[:2]


@pytest.mark.parametrize(
    "records",
    [
        # Together these would read as a valid array of three objects; apart they are damage.
        ['{"role":"user","content":"a"},{"role":"user","content":"b"}', '{"x":[1', "2]}"],
        ['{"role":"user","content":"a"}x'],
        ['{"role":"user","content":"a"} {"role":"user","content":"b"}'],
        ["[]"],
        ['"text"'],
        [""],
        ["{broken"],
        [b'{"role":"user","content":"\xff"}'],
    ],
)
def test_damaged_records_raise_corrupt_record_error(records: list[str | bytes]) -> None:
    good = encode_message(MESSAGES[0])
    with pytest.raises(sessions.CorruptRecordError) as caught:
        decode_records([good, *records, good], "s", "get")
    assert (caught.value.session_id, caught.value.operation) == ("s", "get")
