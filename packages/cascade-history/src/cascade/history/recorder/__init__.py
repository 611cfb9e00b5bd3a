"""The recorder: the broker's messages taken in its subscription callbacks (decoded, checked,
counted for gaps, their runs' sources followed), queued and written into a ``History`` in
batches by one writer task, and the runs' ends it missed read from their engines' summaries."""
