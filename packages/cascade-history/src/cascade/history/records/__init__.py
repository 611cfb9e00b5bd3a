"""What the history's queries and writes return: runs, tasks, their states and attempts,
decisions, audit rows, log lines and counts (plain records; times in epoch seconds, UTC)."""
