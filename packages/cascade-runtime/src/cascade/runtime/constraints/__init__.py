"""The constraints a run obeys (pause, concurrency, rate): matched to task names by scope, the
token buckets that pace them, and the holds a BLOCKED task names; and the engine's system
resources that tasks ask for (``with_constraints``): what is free, who holds what, who waits."""
