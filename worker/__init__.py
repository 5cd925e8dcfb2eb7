"""Loa's processes: everything that needs a broker, a running loop or a network.

- ``settings``, ``logging``, ``metrics``, ``runtime``: what every process holds;
- ``queues``: dramatiq (broker, jobs, actors, dead letters);
- ``sending``: from a batch job to the provider and back to the ledger;
- ``campaign``: planning, launch, control, the embedded worker and the demo;
- ``arrivals``: tourist arrival events and their inbox;
- ``web``: ``loa webhook`` (receipts, arrivals);
- ``processes``: ``loa worker``'s supervisor and children;
- ``upkeep``: housekeeping, recovery, retention and the scheduler.
"""
