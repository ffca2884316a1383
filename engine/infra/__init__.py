"""The infrastructure as Firstline sees it: the service topology (networkx), telemetry sources (Prometheus
exposition, the simulation), the simulated infrastructure and metric trends.
"""
