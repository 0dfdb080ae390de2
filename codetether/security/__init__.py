"""Security pieces shared by every server: the bearer token and the audit log.

    from codetether.security import AuditLog, server_token
    token = server_token()                 # env, else a generated 0600 file (printed once)
    AuditLog().record("bearer", "http.request", "GET /v1/agents", 200, duration_ms=1.2)
"""

from codetether.security.audit import AuditLog, default_audit
from codetether.security.tokens import server_token, token_path

__all__ = ["AuditLog", "default_audit", "server_token", "token_path"]
