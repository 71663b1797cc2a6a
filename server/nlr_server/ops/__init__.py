"""Configuration, the nlr-admin command and the dev PKI."""
