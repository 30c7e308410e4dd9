#!/usr/bin/env python3
"""A bad mobile-data path for the relay tests, as a TCP relay (this machine's kernel has no netem).

    tcp-impair.py --listen HOST:PORT --to HOST:PORT [--delay MS] [--exp MS] [--up-delay MS]
                  [--loss P] [--outage S/PERIOD] [--seed N]

Every byte a client sends to --listen reaches --to (and back) late: each chunk is held for
DELAY + exp(EXP) ms (--up-delay: another base delay for client→server, an asymmetric path), in
order, as TCP delivers. A chunk "lost" (probability P) costs what TCP's retransmission costs:
held another max(200 ms, 2 × its delay). During an outage (S seconds every PERIOD seconds,
the first PERIOD/2 after start) nothing is delivered; what was sent meanwhile arrives after it,
or the connection drops if the peer's keep-alive gives up first. Prints one line when it listens.
"""
import argparse
import asyncio
import random
import time


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


START = time.monotonic()   # outages come at the same instants for every connection


class Path:
    def __init__(self, args, seed):
        self.args = args
        self.rng = random.Random(seed)
        self.start = START

    def outage_end(self, t):
        """If t falls in an outage, when it ends; else None."""
        if not self.args.outage:
            return None
        dur, period = self.args.outage
        phase = (t - self.start - period / 2) % period
        if t - self.start >= period / 2 and phase < dur:
            return t + (dur - phase)
        return None

    def delay(self, up):
        a = self.args
        base = (a.up_delay if (up and a.up_delay is not None) else a.delay) / 1000
        d = base + (self.rng.expovariate(1000 / a.exp) if a.exp > 0 else 0)
        if a.loss > 0 and self.rng.random() < a.loss:
            d += max(0.2, 2 * d)
        return d


async def pump(reader, writer, path, up):
    queue = asyncio.Queue()
    last = 0.0

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            at, data = item
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            now = time.monotonic()
            at = max(last, now + path.delay(up))
            end = path.outage_end(at)
            if end is not None:
                at = max(at, end)
            last = at
            queue.put_nowait((at, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait(None)
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--delay", type=float, default=40)
    p.add_argument("--exp", type=float, default=20)
    p.add_argument("--up-delay", type=float, default=None)
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--outage", default=None, help="S/PERIOD, e.g. 1/15")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.outage:
        s, per = args.outage.split("/")
        args.outage = (float(s), float(per))
    lhost, lport = parse_addr(args.listen)
    thost, tport = parse_addr(args.to)
    count = 0

    async def handle(creader, cwriter):
        nonlocal count
        count += 1
        path = Path(args, args.seed * 1000 + count)
        try:
            sreader, swriter = await asyncio.open_connection(thost, tport)
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, swriter, path, True), pump(sreader, cwriter, path, False))

    server = await asyncio.start_server(handle, lhost, lport, reuse_address=True)
    print(f"tcp-impair listening on {lhost}:{lport} -> {thost}:{tport}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
