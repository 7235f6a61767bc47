"""A consumer process SIGKILLed at random points, 20 times, while 10,000 messages stream in, on
every backend: nothing is lost, and with the effect and its dedupe record written in one
transaction (consumer_worker.py) each effect happens once.

The stream is published in 20 slices, each while one worker runs; the worker is killed at a
random moment after it first made progress (so most kills land mid-batch, between a handler and
its ack or offset commit). A last worker finishes the stream. INTERCHANGE_KILL_SEED repeats a
run's kill schedule; INTERCHANGE_FAULT_REPORT appends the outcome as a JSON line.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from interchange import Bus, Settings
from interchange.testing import wait_until
from tests.faults.consumer_worker import Job, ParcelWeighed

WORKER = Path(__file__).with_name("consumer_worker.py")
STREAM = 10_000
KILLS = 20
SLICE = STREAM // KILLS

_STATIC = "?group.instance.id={run}&session.timeout.ms=6000"
BACKENDS = {
    # fixture, side, what the worker's URL adds, handlers at once
    "rabbitmq": ("amqp_url", "commands", "", 1),
    # static membership: a restarted member takes its partitions back without waiting for the
    # killed one's session to time out. The instance id and the group are this run's own: the
    # coordinator hands a rejoining static member its cached assignment, which for a shared
    # id was the previous run's topic (the CI failure this caught)
    "kafka": ("kafka_url", "events", _STATIC, 1),
    # key-ordered concurrency: 8 handlers at once, in order per key, committing only the
    # records done without a gap
    "kafka-keyed": ("kafka_url", "events", _STATIC, 8),
    # entries a killed consumer left pending are claimed by the next one after a second
    "redis": ("redis_url", "commands", "?claim_idle=1", 1),
}


@pytest.mark.redis
@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_consumer_killed_20_times_mid_stream_loses_nothing_and_repeats_no_effect(
    backend, request, redis_url, tmp_path
):
    fixture, side, worker_options, concurrency = BACKENDS[backend]
    url = request.getfixturevalue(fixture)
    seed = int(os.environ.get("INTERCHANGE_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    prefix, group = f"kill-{run}.", f"weighing-{run}"
    effects = redis.Redis.from_url(redis_url)
    key = f"{prefix}effects"
    other = f"memory://{uuid.uuid4().hex}"
    backends = {"commands": url, "events": other}
    if side == "events":
        backends = {"commands": other, "events": url}
    producer = Bus(Settings.without_environment(backends=backends, channel_prefix=prefix))

    publish_errors: list[str] = []

    def publish(first: int) -> None:
        try:
            publish_slice(first)
        except Exception as error:  # reported by the test, not lost in a thread
            publish_errors.append(repr(error))

    def publish_slice(first: int) -> None:
        for start in range(first, first + SLICE, 100):
            if side == "events":
                numbers = range(start, start + 100)
                producer.publish_many(
                    [ParcelWeighed(parcel=f"p{n % 16}", seq=n) for n in numbers],
                    keys=[f"p{n % 16}" for n in numbers],  # one partition key per parcel
                )
            else:
                producer.send_many([Job(seq=n) for n in range(start, start + 100)])

    log = tmp_path / "workers.log"  # every worker's stderr, quoted when one makes no progress

    def spawn() -> subprocess.Popen[bytes]:
        options = worker_options.format(run=f"kill-worker-{run}")
        arguments = [side, url + options, redis_url, prefix, group, str(concurrency)]
        with log.open("ab") as stderr:
            stderr.write(f"--- worker {len(spawned)} ---\n".encode())
            stderr.flush()
            spawned.append(
                subprocess.Popen([sys.executable, str(WORKER), *arguments], stderr=stderr)
            )
        return spawned[-1]

    spawned: list[subprocess.Popen[bytes]] = []

    def stalled(kill: int) -> str:
        tail = log.read_text(errors="replace")[-3000:]
        return f"no progress after kill {kill} (seed {seed}); workers' stderr ends:\n{tail}"

    # the queue, or the topic and the group, exist before the stream starts
    if side == "events":
        producer.publish(ParcelWeighed(parcel="p0", seq=-1))
    else:
        producer.send(Job(seq=-1))
    mid_stream = 0
    try:
        for kill in range(KILLS):
            worker = spawn()
            before = effects.llen(key)
            slice_ = threading.Thread(target=publish, args=(kill * SLICE,))
            slice_.start()
            try:
                # a random point once it is handling: mostly mid-batch
                wait_until(
                    lambda: effects.llen(key) > before,  # noqa: B023
                    60,
                    message=lambda: stalled(kill),  # noqa: B023
                )
                time.sleep(rng.uniform(0, 0.4))  # the kill's schedule, not a wait for a result
            finally:
                worker.kill()
                worker.wait(30)
                slice_.join(60)
            unique = len(set(effects.lrange(key, 0, -1)))
            mid_stream += unique < (kill + 1) * SLICE + 1
        finisher = spawn()
        try:
            wait_until(
                lambda: len(set(effects.lrange(key, 0, -1))) == STREAM + 1,
                180,
                message=lambda: f"handled {len(set(effects.lrange(key, 0, -1)))} (seed {seed})",
            )
        finally:
            finisher.kill()
            finisher.wait(30)
    finally:
        producer.close()
    assert publish_errors == []
    in_order = [int(x) for x in effects.lrange(key, 0, -1)]
    done = sorted(in_order)
    effects.delete(key)
    if report := os.environ.get("INTERCHANGE_FAULT_REPORT"):
        with open(report, "a") as file:
            outcome = {"fault": "consumer SIGKILL x20", "backend": backend, "seed": seed}
            outcome |= {"sent": STREAM, "kills_with_work_left": mid_stream}
            outcome |= {"lost": STREAM + 1 - len(set(done)), "repeated": len(done) - len(set(done))}
            file.write(json.dumps(outcome) + "\n")
    assert done == list(range(-1, STREAM)), f"every effect exactly once (seed {seed})"
    if side == "events":  # one partition key per parcel: each parcel's effects in publish order
        per_key: dict[int, list[int]] = {}
        for seq in in_order:
            if seq >= 0:  # -1 only created the topic, without a key
                per_key.setdefault(seq % 16, []).append(seq)
        broken = {
            k: [(a, b) for a, b in itertools.pairwise(seqs) if a > b][:3]
            for k, seqs in per_key.items()
            if seqs != sorted(seqs)
        }
        assert broken == {}, f"each parcel's effects in publish order (seed {seed})"
    assert mid_stream >= KILLS // 2, f"only {mid_stream} kills left work behind (seed {seed})"


CHURN_EVENTS = 3_000
CHURN_MEMBERS = 3
CHURN_EVERY = 2.0
"""Seconds between kills: the schedule of the churn, not a wait for a result."""


@pytest.mark.redis
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("concurrency", "partitions"), [(1, 1), (4, 1), (1, 4)])
def test_redis_group_members_killed_in_turn_keep_each_keys_events_in_order(
    concurrency, partitions, redis_url, tmp_path
):
    """Three worker processes in one group on Redis; every 2 s the oldest is SIGKILLed and a new
    one joins, while 3,000 keyed events are published. Nothing is lost, no effect repeats, and
    each key's effects are in publish order: only one member reads the group at a time (a
    lease of ``lease_ttl``), and a new holder finishes what the previous one left pending, in
    order, before it reads anything new. With ``partitions=4`` the topic is four streams with
    a lease each, shared out among the members."""
    run = uuid.uuid4().hex[:8]
    prefix, group = f"churn-{run}.", f"weighing-{run}"
    effects = redis.Redis.from_url(redis_url)
    key = f"{prefix}effects"
    url = f"{redis_url}?partitions={partitions}"
    producer = Bus(
        Settings.without_environment(
            backends={"commands": f"memory://{run}", "events": url}, channel_prefix=prefix
        )
    )
    log = tmp_path / "workers.log"
    members: list[subprocess.Popen[bytes]] = []

    def join() -> None:
        arguments = ["events", url + "&claim_idle=1&lease_ttl=1", redis_url, prefix, group]
        with log.open("ab") as stderr:
            stderr.write(f"--- member {len(members)} ---\n".encode())
            stderr.flush()
            process = [sys.executable, str(WORKER), *arguments, str(concurrency)]
            members.append(subprocess.Popen(process, stderr=stderr))

    def handled() -> list[int]:
        return [int(x) for x in effects.lrange(key, 0, -1)]

    published = threading.Event()
    publish_errors: list[str] = []

    def publish() -> None:  # 3,000 events over ~10 s: the churn happens while they flow
        try:
            for start in range(0, CHURN_EVENTS, 50):
                numbers = range(start, start + 50)
                producer.publish_many(
                    [ParcelWeighed(parcel=f"p{n % 16}", seq=n) for n in numbers],
                    keys=[f"p{n % 16}" for n in numbers],
                )
                time.sleep(0.16)  # the producer's pace, not a wait for a result
        except Exception as error:  # reported by the test, not lost in a thread
            publish_errors.append(repr(error))
        finally:
            published.set()

    kills = 0
    publisher = threading.Thread(target=publish)
    try:
        for _ in range(CHURN_MEMBERS):
            join()
        publisher.start()
        while not published.wait(CHURN_EVERY):
            oldest = next(m for m in members if m.poll() is None)
            oldest.kill()
            oldest.wait(30)
            kills += 1
            join()
        wait_until(
            lambda: len(set(handled())) >= CHURN_EVENTS,
            30,
            message=lambda: (
                f"handled {len(set(handled()))} of {CHURN_EVENTS}; workers' "
                f"stderr ends:\n{log.read_text(errors='replace')[-3000:]}"
            ),
        )
    finally:
        for member in members:
            member.kill()
            member.wait(30)
        publisher.join(60)
        producer.close()
    in_order = handled()
    effects.delete(key)
    topic = f"{prefix}{ParcelWeighed.contract_name}"
    streams = [topic, *(f"{topic}:{i}" for i in range(1, partitions))]
    readers = {c["name"] for s in streams for c in effects.xinfo_consumers(s, group)}
    assert publish_errors == []
    assert kills >= 4
    assert len(readers) >= 2, "the group changed hands at least once"
    assert sorted(in_order) == list(range(CHURN_EVENTS)), "every event's effect exactly once"
    per_key: dict[int, list[int]] = {}
    for seq in in_order:
        per_key.setdefault(seq % 16, []).append(seq)
    broken = {
        k: [(a, b) for a, b in itertools.pairwise(seqs) if a > b][:3]
        for k, seqs in per_key.items()
        if seqs != sorted(seqs)
    }
    assert broken == {}, "each parcel's effects in publish order"
