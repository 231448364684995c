"""What the Agents SDK tests share: a tool, an agent on the local Chat Completions server.

Importing this module turns the SDK's tracing off (traces would go to api.openai.com).
"""

from __future__ import annotations

from typing import Any

import agents
import openai
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel

agents.set_tracing_disabled(True)


@agents.function_tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


def sdk_agent(client: openai.AsyncOpenAI, instructions: str | None = None) -> agents.Agent[Any]:
    """An agent with ``get_weather`` whose model is served by ``client``'s base URL."""
    return agents.Agent(
        name="Assistant", instructions=instructions, tools=[get_weather],
        model=OpenAIChatCompletionsModel(model="test-model", openai_client=client),
    )
