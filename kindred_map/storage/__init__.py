"""Beneath `kindred_map.store`: record rules, history, as-of, reconciliation, the two engines."""
