#!/usr/bin/env python3
"""nmea-feed.py PORT FILE [EPOCH_SECONDS [GPSD_PORT]] — serve an NMEA log to gpsd over TCP, deterministically.

gpsd reads it as a `tcp://127.0.0.1:PORT` source. The feeder prints "listening" once bound,
then waits for a line on stdin ("go") before sending anything, so the test connects its client
to gpsd first and no epoch is lost. It sends one epoch (the sentences up to the next
timestamp change, plus any junk between them) every EPOCH_SECONDS (default 0.005), prints
"epoch N" after each one, and "done" at the end (keeping the connection open). "pause" on
stdin stops sending ("paused at N") until "go" again; "quit" or end of stdin exits. When gpsd
goes away ("disconnected") the feeder waits for it to connect again ("connected") and goes on
with the epoch it was about to send. Lines starting with '#' are comments.

With GPSD_PORT the feeder also runs gpsd (`gpsd -N -n -S GPSD_PORT tcp://127.0.0.1:PORT`) as its
own child, in its own process group: "gpsd-kill" kills it (SIGKILL, "gpsd killed"),
"gpsd-start" starts it again. Whenever the feeder ends (quit, end of stdin because the test
died, SIGTERM) it kills gpsd first, so no gpsd outlives a test.
"""
import atexit, os, select, signal, socket, subprocess, sys, time

port, path = int(sys.argv[1]), sys.argv[2]
pace = float(sys.argv[3]) if len(sys.argv) > 3 else 0.005
gpsd_port = int(sys.argv[4]) if len(sys.argv) > 4 else None
gpsd = None


def gpsd_start():
    global gpsd
    gpsd = subprocess.Popen(['gpsd', '-N', '-n', '-S', str(gpsd_port), 'tcp://127.0.0.1:%d' % port],
                            stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr)


def gpsd_kill():
    global gpsd
    if gpsd is not None:
        gpsd.kill()
        gpsd.wait()
        gpsd = None


atexit.register(gpsd_kill)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

epochs, cur, last_time = [], [], None
with open(path, 'rb') as f:
    for line in f:
        if line.startswith(b'#'):
            continue
        if line.startswith(b'$GPGGA,') and cur:
            stamp = line.split(b',')[1]
            if stamp != last_time and last_time is not None:
                epochs.append(cur); cur = []
            last_time = stamp
        elif line.startswith(b'$GPGGA,'):
            last_time = line.split(b',')[1]
        cur.append(line)
if cur:
    epochs.append(cur)

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen(4)
print('listening %d epochs' % len(epochs), flush=True)
if gpsd_port:
    gpsd_start()

conn = None
running = False
i = 0
while True:
    sending = running and conn is not None and i < len(epochs)
    watch = [srv, sys.stdin] + ([conn] if conn is not None else [])
    r, _, _ = select.select(watch, [], [], 0 if sending else 0.05)
    if srv in r:
        new, _ = srv.accept()
        if conn is not None:
            conn.close()
        conn = new
        print('connected', flush=True)
        continue
    if conn is not None and conn in r:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b''
        if not data:   # gpsd went away
            conn.close(); conn = None
            print('disconnected', flush=True)
            continue
    if sys.stdin in r:
        cmd = sys.stdin.readline()
        if cmd == '' or cmd.strip() == 'quit':
            break
        if cmd.strip() == 'go':
            running = True
        elif cmd.strip() == 'pause':
            running = False
            print('paused at %d' % i, flush=True)
        elif cmd.strip() == 'gpsd-kill':
            gpsd_kill()
            print('gpsd killed', flush=True)
        elif cmd.strip() == 'gpsd-start':
            gpsd_start()
        continue
    if sending:
        try:
            conn.sendall(b''.join(epochs[i]))
        except OSError:
            conn.close(); conn = None
            print('disconnected', flush=True)
            continue
        i += 1
        print('epoch %d' % i, flush=True)
        if i == len(epochs):
            print('done', flush=True)
        time.sleep(pace)
