"""Rules: TBM's rule JSON as frozen values, evaluated over torrent states, planned into actions."""
