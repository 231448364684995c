"""The OpenAI Agents SDK ``Session`` over any store: ``agents.Runner.run(agent, input, session=...)``.

::

    from agents import Agent, Runner
    from adapters.openai_agents import AgentsSession
    import sessions

    store = sessions.connect()
    session = AgentsSession(store, "user-alice")
    await Runner.run(agent, "Hi, I'm Alice", session=session)

The SDK speaks Responses *items*; the store keeps canonical Chat Completions *messages*,
so LangChain, LlamaIndex and the native runner read the same history. Items are
converted in order (see :func:`items_to_messages` and :func:`messages_to_items`):

====================================  ============================================
Responses item                        canonical message
====================================  ============================================
message, role user/system/developer   same role; ``input_text`` -> ``text`` part,
                                      ``input_image`` (by URL) -> ``image_url``,
                                      ``input_file`` (data or id) -> ``file``,
                                      ``input_audio`` -> ``input_audio``
message, role assistant               assistant; ``output_text`` parts joined by a
                                      newline into ``content``, ``refusal`` -> refusal
function_call (one or several)        ``tool_calls`` of the assistant message just
                                      before them (a new one with ``content: None``
                                      if there is none; text right after such
                                      calls joins their message)
function_call_output                  tool message (``call_id`` -> ``tool_call_id``);
                                      text parts kept
anything else (reasoning, hosted      a *Responses-only* message (below)
tool calls, item references, ...)
====================================  ============================================

Nothing is lost for an Agents SDK reader: when the canonical message cannot reproduce
the items it was made from exactly (item ids, ``status``, annotations, an image given by
file id, a non-text tool output part...), the message also keeps those items under the
extra key ``x_responses_items``, and :meth:`AgentsSession.get_items` returns them as they
were, as long as the message still says the same thing (:func:`sessions.view.same_meaning`:
another framework's read and write-back re-serialising arguments or turning ``None``
into ``""`` keeps them; a message whose meaning was changed is converted afresh). Items
with no Chat Completions form at all are stored one per message as ``{"role":
"assistant", "content": "", "x_responses_only": true, "x_responses_items": [item]}``:
other frameworks must not send these to a model (:func:`sessions.view.model_view`
leaves them out). What other frameworks see is only the canonical part: images by file
id, file URLs and non-text tool outputs are not visible to them.

``get_items`` hands the history to a model, so what it returns is valid model input:
see :class:`AgentsSession`.
"""

from __future__ import annotations

from sessions import MissingDependencyError

try:
    import agents  # noqa: F401 - the extra this adapter belongs to
except ImportError as error:
    raise MissingDependencyError("openai-agents", "agents", feature="adapters.openai_agents") from error

from ._convert import items_to_messages, messages_to_items
from ._session import AgentsSession

__all__ = ["AgentsSession", "items_to_messages", "messages_to_items"]
