"""CodeTether: a coding agent, an agent for other agents, and a multi-agent runtime.

Nothing is imported here on purpose: `codetether --version` must stay stdlib-only and fast.
"""

__version__ = "0.1.0"
