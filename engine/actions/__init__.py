"""What Firstline can do to the infrastructure: the action catalogue, the actuator with its one safety gate
(dry-run, join, cooldown, rate limit, concurrency, circuit breaker, timeout, verification, rollback, hand-off)
and the adapters that reach real systems.
"""
