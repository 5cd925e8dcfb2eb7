"""What a goal is measured by (issue #24): outcomes imported per area and day, or as the
numbers that acted (``ledger.goals.outcomes``)."""
