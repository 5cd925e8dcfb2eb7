"""The sending path, from a batch job to the provider and back to the ledger: ``dispatch``
(the work behind the actors), ``batch`` (a batch's messages, concurrently), ``lane`` and
``attempt`` (one provider's senders, one message's tries), ``gate``, ``ratelimit`` and
``cooldown`` (the provider's rate and pauses) and ``spool`` (results kept on disk while the
ledger is away)."""
