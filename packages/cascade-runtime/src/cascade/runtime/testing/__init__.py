"""Helpers for testing code that runs workflows: record an engine's events and wait on them;
serve workflows for the length of a block.

```python
recorder = EventRecorder()
engine.events.subscribe(recorder)
await recorder.until(lambda: recorder.names(TaskRunning).count("fetch") == 2)
```
"""

from ._recorder import EventRecorder, eventually
from ._serving import serving

__all__ = ["EventRecorder", "eventually", "serving"]
