"""The HTTP front end of ``codetether serve`` and ``codetether spawn``: the A2A bindings, the
audit log, the bus stream and the peer list behind one mandatory bearer token.

    from codetether.server.app import CodetetherServer, ServerOptions
    server = CodetetherServer(ServerOptions(port=0, backend="echo")).start()

Nothing is imported here: ``codetether --version`` must not pay for the server.
"""
