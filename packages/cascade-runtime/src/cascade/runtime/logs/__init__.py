"""Task log lines: captured per attempt, budgeted, and forwarded over the broker."""
