"""LLM providers: one module per wire format (``openai_chat``, ``anthropic``, ``bedrock``).

``get_provider(model_ref, config)`` is the front door; it resolves ``provider/model``, finds the
credentials and imports only the wire-format module that is needed.
"""
