"""A2A (Agent2Agent) server and client: one protocol-neutral task service, bindings per wire.

``service.A2AService`` holds the tasks (``store.TaskStore``), runs them on an ``Executor`` and
fans their events out; ``jsonrpc_binding``, ``rest_binding`` and ``grpc_binding`` translate the
wire formats (v1.0, and v0.3 through ``dialects``) to its calls. Nothing here is imported by
``codetether --version``: the server command imports it when it runs.
"""
