"""Relational store (things, sources, latest values, scans) and time-series sinks with their spool."""
