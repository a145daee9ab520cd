"""OAuth2 sign-in: access tokens (tokens), SASL messages (sasl), first sign-in (authorize)."""
