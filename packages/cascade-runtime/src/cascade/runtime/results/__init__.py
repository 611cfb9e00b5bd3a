"""Results kept by their tasks' fingerprints: the store and each run's manifest, what a run keeps
as it goes, and how a rerun plans and proves what it reuses."""
