"""The fake SMSC (``providers.fakes.smpp``) as a process, with HTTP control endpoints in
the style of the other fakes (``providers.fakes.common``), so ``tests/fake_gateway.py``
can start and steer it: the last word of its first line is the control URL.

``python -m providers.fakes.smpp --port 2775 [--control-port 0] [--receipts]
[--receipt-delay S] [--receipt-early] [--message-ids hex|decimal] [--receipt-ids
same|hex|decimal] [--rules JSON]`` prints ``listening on smpp://HOST:PORT control
http://HOST:CPORT``. Endpoints:

- ``GET /_fake/received``: one row per submit_sm, ``[arrival, destination, message_id,
  outcome]`` (the shape of the HTTP fakes' rows); ``GET /_fake/submits``: the same,
  decoded (concatenation, text, esm_class, data_coding); ``GET /_fake/deliver_resps``;
  ``GET /_fake/sessions``: binds asked, unbinds received, connections open, receipts
  sent again;
- ``POST /_fake/faults``: a list of rules (``providers.fakes.smpp.Rule`` keys);
- ``POST /_fake/config``: any of the receipt settings, ``message_ids``, ``silent``;
- ``POST /_fake/release`` (answer held submit_sm), ``/_fake/drop`` (close every
  connection), ``/_fake/reset`` (forget rules and records).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from aiohttp import web

from providers.fakes.smpp import FakeSmsc, Rule
from providers.fakes.smpp_records import RULE_HELP

SETTINGS = ("receipts", "receipt_delay", "receipt_early", "receipt_stat", "receipt_text")
SETTINGS += ("receipt_tlvs", "receipt_ids", "message_ids", "silent")


def make_control(smsc: FakeSmsc) -> web.Application:
    """The control endpoints over ``smsc`` (see the module's docstring)."""

    async def received(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        rows = [[s.arrived, s.destination, s.message_id or "", s.outcome] for s in smsc.submits]
        return web.json_response({"count": len(rows), "received": rows[since:]})

    async def submits(request: web.Request) -> web.Response:
        rows = [
            {
                "sequence": s.pdu.sequence,
                "connection": s.connection,
                "destination": s.destination,
                "source": s.pdu.text("source_addr"),
                "esm_class": s.pdu.number("esm_class"),
                "data_coding": s.pdu.number("data_coding"),
                "udh": s.udh.hex(),
                "concat": s.concat,
                "text": s.text,
                "message_id": s.message_id,
                "outcome": s.outcome,
            }
            for s in smsc.submits
        ]
        return web.json_response(rows)

    async def sessions(request: web.Request) -> web.Response:
        """Binds asked (command, system_id, status answered), unbinds received, open
        connections, receipts sent again (answered with an error): what an ESME did with
        its sessions."""
        open_now = sum(1 for c in smsc._connections if not c.writer.is_closing())
        said = {"binds": smsc.binds, "unbinds": smsc.unbinds, "open": open_now}
        return web.json_response({**said, "receipts_retried": smsc.receipts_retried})

    async def deliver_resps(request: web.Request) -> web.Response:
        return web.json_response([asdict(answer) for answer in smsc.deliver_resps])

    async def faults(request: web.Request) -> web.Response:
        try:
            raw = await request.json()
            rules = [Rule.parse(item) for item in (raw if isinstance(raw, list) else [raw])]
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        smsc.rules.extend(rules)
        return web.json_response({"rules": len(smsc.rules)})

    async def config(request: web.Request) -> web.Response:
        raw = await request.json()
        unknown = set(raw) - set(SETTINGS)
        if unknown:
            return web.json_response({"error": f"unknown: {sorted(unknown)}"}, status=400)
        for name, value in raw.items():
            setattr(smsc, name, value)
        return web.json_response({name: getattr(smsc, name) for name in SETTINGS})

    async def release(request: web.Request) -> web.Response:
        return web.json_response({"released": smsc.release()})

    async def drop(request: web.Request) -> web.Response:
        await smsc.drop()
        return web.json_response({"dropped": True})

    async def reset(request: web.Request) -> web.Response:
        smsc.rules.clear()
        smsc.submits.clear()
        smsc.deliver_resps.clear()
        smsc.binds.clear()
        smsc.silent = False
        return web.json_response({"reset": True})

    app = web.Application()
    app.router.add_get("/_fake/received", received)
    app.router.add_get("/_fake/submits", submits)
    app.router.add_get("/_fake/deliver_resps", deliver_resps)
    app.router.add_get("/_fake/sessions", sessions)
    for path, handler in (("faults", faults), ("config", config), ("release", release)):
        app.router.add_post(f"/_fake/{path}", handler)
    app.router.add_post("/_fake/drop", drop)
    app.router.add_post("/_fake/reset", reset)
    return app


async def serve(smsc: FakeSmsc, host: str, port: int, control_port: int) -> None:
    bound = await smsc.start(host, port)
    runner = web.AppRunner(make_control(smsc), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, control_port).start()
    control = runner.addresses[0][1]
    print(f"listening on smpp://{host}:{bound} control http://{host}:{control}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local SMSC speaking SMPP 3.4.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--control-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--system-id", default="loa")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--receipts", action="store_true", help="a receipt per part asked")
    parser.add_argument("--receipt-delay", type=float, default=0.0)
    parser.add_argument("--receipt-early", action="store_true", help="before submit_sm_resp")
    parser.add_argument("--message-ids", choices=("hex", "decimal"), default="hex")
    parser.add_argument("--receipt-ids", choices=("same", "hex", "decimal"), default="same")
    parser.add_argument("--rules", default="[]", help=RULE_HELP.replace("%", "%%"))
    args = parser.parse_args()
    smsc = FakeSmsc(
        args.system_id,
        args.password,
        rules=[Rule.parse(item) for item in json.loads(args.rules)],
        message_ids=args.message_ids,
        receipt_ids=args.receipt_ids,
        receipts=args.receipts,
        receipt_delay=args.receipt_delay,
        receipt_early=args.receipt_early,
    )
    try:
        asyncio.run(serve(smsc, args.host, args.port, args.control_port))
    except KeyboardInterrupt:
        sys.exit(0)
