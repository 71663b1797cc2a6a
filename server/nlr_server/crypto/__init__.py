"""Keyring, field encryption, blind index, and PIN and password verifiers."""
