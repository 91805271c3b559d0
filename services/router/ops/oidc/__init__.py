"""People who log in through the region's identity provider (OpenID Connect).

The console is a relying party (authorization code with PKCE); the ops API takes the
provider's access tokens. The provider does the SITHS or Freja eID log-in; the router only
checks what it signed:

- :mod:`.tokens`: a JWT checked against the provider's keys (signature, algorithm, issuer,
  audience, times, nonce). Pure.
- :mod:`.claims`: who the token names (name, HSA-id) and which role its claims give. Pure.
- :mod:`.pkce`: one log-in attempt's state, nonce and PKCE verifier, and the authorization
  URL. Pure.
- :mod:`.provider`: the provider over HTTP (discovery, JWKS with refresh on an unknown key
  id, the code exchange, the refresh-token grant), with httpx and an injected transport.
- :mod:`.recheck`: a console session checked again with the provider (its refresh token for
  a fresh ID token, checked as at log-in): keep, revoke, or the provider is unreachable.
- :mod:`.sealed`: the refresh token sealed in the session's row (AES-GCM). Pure.
"""
