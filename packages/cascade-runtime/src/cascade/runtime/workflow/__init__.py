"""What a user writes: tasks (``@task``, their options), the lazy results calling them makes, the
graph a target builds, and what a running task knows of itself (``current_task()``)."""
