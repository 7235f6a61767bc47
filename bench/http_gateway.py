"""POST /commands through the HTTP gateway on RabbitMQ, side by side in one run:

  (1) Interchange's gateway, concurrent requests coalesced into pipelined confirmed batches;
  (a) the same app storing each request with its own confirmed send (coalesce=False);
  (b) a minimal FastAPI endpoint publishing through FastStream's RabbitBroker (publisher
      confirms on, as aio-pika sets them).

Each server runs in a process of its own on 127.0.0.1; this process is the load generator
(wrk: a Python client could not load the servers; measured here, httpx topped out near 300
req/s where uvicorn serves ~2,900 of an empty endpoint). Prints req/s, p50 and p99 latency and
the ratios.

    apt-get install wrk; .venv/bin/pip install 'faststream[rabbit]'     # bench only
    .venv/bin/python bench/http_gateway.py [--url amqp://...] [--seconds 10] [--concurrency 64]
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
from rich.console import Console
from rich.table import Table

CASES = {
    "coalesced": "Interchange gateway (coalesced)",
    "per-request": "Interchange gateway, one send per request (a)",
    "faststream": "FastAPI + FastStream RabbitBroker (b)",
}


def serve(case: str, url: str, port: int, prefix: str) -> None:
    import uvicorn

    if case == "faststream":
        from fastapi import FastAPI
        from faststream.rabbit import RabbitBroker, RabbitQueue
        from pydantic import BaseModel

        class Order(BaseModel):
            order_id: str
            quantity: int

        broker = RabbitBroker(url.replace("amqp://", "amqp://", 1).rstrip("/") + "/")
        queue = RabbitQueue(f"{prefix}faststream.order", durable=True)
        app = FastAPI(on_startup=[broker.start], on_shutdown=[broker.stop])

        @app.post("/commands/bench.order", status_code=202)
        async def post(order: Order) -> dict[str, str]:
            message_id = str(uuid.uuid4())
            await broker.publish(order, queue=queue, message_id=message_id)
            return {"id": message_id}

    else:
        from interchange import Bus, Command, Settings
        from interchange.connectors.http import gateway

        class BenchOrder(Command, name="bench.order", version=1):
            order_id: str
            quantity: int

        bus = Bus(
            Settings.without_environment(
                backends={"commands": url, "events": "memory://bench"}, channel_prefix=prefix
            )
        )
        app = gateway(bus, ["bench.order"], coalesce=case == "coalesced")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SCRIPT = """
wrk.method = "POST"
wrk.body = '{"order_id": "O-1", "quantity": 1}'
wrk.headers["Content-Type"] = "application/json"
"""


def _millis(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def load(port: int, seconds: int, concurrency: int) -> tuple[float, float, float]:
    """wrk (one thread, ``concurrency`` connections) against the server: req/s, p50, p99."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(SCRIPT)
        script.flush()
        url = f"http://127.0.0.1:{port}/commands/bench.order"
        warm = ["wrk", "-t1", "-c8", "-d2s", "-s", script.name, url]
        subprocess.run(warm, capture_output=True, check=True)
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s"]
        out = subprocess.run(
            [*command, script.name, url], capture_output=True, text=True, check=True
        ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"the server answered errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _millis(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _millis(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    return rate, p50, p99


def run_case(case: str, url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    port, prefix = _free_port(), f"bench-{uuid.uuid4().hex[:8]}."
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", case, "--url", url, "--port", str(port),
         "--prefix", prefix],
        env={k: v for k, v in os.environ.items() if not k.startswith("INTERCHANGE_")},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        return load(port, seconds, concurrency)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "INTERCHANGE_BACKENDS__COMMANDS", "amqp://guest:guest@127.0.0.1:5672//"
        ),
    )
    parser.add_argument("--seconds", type=int, default=10, help="load per case")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", choices=sorted(CASES))
    parser.add_argument("--port", type=int)
    parser.add_argument("--prefix", default="bench.")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.url, args.port, args.prefix)
        return
    results = {case: run_case(case, args.url, args.seconds, args.concurrency) for case in CASES}
    title = f"POST /commands for {args.seconds}s per case, {args.concurrency} connections (wrk)"
    table = Table(title=title)
    for column in ("case", "req/s", "p50 ms", "p99 ms", "x (a)", "x (b)"):
        table.add_column(column, justify="right" if column != "case" else "left")
    base_a, base_b = results["per-request"][0], results["faststream"][0]
    for case, (rate, p50, p99) in results.items():
        table.add_row(
            CASES[case], f"{rate:,.0f}", f"{p50:.1f}", f"{p99:.1f}",
            f"{rate / base_a:.2f}", f"{rate / base_b:.2f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
