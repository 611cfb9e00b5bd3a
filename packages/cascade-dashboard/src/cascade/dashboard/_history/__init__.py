"""The history: where the page reads it from, and its API (/api/history/...)."""
