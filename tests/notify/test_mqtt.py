"""Events reach an MQTT broker (a real one: amqtt, in this process)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import STAGE_PURPOSE, open_copy
from visage.core import Visage
from visage.usecases.watch import WatchOptions, watch


@pytest.fixture()
def broker() -> Iterator[int]:
    from amqtt.broker import Broker

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def start() -> Broker:
        b = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}}})
        await b.start()
        return b

    running = asyncio.run_coroutine_threadsafe(start(), loop).result(20)
    yield port
    asyncio.run_coroutine_threadsafe(running.shutdown(), loop).result(20)
    loop.call_soon_threadsafe(loop.stop)


def test_watch_events_are_published(
    broker: int,
    tmp_path: Path,
    shared_app: Visage,
    stage_home: tuple[Path, dict[str, str]],
    stage_clip: Path,
) -> None:
    received: list[tuple[str, dict[str, object]]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: received.append((m.topic, json.loads(m.payload)))
    listener.connect("127.0.0.1", broker)
    listener.subscribe("doors/#", qos=1)
    listener.loop_start()
    home, ids = stage_home
    app = open_copy(
        home,
        tmp_path / "home",
        models=shared_app,
        mqtt_url=f"mqtt://127.0.0.1:{broker}",
        mqtt_topic="doors",
    )
    sid = next(i for i, folder in ids.items() if folder == "lin_manuel_miranda")
    # Lin-Manuel Miranda is recognised in the first frames, Alex Lacamoire later.
    report = watch(app, str(stage_clip), STAGE_PURPOSE, WatchOptions(camera="cam", max_frames=30))
    assert [e.subject_id for e in report.events] == [sid]
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    listener.loop_stop()
    app.close()
    assert received, "nothing reached the broker"
    topic, payload = received[0]
    assert topic == "doors/event.start"  # at once, when the track is first recognised
    assert payload["subject_id"] == sid and payload["camera"] == "cam"
    assert "Lin" not in json.dumps(payload)


def test_messages_published_just_before_close_reach_the_broker(broker: int) -> None:
    """A CLI command's last message (published, then the process closes the core at
    once) is acknowledged by the broker before the client disconnects."""
    from visage.notify.mqtt import MqttPublisher

    received: list[str] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda _c, _u, m: received.append(json.loads(m.payload)["n"])
    listener.connect("127.0.0.1", broker)
    listener.subscribe("last/#", qos=1)
    listener.loop_start()
    time.sleep(0.3)  # the subscription is in place
    publisher = MqttPublisher(f"mqtt://127.0.0.1:{broker}", "last")
    for n in range(5):
        publisher.send("event.end", {"n": n})
    publisher.close()  # immediately: nothing may be left unacknowledged
    assert publisher.unacknowledged() == 0
    deadline = time.monotonic() + 10
    while len(received) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    listener.loop_stop()
    assert sorted(received) == [0, 1, 2, 3, 4]


def test_a_bad_mqtt_url_is_refused_without_echoing_its_password() -> None:
    from visage.errors import VisageError
    from visage.notify.mqtt import MqttPublisher

    with pytest.raises(VisageError) as refused:
        MqttPublisher("http://bob:hunter2@127.0.0.1:1883")
    assert "hunter2" not in str(refused.value)
