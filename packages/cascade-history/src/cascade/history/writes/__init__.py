"""What changes what a history holds: a batch of received messages turned into rows and written
in one transaction (each event once, runs' owners settled, logs and the per-task rollup kept
with it), and old runs and log lines pruned."""
