"""MCP: ``server`` exposes our tools to MCP clients; ``client`` + ``bridge`` give our agent the
tools of external MCP servers; ``config`` keeps them in ``[mcp.servers.<name>]``."""
