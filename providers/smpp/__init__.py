"""SMPP 3.4: a bind to a carrier's SMSC, the way carriers themselves send.

``pdu`` wraps smpplib's codec (it encodes and decodes PDUs; it checks what smpplib would
silently truncate), ``session`` is Loa's own asyncio bind (sequence numbers, window,
timeouts, keep-alive, receipts answered only once handled), ``errors`` says what a failed
request means for the message: not accepted (safe to send again) or fate unknown.
"""
