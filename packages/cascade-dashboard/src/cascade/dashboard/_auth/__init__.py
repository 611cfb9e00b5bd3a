"""Sign-in and access: tokens, OpenID Connect, an auth proxy, sessions, a team's roles as the
page applies them, API tokens and the access audit."""
