"""Analytics: the seed's success metrics read from the store's metric views (docs/metrics.md)."""
