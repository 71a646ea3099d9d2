"""Code shared by the three services: generated stubs, settings, logging, auth ids, routing."""
