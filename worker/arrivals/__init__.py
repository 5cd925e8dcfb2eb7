"""Tourist arrivals: ``ingest`` (events to welcome messages, exactly once) and ``inbox``
(the files carriers and schedulers drop)."""
