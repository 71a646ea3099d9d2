"""Benchmarks: pipeline, userstore, full stack and a raw SQLite baseline (``python -m bench``).

Modules: ``stats`` (medians, percentiles), ``machine`` (facts about the host), ``procstat`` (CPU
and memory of a process from /proc), ``workload`` (a realistic torrent mix evolving poll by poll,
and the rules every user has), ``ingest_client`` (drives a userstore's Ingest stream),
``pipeline`` / ``baseline`` / ``userstore`` / ``stack`` (the benchmarks), ``report`` (the table,
the JSON file and the section of docs/benchmarks.md), ``__main__`` (the command line).
"""
