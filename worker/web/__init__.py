"""``loa webhook``: the ASGI app (receipts, arrivals, health) and its hardening: a request
deadline and connection cap, and failed-authentication throttling."""
