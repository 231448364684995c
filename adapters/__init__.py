"""Framework adapters over the neutral session layer.

One module per framework, each imported on its own so that only the framework you use
needs to be installed: ``adapters.langchain``, ``adapters.llamaindex``,
``adapters.openai_agents`` and the native runner ``adapters.runner``.
"""
