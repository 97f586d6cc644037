#!/usr/bin/env python
"""Load check of the web app (see bench/README.md): concurrent users browsing worklists.

    python bench/web_load.py --patients 100000 [--users 20] [--seconds 30] [--month 2025-12]

1. The synthetic bundle (``run_bench.import_store``) in a new SQLite store, with one
   care-manager login per simulated user (spread over the practice's care managers)
   and one billing login.
2. ``billing serve`` on a free loopback port, as a child process (bounded: loopback
   only, stopped at the end).
3. The first login lands on the worklist and so evaluates the month (reported apart:
   the first worklist of a month after a change is that evaluation). Then `--users`
   threads, each logged in as its own care manager, request their worklist (filtered
   and sorted in turn, as htmx does) without pause for `--seconds`; every latency is
   kept.
4. Prints requests, errors, throughput and the p50 / p95 / max latency, and writes
   ``bench/results/web-load-latest.json``.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_bench import finish, import_store

PASSWORD = "load-check-password"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SORTS = ("deadline", "minutes", "amount", "patient")


class LoopbackPolicy(http.cookiejar.DefaultCookiePolicy):
    """Send Secure cookies to 127.0.0.1 over http, as browsers do for a loopback origin."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def opener() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar(policy=LoopbackPolicy())
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def log_in(base: str, name: str) -> urllib.request.OpenerDirector:
    client = opener()
    page = client.open(f"{base}/login", timeout=30).read().decode()
    found = TOKEN.search(page)
    assert found is not None
    body = urllib.parse.urlencode(
        {"username": name, "password": PASSWORD, "csrf_token": found.group(1)}
    ).encode()
    client.open(f"{base}/login", data=body, timeout=30).read()
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", default="2025-12")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8, help="server threads")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    store = import_store(args.patients, args.seed, args.month, "web-load-")
    billing = store.billing
    staff = _care_managers(store.url)
    names = [f"cm{i:02d}" for i in range(args.users)]
    for i, name in enumerate(names):
        _add(billing, store.url, name, "care_manager", staff[i % len(staff)])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (store.work / "serve.log").open("wb")
    server = subprocess.Popen(
        [*billing, "serve", "--port", str(port), "--threads", str(args.threads),
         "--db", store.url], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for(base)
        started = time.perf_counter()
        first = log_in(base, names[0])  # lands on her worklist: evaluates the month
        page = first.open(f"{base}/worklist?month={args.month}", timeout=600).read().decode()
        warm = time.perf_counter() - started
        if 'id="worklist"' not in page:
            raise RuntimeError("the warm-up request did not reach the worklist (login failed?)")
        print(f"warm-up (evaluates {args.month}): {warm:.2f} s", flush=True)
        clients = [log_in(base, name) for name in names]
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + args.seconds

        def browse(number: int, client: urllib.request.OpenerDirector) -> None:
            turn = 0
            while time.perf_counter() < stop_at:
                sort = SORTS[(number + turn) % len(SORTS)]
                url = f"{base}/worklist?month={args.month}&sort={sort}&status=all"
                headers = {"HX-Request": "true"} if turn % 2 else {}
                began = time.perf_counter()
                try:
                    request = urllib.request.Request(url, headers=headers)
                    with client.open(request, timeout=60) as answer:
                        ok = answer.status == 200 and b'id="count"' in answer.read()
                except OSError as exc:
                    ok = False
                    with lock:
                        errors.append(type(exc).__name__)
                took = time.perf_counter() - began
                with lock:
                    if ok:
                        latencies.append(took)
                turn += 1

        threads = [threading.Thread(target=browse, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")
    result: dict[str, object] = {
        "patients": args.patients,
        "month": args.month,
        "users": args.users,
        "seconds": args.seconds,
        "server_threads": args.threads,
        "warm_up_s": warm,
        "requests": len(latencies),
        "errors": len(errors),
        "per_second": len(latencies) / args.seconds,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else None,
        "p95_ms": p95 * 1000,
        "max_ms": ordered[-1] * 1000 if ordered else None,
    }
    print(json.dumps(result, indent=2))
    finish(result, "web-load-latest.json", store, args.keep)
    return 0 if not errors else 1


def _care_managers(url: str) -> list[str]:
    from billing_engine.store import Store

    with Store.open(url, create=False) as opened:
        practitioners = opened.load_bundle(["practitioners"])["practitioners"]
    found = practitioners.filter(
        practitioners["credential"].is_in(["RN", "LPN", "LCSW", "MA", "CHW"])
    )["practitioner_id"].to_list()
    return sorted(found)


def _add(billing: list[str], url: str, name: str, role: str, care_manager: str) -> None:
    subprocess.run(
        [*billing, "users", "add", name, "--role", role, "--care-manager", care_manager,
         "--password-stdin", "--db", url],
        input=PASSWORD + "\n", text=True, check=True, capture_output=True,
    )  # fmt: skip


def _wait_for(base: str, seconds: float = 60.0) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("billing serve did not answer")


if __name__ == "__main__":
    sys.exit(main())
