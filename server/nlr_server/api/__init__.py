"""The gRPC edge: servicers (proto to domain and back), interceptors and the server."""
