"""The processes ``loa worker`` supervises (``worker.processes.supervisor``), one per run of
``python -m worker.processes.child KIND``:

- ``worker --threads N --queues Q …``: a dramatiq worker (dramatiq's public ``Worker``)
  on Loa's broker; SIGTERM finishes the jobs in hand (up to the supervisor's
  ``SHUTDOWN_SECONDS``) and gives back the ones fetched and not started;
- ``housekeeping``: the reaper, the sealer, the receipt drainer … (``worker.upkeep.housekeeping``);
- ``metrics --host H --port P``: Prometheus' exposition of every process's metrics
  (prometheus-client's multiprocess collector over the directory they share).

SIGINT is ignored here: Ctrl-C in a terminal reaches the whole process group, and the
supervisor, which gets it too, stops its children in order. A child whose supervisor is
gone stops by itself within a second.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

#: Where the supervisor puts its pid for its children.
SUPERVISOR_PID = "LOA_SUPERVISOR_PID"


def _stop_on_sigterm() -> threading.Event:
    """An event set by SIGTERM, or when the supervisor is gone (killed with SIGKILL, its
    children would otherwise live on unsupervised, and a new ``loa worker`` beside them
    would double them)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The supervisor says who it is: it may die before this process gets here.
    parent = int(os.environ.get(SUPERVISOR_PID, os.getppid()))

    def orphaned() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, name="loa-parent-watch", daemon=True).start()
    return stop


def run_worker(threads: int, queues: list[str]) -> int:
    import dramatiq

    from worker.processes.liveness import keep_alive
    from worker.processes.supervisor import SHUTDOWN_SECONDS
    from worker.queues import actors  # noqa: F401 - sets the broker and declares the actors
    from worker.runtime import close_runtime, get_runtime
    from worker.settings import get_settings

    stop = _stop_on_sigterm()
    broker = dramatiq.get_broker()
    broker.emit_after("process_boot")
    keep_alive(get_settings())  # publishing its claims before it makes any
    worker = dramatiq.Worker(broker, queues=set(queues), worker_threads=threads)
    worker.start()
    get_runtime().open_providers()  # a provider with binds binds now, to hear receipts
    stop.wait()
    worker.stop(timeout=SHUTDOWN_SECONDS * 1000)
    close_runtime()  # and unbinds cleanly
    broker.close()
    return 0


def run_housekeeping() -> int:
    from worker.upkeep.housekeeping import keep_house

    stop = _stop_on_sigterm()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # its chores are safe to cut anywhere
    threading.Thread(target=lambda: (stop.wait(), os._exit(0)), daemon=True).start()
    return keep_house()


def run_metrics(host: str, port: int) -> int:
    from wsgiref.simple_server import WSGIRequestHandler

    from prometheus_client import CollectorRegistry, make_wsgi_app, multiprocess
    from prometheus_client.exposition import ThreadingWSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

    stop = _stop_on_sigterm()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    server = make_server(
        host, port, make_wsgi_app(registry), ThreadingWSGIServer, handler_class=Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.processes.child")
    kinds = parser.add_subparsers(dest="kind", required=True)
    worker = kinds.add_parser("worker")
    worker.add_argument("--threads", type=int, required=True)
    worker.add_argument("--queues", nargs="+", required=True)
    kinds.add_parser("housekeeping")
    metrics = kinds.add_parser("metrics")
    metrics.add_argument("--host", required=True)
    metrics.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    from worker.logging import configure_logging
    from worker.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if args.kind == "worker":
        return run_worker(args.threads, args.queues)
    if args.kind == "housekeeping":
        return run_housekeeping()
    return run_metrics(args.host, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
