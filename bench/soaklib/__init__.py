"""The soak's parts (`bench/soak.py` runs them): the HTTP client, the faulty telemetry source, the server process,
the traffic, the checks and the report; they import core, the store's audit queries and each other, never web."""
