"""The infrastructure as Firstline sees it: the service topology (networkx, `topology.py`), telemetry sources
(`telemetry.py`: the simulation, a scrape), the Prometheus text format read and written (`prometheus_text.py`),
the checks every sample passes (`samples.py`), counter rates and histogram quantiles (`rates.py`), the simulated
infrastructure (`simulation.py`) and metric trends (`trends.py`).
"""
