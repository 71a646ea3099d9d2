"""The pure core: diff, derived telemetry, speed aggregates, events and rules; no I/O, no clock."""
