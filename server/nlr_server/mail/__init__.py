"""Outgoing email: the register's notices to borrowers, sent through an SMTP server."""
