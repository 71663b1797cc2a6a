"""Verifiers for libraries' authorization codes: stored salted and slow, never as the code."""

from __future__ import annotations

from nlr_server.crypto import pbkdf2_verifier

# Checked once per library and code by a running server (then remembered), so a slow verifier
# costs little in service and a lot to anyone testing guesses against a copied database.
ITERATIONS = 200_000


def make_code_verifier(code: str) -> str:
    return pbkdf2_verifier.make_verifier(code, iterations=ITERATIONS, hash_name="sha256")


def verify_code(code: str, verifier: str) -> bool:
    return pbkdf2_verifier.verify(code, verifier)
