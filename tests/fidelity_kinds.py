"""Message kinds as each framework writes them, for the fidelity matrix.

Every entry is a short conversation in one framework's own objects (LangChain messages,
LlamaIndex ``ChatMessage`` objects, Responses items, canonical dicts as the native
runner stores them) that holds one kind of message the issue of one-history-for-every-
framework names: text, multi-part, images by URL and inline, audio, files, reasoning
and thinking, single and parallel tool calls, custom tool calls, tool results with
parts, names, refusals, hosted-tool items, unknown extras, and the foreign shapes that
have no Chat Completions form as they are. A kind a framework cannot express is absent
from its table.
"""

from __future__ import annotations

import base64
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="
PDF = "JVBERi0xLjQKJcfsj6IK"
URL = "https://example.invalid/cat.png"

# -- canonical (what the native runner and plain store users write) -------------------------

_ASK = {"role": "user", "content": "Weather in Paris and Rome?"}
_CALL_P = {"id": "call_p", "type": "function",
           "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
_CALL_R = {"id": "call_r", "type": "function",
           "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}


def canonical_kinds() -> dict[str, list[dict[str, Any]]]:
    done = {"role": "assistant", "content": "Done."}
    return {
        "text": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, I'm Alice"},
                 {"role": "assistant", "content": "Hello Alice"}],
        "developer": [{"role": "developer", "content": "Answer in French."},
                      {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Salut"}],
        "multi-part": [{"role": "user", "content": [{"type": "text", "text": "one"},
                                                    {"type": "text", "text": "two"}]},
                       {"role": "assistant", "content": [{"type": "text", "text": "three"},
                                                         {"type": "text", "text": "four"}]}],
        "image-url": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                   {"type": "image_url", "image_url": {"url": URL,
                                                                                       "detail": "low"}}]},
                      {"role": "assistant", "content": "A cat."}],
        "image-base64": [{"role": "user", "content": [
            {"type": "text", "text": "And this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}, done],
        "audio": [{"role": "user", "content": [{"type": "input_audio",
                                                "input_audio": {"data": WAV, "format": "wav"}}]}, done],
        "file": [{"role": "user", "content": [{"type": "text", "text": "Summarise"},
                                              {"type": "file", "file": {
                                                  "file_data": f"data:application/pdf;base64,{PDF}",
                                                  "filename": "a.pdf"}}]}, done],
        "tool-call": [_ASK, {"role": "assistant", "content": None, "tool_calls": [_CALL_P]},
                      {"role": "tool", "tool_call_id": "call_p", "content": "sunny"}, done],
        "parallel-tool-calls": [_ASK, {"role": "assistant", "content": "Checking.",
                                       "tool_calls": [_CALL_P, _CALL_R]},
                                {"role": "tool", "tool_call_id": "call_p", "content": "sunny"},
                                {"role": "tool", "tool_call_id": "call_r", "content": "rain"}, done],
        "custom-tool-call": [_ASK, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_c", "type": "custom", "custom": {"name": "grep", "input": "weather *"}}]},
            {"role": "tool", "tool_call_id": "call_c", "content": "found"}, done],
        "tool-result-parts": [_ASK, {"role": "assistant", "content": None, "tool_calls": [_CALL_P]},
                              {"role": "tool", "tool_call_id": "call_p", "content": [
                                  {"type": "text", "text": "sunny"},
                                  {"type": "image_url", "image_url": {"url": URL}}]}, done],
        "names": [{"role": "user", "content": "Hi", "name": "alice"},
                  {"role": "assistant", "content": "Hello", "name": "bot"},
                  {"role": "user", "content": "Hi again", "name": "Alice Smith"}, done],
        "refusal": [{"role": "user", "content": "Do something bad"},
                    {"role": "assistant", "content": None, "refusal": "I can't help with that."}],
        "audio-output": [{"role": "user", "content": "Say hi"},
                         {"role": "assistant", "content": None, "audio": {
                             "id": "audio_1", "data": WAV, "expires_at": 1, "transcript": "Hi there"}}],
        "annotations": [{"role": "user", "content": "Source?"},
                        {"role": "assistant", "content": "See X.", "annotations": [
                            {"type": "url_citation", "url_citation": {"url": URL, "title": "X",
                                                                      "start_index": 4, "end_index": 5}}]}],
        "unknown-extras": [{"role": "user", "content": "Hi", "metadata": {"tenant": "t1"}, "id": "m1"},
                           {"role": "assistant", "content": "Hello", "x_trace": [1, 2, 3]}],
        "legacy-function": [_ASK, {"role": "assistant", "content": None, "function_call": {
            "name": "weather", "arguments": "{}"}},
            {"role": "function", "name": "weather", "content": "sunny"},
            done],
        # Shapes other frameworks leave that no model takes as they are.
        "foreign-unreadable": [{"role": "user", "content": None}, {"role": "user", "content": []},
                               {"role": "assistant", "content": None},
                               {"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]},
                               {"role": "function", "content": "42"},
                               {"role": "user", "content": "still there?"}, done],
        "orphans": [{"role": "tool", "tool_call_id": "gone", "content": "late"},
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [_CALL_P, _CALL_R]},
                    {"role": "tool", "tool_call_id": "call_p", "content": "sunny"}, done,
                    {"role": "assistant", "content": None, "tool_calls": [_CALL_R]}],
    }


# -- LangChain ------------------------------------------------------------------------------


def langchain_kinds() -> dict[str, list[BaseMessage]]:
    ask = HumanMessage("Weather in Paris and Rome?", id="h1")
    done = AIMessage("Done.", id="a9", response_metadata={"model_name": "gpt-x", "finish_reason": "stop"},
                     usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12})
    call_p = {"id": "call_p", "name": "weather", "args": {"city": "Paris"}}
    call_r = {"id": "call_r", "name": "weather", "args": {"city": "Rome"}}
    return {
        "text": [SystemMessage("Be brief."), HumanMessage("Hi, I'm Alice", id="h0"), done],
        "developer": [SystemMessage("Answer in French.", additional_kwargs={"__openai_role__": "developer"}),
                      HumanMessage("Hi"), AIMessage("Salut")],
        "multi-part": [HumanMessage([{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]),
                       AIMessage([{"type": "text", "text": "three"}, {"type": "text", "text": "four"}])],
        "image-url": [HumanMessage([{"type": "text", "text": "What is this?"},
                                    {"type": "image", "url": URL}]), AIMessage("A cat.")],
        "image-base64": [HumanMessage([{"type": "text", "text": "And this?"},
                                       {"type": "image", "base64": PNG, "mime_type": "image/png"}]), done],
        "audio": [HumanMessage([{"type": "audio", "base64": WAV, "mime_type": "audio/wav"}]), done],
        "file": [HumanMessage([{"type": "text", "text": "Summarise"},
                               {"type": "file", "base64": PDF, "mime_type": "application/pdf",
                                "filename": "a.pdf"}]), done],
        "thinking": [HumanMessage("Think first."), AIMessage([
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "text", "text": "Forty-two."}])],
        "reasoning": [HumanMessage("Think first."), AIMessage([
            {"type": "reasoning", "reasoning": "Step by step."}, {"type": "text", "text": "Forty-two."}])],
        "tool-use-blocks": [ask, AIMessage([
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_p", "name": "weather", "input": {"city": "Paris"}}],
            tool_calls=[call_p]), ToolMessage("sunny", tool_call_id="call_p"), done],
        "tool-use-only": [ask, AIMessage([
            {"type": "tool_use", "id": "call_p", "name": "weather", "input": {"city": "Paris"}}],
            tool_calls=[call_p]), ToolMessage("sunny", tool_call_id="call_p"), done],
        "tool-call": [ask, AIMessage("", tool_calls=[call_p], id="a1"),
                      ToolMessage("sunny", tool_call_id="call_p", name="weather"), done],
        "parallel-tool-calls": [ask, AIMessage("Checking.", tool_calls=[call_p, call_r]),
                                ToolMessage("sunny", tool_call_id="call_p"),
                                ToolMessage("rain", tool_call_id="call_r", status="error",
                                            artifact={"raw": 1}), done],
        "tool-result-parts": [ask, AIMessage("", tool_calls=[call_p]),
                              ToolMessage([{"type": "text", "text": "sunny"},
                                           {"type": "image", "url": URL}], tool_call_id="call_p"), done],
        "names": [HumanMessage("Hi", name="alice"), AIMessage("Hello", name="bot"),
                  HumanMessage("Hi again", name="Alice Smith"), done],
        "refusal": [HumanMessage("Do something bad"),
                    AIMessage("", additional_kwargs={"refusal": "I can't help with that."})],
        "unknown-extras": [HumanMessage("Hi", additional_kwargs={"tenant": "t1"}),
                           AIMessage("Hello", additional_kwargs={"x_trace": [1, 2]}, id="a2",
                                     response_metadata={"system_fingerprint": "fp"})],
        "legacy-function": [ask, AIMessage("", additional_kwargs={"function_call": {
            "name": "weather", "arguments": "{}"}}), FunctionMessage("sunny", name="weather"), done],
    }


# -- LlamaIndex -----------------------------------------------------------------------------


def llamaindex_kinds() -> dict[str, list[ChatMessage]]:
    def msg(role: str, *blocks: Any, **kwargs: Any) -> ChatMessage:
        return ChatMessage(role=role, blocks=list(blocks), additional_kwargs=kwargs)

    ask = msg("user", TextBlock(text="Weather in Paris and Rome?"))
    done = msg("assistant", TextBlock(text="Done."))
    return {
        "text": [msg("system", TextBlock(text="Be brief.")), msg("user", TextBlock(text="Hi, I'm Alice")),
                 msg("assistant", TextBlock(text="Hello Alice"))],
        "developer": [msg("developer", TextBlock(text="Answer in French.")),
                      msg("user", TextBlock(text="Hi")),
                      msg("assistant", TextBlock(text="Salut"))],
        "multi-part": [msg("user", TextBlock(text="one"), TextBlock(text="two")),
                       msg("assistant", TextBlock(text="three"), TextBlock(text="four"))],
        "image-url": [msg("user", TextBlock(text="What is this?"), ImageBlock(url=URL, detail="low")),
                      msg("assistant", TextBlock(text="A cat."))],
        "image-base64": [msg("user", TextBlock(text="And this?"),
                             ImageBlock(image=PNG.encode(), image_mimetype="image/png")), done],
        "audio": [msg("user", AudioBlock(audio=WAV.encode(), format="wav")), done],
        "file": [msg("user", TextBlock(text="Summarise"),
                     DocumentBlock(data=PDF.encode(), document_mimetype="application/pdf",
                                   title="a.pdf")), done],
        "document-url": [msg("user", DocumentBlock(url="https://example.invalid/a.pdf")),
                         msg("user", TextBlock(text="Did you read it?")), done],
        "thinking": [msg("user", TextBlock(text="Think first.")),
                     msg("assistant", ThinkingBlock(content="Let me think."), TextBlock(text="Forty-two."))],
        "thinking-only": [msg("user", TextBlock(text="Think first.")),
                          msg("assistant", ThinkingBlock(content="Let me think.")),
                          msg("user", TextBlock(text="And?")), done],
        "tool-call": [ask, msg("assistant", ToolCallBlock(tool_call_id="call_p", tool_name="weather",
                                                          tool_kwargs={"city": "Paris"})),
                      msg("tool", TextBlock(text="sunny"), tool_call_id="call_p"), done],
        "parallel-tool-calls": [ask, msg("assistant", TextBlock(text="Checking."),
                                         ToolCallBlock(tool_call_id="call_p", tool_name="weather",
                                                       tool_kwargs={"city": "Paris"}),
                                         ToolCallBlock(tool_call_id="call_r", tool_name="weather",
                                                       tool_kwargs={"city": "Rome"})),
                                msg("tool", TextBlock(text="sunny"), tool_call_id="call_p"),
                                msg("tool", TextBlock(text="rain"), tool_call_id="call_r"), done],
        "kwargs-tool-calls": [ask, msg("assistant", TextBlock(text=""), tool_calls=[_CALL_P]),
                              msg("tool", TextBlock(text="sunny"), tool_call_id="call_p", name="weather"),
                              done],
        "tool-result-parts": [ask, msg("assistant", ToolCallBlock(tool_call_id="call_p", tool_name="weather",
                                                                  tool_kwargs={"city": "Paris"})),
                              msg("tool", TextBlock(text="sunny"), ImageBlock(url=URL),
                                  tool_call_id="call_p"),
                              done],
        "names": [msg("user", TextBlock(text="Hi"), name="alice"), msg("assistant", TextBlock(text="Hello")),
                  msg("user", TextBlock(text="Hi again"), name="Alice Smith"), done],
        "unknown-extras": [msg("user", TextBlock(text="Hi"), tenant="t1"),
                           msg("assistant", TextBlock(text="Hello"), x_trace=[1, 2])],
        "function-without-name": [ask, msg("function", TextBlock(text="sunny")), done],
    }


# -- the Agents SDK (Responses items) ---------------------------------------------------------

def _output(text: str, mid: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "id": mid, "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": extra.pop("annotations", []),
                         "logprobs": []}], **extra}


def agents_kinds() -> dict[str, list[dict[str, Any]]]:
    ask = {"role": "user", "content": "Weather in Paris and Rome?"}
    done = _output("Done.", "msg_9")
    call_p = {"type": "function_call", "call_id": "call_p", "name": "weather",
              "arguments": '{"city":"Paris"}', "id": "fc_p", "status": "completed"}
    call_r = {"type": "function_call", "call_id": "call_r", "name": "weather",
              "arguments": '{"city":"Rome"}', "id": "fc_r", "status": "completed"}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Plan."}],
                 "encrypted_content": base64.b64encode(b"opaque" * 100).decode()}
    return {
        "text": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, I'm Alice"},
                 _output("Hello Alice", "msg_1")],
        "developer": [{"role": "developer", "content": "Answer in French."},
                      {"role": "user", "content": "Hi"},
                      _output("Salut", "msg_1")],
        "multi-part": [{"role": "user", "content": [{"type": "input_text", "text": "one"},
                                                    {"type": "input_text", "text": "two"}]},
                       {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                        "content": [{"type": "output_text", "text": "three", "annotations": []},
                                    {"type": "output_text", "text": "four", "annotations": []}]}],
        "image-url": [{"role": "user", "content": [{"type": "input_text", "text": "What is this?"},
                                                   {"type": "input_image", "image_url": URL,
                                                    "detail": "low"}]},
                      _output("A cat.", "msg_1")],
        "image-base64": [{"role": "user", "content": [
            {"type": "input_text", "text": "And this?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]}, done],
        "image-file-id": [{"role": "user", "content": [{"type": "input_text", "text": "And this?"},
                                                       {"type": "input_image", "file_id": "file_1",
                                                        "detail": "auto"}]}, done],
        "file": [{"role": "user", "content": [{"type": "input_text", "text": "Summarise"},
                                              {"type": "input_file", "file_data":
                                               f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}]},
                 done],
        "reasoning": [{"role": "user", "content": "Think first."}, reasoning, _output("Forty-two.", "msg_1")],
        "tool-call": [ask, reasoning, call_p,
                      {"type": "function_call_output", "call_id": "call_p", "output": "sunny"}, done],
        "parallel-tool-calls": [ask, call_p, call_r,
                                {"type": "function_call_output", "call_id": "call_p", "output": "sunny"},
                                {"type": "function_call_output", "call_id": "call_r", "output": "rain"},
                                done],
        "custom-tool-call": [ask, {"type": "custom_tool_call", "call_id": "call_c", "name": "grep",
                                   "input": "weather *", "id": "ctc_1"},
                             {"type": "custom_tool_call_output", "call_id": "call_c", "output": "found"},
                             done],
        "tool-result-parts": [ask, call_p, {"type": "function_call_output", "call_id": "call_p", "output": [
            {"type": "input_text", "text": "sunny"},
            {"type": "input_image", "image_url": URL, "detail": "auto"}]},
            done],
        "refusal": [{"role": "user", "content": "Do something bad"},
                    {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                     "content": [{"type": "refusal", "refusal": "I can't help with that."}]}],
        "hosted-tools": [{"role": "user", "content": "Latest news?"},
                         {"type": "web_search_call", "id": "ws_1", "status": "completed",
                          "action": {"type": "search", "query": "news"}},
                         _output("Here.", "msg_1", annotations=[
                             {"type": "url_citation", "url": URL, "title": "X", "start_index": 0,
                              "end_index": 4}])],
        "unknown-extras": [{"role": "user", "content": "Hi"},
                           _output("Hello", "msg_1", provider_data={"model": "x"})],
    }

