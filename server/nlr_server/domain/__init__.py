"""The register's model and rules in plain Python: no gRPC, no SQLAlchemy."""
