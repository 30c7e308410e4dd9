#!/usr/bin/python3
"""Hostile traffic on a convoy's relay topic, for the relay tests (Debian's python3-paho-mqtt).

    relay-flood.py --host H --port P --topic T --count N [--seed S]

Listens on T/m until it has caught a few of the convoy's real envelopes, then publishes N
messages to T/m at QoS 0, in turn: a real envelope again (a replay), a real one with its last
byte flipped (forged), a real one under another group id (foreign), and random bytes
(garbage). Prints one JSON line with what it sent by kind.
"""
import argparse
import json
import random
import sys
import time

import paho.mqtt.client as mqtt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    caught = []

    c = mqtt.Client(client_id=f"flood-{a.seed}", protocol=mqtt.MQTTv311)
    c.on_message = lambda _c, _u, m: caught.append(bytes(m.payload)) if len(caught) < 20 else None
    c.connect(a.host, a.port)
    c.subscribe(a.topic + "/m", qos=0)
    c.loop_start()
    end = time.monotonic() + 30
    while len(caught) < 5 and time.monotonic() < end:
        time.sleep(0.05)
    if not caught:
        print(json.dumps({"error": "no envelope heard on the topic"}), flush=True)
        sys.exit(1)
    c.unsubscribe(a.topic + "/m")
    sent = {"replayed": 0, "forged": 0, "foreign": 0, "garbage": 0}
    kinds = list(sent)
    for i in range(a.count):
        kind = kinds[i % 4]
        real = rng.choice(caught)
        if kind == "replayed":
            payload = real
        elif kind == "forged":
            payload = real[:-1] + bytes([real[-1] ^ 0x5A])
        elif kind == "foreign":
            payload = real[:2] + bytes(rng.getrandbits(8) for _ in range(8)) + real[10:]
        else:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        info = c.publish(a.topic + "/m", payload, qos=0)
        while info.rc == mqtt.MQTT_ERR_NO_CONN or info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            time.sleep(0.01)
            info = c.publish(a.topic + "/m", payload, qos=0)
        sent[kind] += 1
        if i % 500 == 499:
            time.sleep(0.05)   # let the broker's queues drain: a flood, not a loss test
    time.sleep(1)
    c.loop_stop()
    c.disconnect()
    print(json.dumps(sent), flush=True)


if __name__ == "__main__":
    main()
