"""Kernel: stdlib-only building blocks shared by every layer (config, paths, errors, SSE...)."""
