"""Where provider keys come from, in order: Vault KV v2, the local credential store, env vars.

Nothing in this package logs, prints or raises with a key in it.
"""
