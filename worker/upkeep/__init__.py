"""What runs without an operator: the housekeeper's chores (reaping, finalising, sealing,
draining receipts), recovery after faults, retention of processed files, and the
scheduler's clock jobs."""
