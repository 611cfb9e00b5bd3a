"""The live view: the hub (the one broker connection), the model it feeds, fleet mode, the
pages' streams and the changes they send, and who may open them."""
