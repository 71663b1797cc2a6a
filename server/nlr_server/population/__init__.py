"""Folkeregisteret (the population register) and Maskinporten, its token issuer: HTTP adapters.

The sync worker (issue [5/9]) reads the register's event feed and persons through these; nothing
here decides what a change means for a borrower.
"""
