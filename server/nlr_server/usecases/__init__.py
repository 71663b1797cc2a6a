"""The register's use cases: one function each, over a unit of work; no gRPC, no SQLAlchemy."""
