"""``loa api``: the HTTP API for the province's systems and people (issue #23), on its own
port, apart from ``loa webhook`` (receipts come from the internet; this belongs on an
internal network). FastAPI, for the OpenAPI description it makes from the same typed
models that check each request (``/openapi.json``, the docs at ``/docs``): a well-kept
framework on the Starlette Loa's webhook already runs on.

- ``auth``: bearer tokens of ``ledger.api.accounts``, and the role each route needs;
- ``problems``: every error as RFC 9457 problem details, never a traceback;
- ``app``: the routes.
"""
