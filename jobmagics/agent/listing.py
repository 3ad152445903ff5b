"""Entry run over SSH: prints this user's detached sessions on this computer as one line of JSON."""
from __future__ import annotations

import json
import os
import socket
import sys

from ..core import wire
from .detached import default_dir


def _status(path, token):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
        wire.FrameWriter(sock.makefile("wb", buffering=0)).send(
            wire.HELLO, {"token": token, "intent": "status", "applied": {}})
        frame = wire.read_frame(sock.makefile("rb"))
    except (OSError, EOFError, wire.ProtocolError):
        return None
    finally:
        sock.close()
    return frame.control if frame is not None and frame.kind == wire.HELLO else None


def main():
    directory = default_dir()
    found = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".json"):
            continue
        sid = entry[:-5]
        try:
            with open(os.path.join(directory, entry)) as fh:
                info = json.load(fh)
            with open(os.path.join(directory, sid + ".token")) as fh:
                token = fh.read().strip()
            os.kill(info["pid"], 0)
        except (OSError, ValueError, KeyError):
            continue
        answer = _status(os.path.join(directory, sid + ".sock"), token) or {}
        found.append({"id": sid, "name": info.get("name"), "pid": info["pid"], "dir": directory, "token": token,
                      "availability": answer.get("availability", "None"),
                      "jobs": [{"name": j["name"], "state": j["state"]} for j in answer.get("jobs", [])]})
    sys.stdout.write(json.dumps(found) + "\n")
    sys.stdout.flush()
