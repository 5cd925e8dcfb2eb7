"""dramatiq: the broker chosen from the settings, the jobs Loa enqueues (built by name),
the actors that run them, the collector's tuning and the dead letters.

Import order matters: ``broker`` sets the broker before ``actors`` defines any actor."""
