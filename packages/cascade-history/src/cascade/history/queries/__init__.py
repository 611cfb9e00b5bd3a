"""The history's reads: runs, one run's tasks and its report, the tasks picked by state or name,
maps, per-task statistics, the audit trail, task logs, and the lists written as files."""
