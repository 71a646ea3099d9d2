"""The REST gateway: TorBox Manager's REST calls turned into gRPC calls to the services."""
