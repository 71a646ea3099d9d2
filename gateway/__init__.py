"""REST gateway: turns TorBox Manager's REST calls into gRPC calls to the scheduler and userstores."""
