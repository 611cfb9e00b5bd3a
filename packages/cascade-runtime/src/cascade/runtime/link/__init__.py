"""A run's link to the broker: what it opens at its start and closes at its end (telemetry and
its envelopes, the constraints' subscription, commands, snapshots, summaries)."""
