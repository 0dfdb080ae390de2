"""Durable state: the one SQLite database in the data dir that sessions, A2A tasks and (later)
OKRs and approvals share."""
