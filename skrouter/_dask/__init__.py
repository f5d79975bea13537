"""Dask implementation of :mod:`skrouter.dask`; import from there."""
