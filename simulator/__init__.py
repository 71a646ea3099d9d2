"""A simulated TorBox API: living torrents, quirks, rate limits and fault injection.

Run it with ``python -m simulator`` (flags or SIM_* variables: port, host, seed, time scale, cache
seconds, rate limit); once listening it prints ``SIMULATOR_READY port=<port>`` on stdout. Embed it
with :func:`simulator.app.create_app`. Tests drive it through the ``/_sim`` admin API
(:mod:`simulator.admin`): accounts and torrents, bulk set-up, faults, stats and the clock.

Modules: ``config`` (settings), ``clock`` (simulated time), ``model`` (profiles, pure life),
``catalog`` (random content), ``specs`` (spec -> content and life), ``torrents`` (one torrent and
its actions), ``accounts`` (accounts and the registry), ``ratelimit``, ``faults``, ``stats``,
``sources`` (magnets and .torrent files), ``params`` (FastAPI-style parsing), ``responses`` (every
body shape), ``render`` (torrent JSON), ``app`` (TorBox routes), ``admin`` (the /_sim routes).
"""
