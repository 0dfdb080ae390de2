"""The agent runtime: sessions, the turn loop, permissions, compaction, snapshots."""
