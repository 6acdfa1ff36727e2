"""Record ROS 2 messages into a rosbag2 (sqlite3 or MCAP) with `rosbags`, no ROS installation needed.

rclpy messages are converted field by field into the rosbags Jazzy typestore's classes and serialised with
its CDR serialiser: rclpy's `serialize_message` appends 4 uninitialised bytes to some messages (e.g. a
JointState with an empty `effort`), which strict CDR readers reject. The connection's message definition
also comes from the typestore, so the bag opens in `ros2 bag`, rosbags and the teleop importer alike.
Thread-safe: callbacks may record from any executor thread.
"""

from __future__ import annotations

import array
import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


def ros_type_name(message_class: type) -> str:
    """'sensor_msgs.msg.Image' class -> 'sensor_msgs/msg/Image'."""
    package = message_class.__module__.split(".")[0]
    return f"{package}/msg/{message_class.__name__}"


def to_rosbags(message: Any, typestore: Any) -> Any:
    """An rclpy message as the equivalent rosbags message object (recursively)."""
    typename = ros_type_name(type(message))
    if typename not in typestore.types:
        raise ValueError(f"message type {typename} is not in the rosbags typestore")
    cls = typestore.types[typename]
    fields = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("__")]  # skip __msgtype__
    return cls(**{name: _convert(getattr(message, name), typestore) for name in fields})


def _convert(value: Any, typestore: Any) -> Any:
    if hasattr(value, "get_fields_and_field_types"):
        return to_rosbags(value, typestore)
    if isinstance(value, array.array):
        return np.asarray(value)
    if isinstance(value, (bytes, bytearray)):
        return np.frombuffer(bytes(value), dtype=np.uint8)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list):
        return [_convert(item, typestore) for item in value]
    return value


class BagRecorder:
    def __init__(self, path: str | Path, storage: str = "sqlite3") -> None:
        if storage not in STORAGES:
            raise ValueError(f"bag storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} already exists; choose a new path")
        self._typestore = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def write(self, topic: str, message: Any, timestamp_ns: int) -> None:
        typename = ros_type_name(type(message))
        data = self._typestore.serialize_cdr(to_rosbags(message, self._typestore), typename)
        with self._lock:
            if self._writer is None:
                return
            connection = self._connections.get(topic)
            if connection is None:
                connection = self._writer.add_connection(topic, typename, typestore=self._typestore)
                self._connections[topic] = connection
            self._writer.write(connection, int(timestamp_ns), data)
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
