"""SOAR: Soft Optimistic Actor cRitic imitation learning (tabular and deep)."""
