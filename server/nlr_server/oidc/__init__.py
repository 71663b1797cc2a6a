"""OpenID Connect: validating ID tokens from ID-porten and Feide for the borrowers' logins."""
