"""A team's dashboard's access as the history keeps it: its refusals (the access audit), its
sign-in sessions and per-person API tokens."""
