"""Healing the infrastructure before users notice: the monitor's ticks, anomaly and trend detection, Alertmanager
alerts, the healer that turns signals into remediations, and the scripted scenarios that exercise them.
"""
