"""Served workflows: start requests over the broker taken (typed params, reruns, claims in a
shared store), the runs queued and run, and the announcement that says what is served."""
