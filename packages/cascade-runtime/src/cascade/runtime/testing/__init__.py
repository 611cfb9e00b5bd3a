"""Helpers for testing code that runs workflows: record an engine's events and wait on them.

```python
recorder = EventRecorder()
engine.events.subscribe(recorder)
await recorder.until(lambda: recorder.names(TaskRunning).count("fetch") == 2)
```
"""

from ._recorder import EventRecorder, eventually

__all__ = ["EventRecorder", "eventually"]
