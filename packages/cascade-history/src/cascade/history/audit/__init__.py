"""The audit's rows, each kind stored once as received and read back: constraint changes,
cancels, decisions on held tasks, runs started (their name and origin), the broker logins'
witness notes that vouch for who issued them, and `cascade notify`'s claims on events and
its posts."""
