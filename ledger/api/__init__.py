"""What the HTTP API (``scripts.api``) keeps in the ledger: accounts and their tokens
(``ledger.api.accounts``), and the long work it runs as jobs (``ledger.api.jobs``)."""
