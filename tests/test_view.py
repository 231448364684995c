"""The model view: every rule, and properties over arbitrary stored histories."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import sessions
from sessions.view import (
    RESPONSES_ITEMS_KEY,
    RESPONSES_ONLY_KEY,
    ModelView,
    model_message,
    model_view,
    rewrite_view,
    same_meaning,
)
from tests.chat_validator import assert_valid, problems

USER = {"role": "user", "content": "hi"}
CALL = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
CALL2 = {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}}
ASKS = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ASKS2 = {"role": "assistant", "content": None, "tool_calls": [CALL, CALL2]}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
RESULT2 = {"role": "tool", "tool_call_id": "c2", "content": "noon"}
ANSWER = {"role": "assistant", "content": "It is sunny."}
REASONING = {"role": "assistant", "content": "", RESPONSES_ONLY_KEY: True,
             RESPONSES_ITEMS_KEY: [{"type": "reasoning", "id": "rs_1", "summary": []}]}


def test_plain_history_is_returned_as_the_same_objects() -> None:
    history = [USER, ASKS, RESULT, ANSWER]
    view = model_view(history)
    assert view == history
    assert all(a is b for a, b in zip(view, history, strict=True))


def test_responses_only_messages_are_left_out() -> None:
    assert model_view([USER, REASONING, ANSWER]) == [USER, ANSWER]
    web = {**REASONING, RESPONSES_ITEMS_KEY: [{"type": "web_search_call", "id": "ws_1"}]}
    assert model_view([USER, web, ASKS, REASONING, RESULT, ANSWER]) == [USER, ASKS, RESULT, ANSWER]


@pytest.mark.parametrize(("message", "expected"), [
    # A document by URL: the user message has nothing a model can read.
    ({"role": "user", "content": None}, None),
    ({"role": "user", "content": []}, None),
    ({"role": "user", "content": [{"type": "document", "url": "https://x.invalid/a.pdf"}]}, None),
    # Thinking only: the assistant says nothing.
    ({"role": "assistant", "content": None}, None),
    ({"role": "assistant", "content": ""}, None),
    ({"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"}]}, None),
    # Image-only tool output: the result still answers its call, with no text.
    ({"role": "tool", "tool_call_id": "c1", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.invalid/p.png"}}]},
     {"role": "tool", "tool_call_id": "c1", "content": ""}),
    ({"role": "tool", "tool_call_id": "c1", "content": None},
     {"role": "tool", "tool_call_id": "c1", "content": ""}),
    # An image by file id has no Chat Completions part.
    ({"role": "user", "content": [{"type": "text", "text": "see"},
                                  {"type": "input_image", "file_id": "file_1"}]},
     {"role": "user", "content": [{"type": "text", "text": "see"}]}),
    # System messages take text parts only.
    ({"role": "system", "content": [{"type": "text", "text": "be brief"},
                                    {"type": "image_url", "image_url": {"url": "u"}}]},
     {"role": "system", "content": [{"type": "text", "text": "be brief"}]}),
    # Audio output: the transcript is what the model reads.
    ({"role": "assistant", "content": None, "audio": {"id": "au_1", "data": "UklG", "expires_at": 1,
                                                       "transcript": "Hello there"}},
     {"role": "assistant", "content": "Hello there"}),
    # Names the API refuses are left out; a tool message has no name.
    ({"role": "user", "content": "hi", "name": "Alice Smith"}, {"role": "user", "content": "hi"}),
    ({"role": "user", "content": "hi", "name": None}, {"role": "user", "content": "hi"}),
    ({"role": "tool", "tool_call_id": "c1", "content": "x", "name": "weather"},
     {"role": "tool", "tool_call_id": "c1", "content": "x"}),
    # Legacy function messages need a name.
    ({"role": "function", "content": "42"}, None),
    ({"role": "function", "name": "f", "content": [{"type": "text", "text": "42"}]},
     {"role": "function", "name": "f", "content": "42"}),
    # Bookkeeping keys never reach the model; parts lose keys the API does not take.
    ({"role": "user", "content": [{"type": "text", "text": "a", "id": "t1"}], "id": "m1",
      "langchain": {"x": 1}},
     {"role": "user", "content": [{"type": "text", "text": "a"}]}),
    ({"role": "assistant", "content": "ok", "refusal": None, "annotations": []},
     {"role": "assistant", "content": "ok"}),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}]},
     None),
])
def test_each_message_gets_its_model_form(message: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert model_message(message) == expected
    if expected is not None:
        assert_valid([{"role": "user", "content": "q"}, expected] if expected["role"] != "tool"
                     else [{"role": "assistant", "content": None, "tool_calls": [CALL]}, expected])


def test_tool_exchanges_are_made_whole() -> None:
    # Results cut off by a window: orphans are dropped, never fetched.
    assert model_view([RESULT, RESULT2, ANSWER, USER]) == [ANSWER, USER]
    # A call without a result is removed from its message; the text stays.
    talk = {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL, CALL2]}
    assert model_view([USER, talk, RESULT, ANSWER]) == [
        USER, {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL]}, RESULT, ANSWER]
    # Unanswered calls at the end (an interrupted run) are dropped with their message.
    assert model_view([USER, ASKS]) == [USER]
    # A result separated from its call by another message answers nothing.
    assert model_view([USER, ASKS, USER, RESULT]) == [USER, USER]
    # Duplicate results: the first answers.
    assert model_view([ASKS, RESULT, {**RESULT, "content": "again"}]) == [ASKS, RESULT]
    # Parallel calls answered in any order.
    assert model_view([ASKS2, RESULT2, RESULT]) == [ASKS2, RESULT2, RESULT]
    # Responses-only items between a call and its result do not break the pair.
    assert model_view([ASKS, REASONING, RESULT]) == [ASKS, RESULT]


def test_custom_and_malformed_tool_calls() -> None:
    custom = {"id": "k1", "type": "custom", "custom": {"name": "grep", "input": "x"}}
    asks = {"role": "assistant", "content": None, "tool_calls": [custom, {"id": "bad", "type": "function"}]}
    result = {"role": "tool", "tool_call_id": "k1", "content": "found"}
    assert model_view([asks, result]) == [
        {"role": "assistant", "content": None, "tool_calls": [custom]}, result]
    untyped = {"id": "c1", "function": {"name": "weather", "arguments": "{}"}}
    typed = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    viewed = model_view([{"role": "assistant", "content": None, "tool_calls": [untyped]}, RESULT])
    assert viewed[0]["tool_calls"] == [typed]


def test_a_window_never_holds_more_than_its_limit() -> None:
    history = [USER, ASKS2, RESULT, RESULT2, ANSWER, USER]
    assert model_view(history, limit=3) == [ANSWER, USER]  # RESULT2 lost its call
    assert model_view(history, limit=5) == [ASKS2, RESULT, RESULT2, ANSWER, USER]
    assert model_view(history, limit=0) == []
    view = ModelView.of(history, limit=3)
    assert view.positions == [4, 5] and view.size == 6


def test_extras_are_kept_for_adapters() -> None:
    stored = {"role": "assistant", "content": "x", "id": "m1", "langchain": {"usage_metadata": {}},
              "tool_calls": [CALL, CALL2]}
    view = model_view([stored, RESULT], extras=True)
    assert view[0] == {"role": "assistant", "content": "x", "tool_calls": [CALL], "id": "m1",
                       "langchain": {"usage_metadata": {}}}
    plain = {"role": "user", "content": "hi", "id": "m2"}
    assert model_view([plain], extras=True)[0] is plain
    assert model_view([plain]) == [{"role": "user", "content": "hi"}]


def test_extras_never_keep_request_keys_the_role_does_not_take() -> None:
    stored = {"role": "developer", "content": "be brief", "tool_calls": [], "tool_call_id": "c1",
              "refusal": None, "id": "d1"}
    assert model_view([stored], extras=True) == [{"role": "developer", "content": "be brief", "id": "d1"}]
    answer = {"role": "assistant", "content": "done", "tool_call_id": "c1", "id": "a1"}
    assert model_view([answer], extras=True) == [{"role": "assistant", "content": "done", "id": "a1"}]


def test_same_meaning() -> None:
    a = {"role": "assistant", "content": None, "tool_calls": [CALL], "id": "x"}
    b = {"role": "assistant", "content": "", "tool_calls": [
        {**CALL, "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]}
    assert same_meaning(a, b)
    assert same_meaning({"role": "user", "content": "hi"},
                        {"role": "user", "content": [{"type": "text", "text": "hi"}]})
    assert not same_meaning({"role": "user", "content": "hi"}, {"role": "user", "content": "ho"})
    assert not same_meaning(a, {**b, "tool_calls": [CALL2]})


def _same(viewed: dict[str, Any]) -> dict[str, Any]:
    return viewed  # a framework that writes back exactly what it read


def test_rewrite_keeps_what_the_view_left_out() -> None:
    stored = [USER, REASONING, ASKS, RESULT, ANSWER, REASONING]
    view = ModelView.of(stored)
    # Writing back what was read changes nothing.
    assert rewrite_view(stored, view, view.messages, _same) == stored
    # Appending keeps everything stored.
    assert rewrite_view(stored, view, [*view.messages, USER], _same) == [*stored, USER]
    # Dropping the last message drops what came with it, nothing before.
    assert rewrite_view(stored, view, view.messages[:-1], _same) == stored[:4]
    # Editing the first message keeps the rest exactly.
    edited = {"role": "user", "content": "hello"}
    assert rewrite_view(stored, view, [edited, *view.messages[1:]], _same) == [edited, *stored[1:]]
    # Inserting in the middle keeps both sides and what belongs to the later one.
    assert rewrite_view(stored, view, [USER, edited, *view.messages[1:]], _same) == [
        USER, edited, *stored[1:]]
    # Removing a message in the middle keeps both sides exactly, hidden messages included.
    assert rewrite_view(stored, view, [USER, ASKS, RESULT, edited], _same) == [*stored[:4], edited]
    assert rewrite_view(stored, view, [USER, ANSWER], _same) == [USER, ANSWER, REASONING]
    # Writing nothing clears the viewed history.
    assert rewrite_view(stored, view, [], _same) == []


def test_rewrite_of_a_window_never_touches_what_lies_before_it() -> None:
    stored = [USER, ANSWER, {"role": "user", "content": "second"}, REASONING, ANSWER]
    view = ModelView.of(stored, limit=3)
    assert view.start == 2 and view.messages == [stored[2], ANSWER]
    edited = {"role": "user", "content": "edited"}
    assert rewrite_view(stored, view, [edited, ANSWER], _same) == [USER, ANSWER, edited, REASONING, ANSWER]
    assert rewrite_view(stored, view, [], _same) == [USER, ANSWER]


def test_a_record_that_is_no_message_is_corrupt() -> None:
    envelope = {"envelope": {"v": 1, "alg": "gzip", "data": "H4sI"}}
    with pytest.raises(sessions.CorruptRecordError, match="wrapper"):
        model_view([USER, envelope])


def test_an_assistant_of_empty_text_parts_says_nothing() -> None:
    empty = {"role": "assistant", "content": [{"type": "text", "text": ""}]}
    assert model_view([USER, empty, USER]) == [USER, USER]
    talk = {"role": "assistant", "content": [{"type": "text", "text": ""}], "tool_calls": [CALL]}
    assert model_view([talk]) == []


def test_rewrite_keeps_the_unrepaired_stored_message() -> None:
    stored = [USER, ASKS2, RESULT, ANSWER]
    view = ModelView.of(stored)
    assert view.messages[1]["tool_calls"] == [CALL]
    assert rewrite_view(stored, view, view.messages, _same) == stored
    assert rewrite_view(stored, view, [*view.messages, USER], _same) == [*stored, USER]


# -- properties over arbitrary histories --------------------------------------------------------

_text = st.text(max_size=5)
_ids = st.sampled_from(["c1", "c2", "c3", "", 7])
_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.fixed_dictionaries({"type": st.just("text"), "text": _text, "id": _text}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.fixed_dictionaries({"url": _text}, optional={
                               "detail": st.sampled_from(["low", "weird"])})}),
    st.fixed_dictionaries({"type": st.just("input_audio"), "input_audio": st.fixed_dictionaries(
        {"data": _text, "format": st.sampled_from(["wav", "ogg"])})}),
    st.fixed_dictionaries({"type": st.just("file"), "file": st.fixed_dictionaries(
        {}, optional={"file_id": _text, "file_url": _text})}),
    st.fixed_dictionaries({"type": st.sampled_from(["refusal", "thinking", "input_image"]),
                           "refusal": _text}),
)
_content = st.one_of(st.none(), _text, st.lists(_parts, max_size=3), st.just(7))
_calls = st.lists(st.one_of(
    st.fixed_dictionaries({"id": _ids, "type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": st.sampled_from(["f", "", None]), "arguments": st.sampled_from(["{}", '{"a": 1}', None])})}),
    st.fixed_dictionaries({"id": _ids, "type": st.just("custom"), "custom": st.fixed_dictionaries(
        {"name": st.just("g"), "input": _text})}),
    st.fixed_dictionaries({"id": _ids}),
), max_size=3)
_extras = st.dictionaries(st.sampled_from(["id", "langchain", "metadata", "name", "audio", "refusal"]),
                          st.one_of(st.none(), _text, st.just({"transcript": "t"})), max_size=2)
_message = st.one_of(
    st.builds(lambda r, c, e: {"role": r, "content": c, **e},
              st.sampled_from(["user", "system", "developer", "assistant", "function"]), _content, _extras),
    st.builds(lambda c, calls, e: {"role": "assistant", "content": c, "tool_calls": calls, **e},
              _content, _calls, _extras),
    st.builds(lambda c, i: {"role": "tool", "tool_call_id": i, "content": c}, _content, _ids),
    st.just(REASONING),
)
_history = st.lists(_message, max_size=12)


_CALL_C1 = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_history, st.one_of(st.none(), st.integers(min_value=0, max_value=12)))
# Parallel calls stored apart, the second with a malformed extra: viewed alike with extras.
@example([{"role": "assistant", "content": None, "tool_calls": [_CALL_C1]},
          {"role": "assistant", "content": None, "tool_calls": [_CALL_C1], "audio": "0"},
          {"role": "tool", "tool_call_id": "c1", "content": None}], None)
def test_every_view_is_a_valid_request(history: list[dict[str, Any]], limit: int | None) -> None:
    before = copy.deepcopy(history)
    view = ModelView.of(history, limit=limit)
    assert history == before, "viewing changed the stored messages"
    assert not problems(view.messages, allow_empty=True)
    assert view.positions == sorted(set(view.positions))
    if limit is not None:
        assert len(view.messages) <= limit
        assert all(p >= len(history) - limit for p in view.positions)
    assert model_view(view.messages) == view.messages, "the view of a view is itself"
    json.dumps(view.messages)
    adapter_view = ModelView.of(history, limit=limit, extras=True)
    assert adapter_view.positions == view.positions
    assert model_view(adapter_view.messages) == view.messages, "extras change nothing a model sees"


@settings(max_examples=300, deadline=None)
@given(_history, st.data())
def test_rewrites_touch_only_what_changed(history: list[dict[str, Any]], data: st.DataObject) -> None:
    view = ModelView.of(history)
    assert rewrite_view(history, view, view.messages, _same) == history
    cut = data.draw(st.integers(min_value=0, max_value=len(view.messages)))
    kept = rewrite_view(history, view, view.messages[:cut], _same)
    # What was kept is a prefix of the stored history, and views as the kept prefix.
    assert kept == history[:len(kept)]
    assert model_view(kept) == view.messages[:cut] or cut < len(view.messages)
    added = {"role": "user", "content": "new"}
    grown = rewrite_view(history, view, [*view.messages, added], _same)
    assert grown == [*history, added]


@settings(max_examples=400, deadline=None)
@given(_history, _history, st.booleans())
def test_a_view_that_does_not_end_open_is_a_prefix_of_the_views_of_longer_histories(
        history: list[dict[str, Any]], more: list[dict[str, Any]], extras: bool) -> None:
    view = ModelView.of(history, extras=extras)
    whole = ModelView.of([*history, *more], extras=extras)
    if view.ends_open:
        # An exchange still open: a result appended later answers a call of the history.
        assert any(m.get("role") == "assistant" and m.get("tool_calls") for m in history)
        return
    rest = ModelView.of(more, extras=extras)
    assert whole.messages == [*view.messages, *rest.messages]
    assert whole.positions == [*view.positions, *(p + len(history) for p in rest.positions)]


def test_ends_open_says_whether_the_last_tool_exchange_may_still_get_results() -> None:
    asks = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    answer = {"role": "tool", "tool_call_id": "c1", "content": "done"}
    assert ModelView.of([asks]).ends_open and ModelView.of([asks, answer]).ends_open
    assert ModelView.of([asks, answer, REASONING]).ends_open
    assert not ModelView.of([asks, answer, {"role": "user", "content": "ok"}]).ends_open
    assert not ModelView.of([answer]).ends_open and not ModelView.of([]).ends_open


def test_parallel_calls_stored_apart_are_one_exchange() -> None:
    def asks(call_id: str, content: Any = None) -> dict[str, Any]:
        return {"role": "assistant", "content": content, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}

    def answer(call_id: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call_id, "content": f"result {call_id}"}

    history = [{"role": "user", "content": "go"}, asks("a"), REASONING, asks("b"), answer("a"), answer("b")]
    view = ModelView.of(history)
    assert view.messages[1]["tool_calls"] == [*asks("a")["tool_calls"], *asks("b")["tool_calls"]]
    assert view.positions == [0, 1, 4, 5] and not problems(view.messages)
    assert history[1] == asks("a"), "the stored message was changed"
    # Calls after a result, or a message that also says something, start a new exchange.
    assert [m["role"] for m in model_view([asks("a"), answer("a"), asks("b"), answer("b")])] == [
        "assistant", "tool", "assistant", "tool"]
    said = model_view([asks("a"), asks("b", "Also this."), answer("a"), answer("b")])
    assert said == [{**asks("b", "Also this.")}, answer("b")]
