"""What the ledger says in reports, aggregated in SQL: one campaign's report
(``campaign``), its timeline (``timeline``), and the daily update across campaigns
(``daily``)."""
