"""Where plain-function tasks run: the executor seam, threads (the default) and worker
processes."""
