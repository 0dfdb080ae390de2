"""ACP (the Agent Client Protocol of Zed and other editors): ``codetether acp`` over stdio."""
