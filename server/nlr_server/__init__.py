"""NLR, Norway's national borrower register: the gRPC server."""
