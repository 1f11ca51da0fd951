"""confluent-kafka-python (librdkafka) driver for the Kafka listener tests.

produce BOOTSTRAP TOPIC N: an idempotent acks=all producer sends values 0..N-1 (one every
  ~2 ms), prints "HALF" once N/2 are acknowledged and waits for a line on stdin before going
  on (the test kills the leader then), and at the end prints "DELIVERED <ids>" and "ERRORS <n>".
e2e BOOTSTRAP TOPIC RATE SECONDS: paced single-record produce (linger 0, acks=1) and a consumer
  in the same process; prints "E2E <count> <p50 ms> <p99 ms>".
consume BOOTSTRAP TOPIC GROUP MAX: a group consumer from the earliest offset prints
  "OFFSET <partition> <offset> <value>" for up to MAX records (stops after 8 s without
  one), commits synchronously and closes.
"""
import sys
import time

from confluent_kafka import Consumer, Producer


def produce(bootstrap, topic, n):
    delivered = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(int(msg.value()))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    half_said = False
    for i in range(n):
        while True:
            try:
                p.produce(topic, str(i).encode(), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        time.sleep(0.002)
        if not half_said:
            p.poll(0)
            if len(delivered) >= n // 2:
                print("HALF", flush=True)
                sys.stdin.readline()
                half_said = True
    if not half_said:
        p.flush(60)
        print("HALF", flush=True)
        sys.stdin.readline()
    left = p.flush(90)
    print("DELIVERED " + " ".join(str(x) for x in sorted(delivered)), flush=True)
    print("ERRORS %d %s" % (len(errors) + left, ";".join(errors[:3])), flush=True)


def consume(bootstrap, topic, group, most):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "check.crcs": True,
    })
    c.subscribe([topic])
    got = 0
    last = time.time()
    while got < most and time.time() - last < 8:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            print("ERROR " + str(m.error()), flush=True)
            continue
        print("OFFSET %d %d %s" % (m.partition(), m.offset(), m.value().decode()), flush=True)
        got += 1
        last = time.time()
    if got > 0:
        c.commit(asynchronous=False)
    c.close()
    print("DONE %d" % got, flush=True)


def e2e(bootstrap, topic, rate, seconds):
    """Latency from produce() to the consumer's poll() at a paced rate (one process, one clock)."""
    import threading
    from confluent_kafka import TopicPartition, OFFSET_END
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "e2e",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 500,
        "fetch.min.bytes": 1,
        "fetch.error.backoff.ms": 10,
    })
    c.assign([TopicPartition(topic, 0, OFFSET_END)])
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "1"})
    total = int(rate * seconds)
    lat = []
    ready = threading.Event()
    done = threading.Event()

    def consume():
        while len(lat) < total and not done.is_set():
            m = c.poll(0.05)
            if m is None or m.error():
                continue
            v = m.value().decode()
            if v == "warmup":
                ready.set()
                continue
            lat.append(time.perf_counter() - float(v))

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.time() + 20
    while not ready.is_set() and time.time() < deadline:
        p.produce(topic, b"warmup", partition=0)
        p.flush(5)
        ready.wait(0.2)
    t0 = time.perf_counter()
    for i in range(total):
        wait = t0 + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        p.produce(topic, repr(time.perf_counter()).encode(), partition=0)
        p.poll(0)
    p.flush(10)
    t.join(5)
    done.set()
    t.join()
    lat.sort()
    n = len(lat)
    p50 = lat[n // 2] * 1000 if n else -1
    p99 = lat[min(n - 1, int(n * 0.99))] * 1000 if n else -1
    print("E2E %d %.3f %.3f" % (n, p50, p99), flush=True)
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "e2e":
        e2e(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    else:
        consume(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
