import io
import pickle
import struct

import pytest

from jobmagics.core import serialize, wire


def test_frames_roundtrip_with_out_of_band_buffers():
    stream = io.BytesIO()
    writer = wire.FrameWriter(stream)
    payload = serialize.dumps(bytearray(b"z" * 100_000))
    buffers = []
    control = {"value": wire.payload_to_control(payload, buffers)}
    writer.send(wire.START, control, job=7, buffers=buffers)
    writer.send(wire.BYE, {})
    stream.seek(0)
    first = wire.read_frame(stream)
    assert (first.kind, first.job, first.seq) == (wire.START, 7, 1)
    restored = serialize.loads(wire.payload_from_control(first.control["value"], first.buffers))
    assert restored == bytearray(b"z" * 100_000)
    second = wire.read_frame(stream)
    assert (second.kind, second.seq) == (wire.BYE, 2)
    assert wire.read_frame(stream) is None


def test_control_part_refuses_classes_and_functions():
    evil = pickle.dumps(print, protocol=5)
    with pytest.raises(wire.ProtocolError, match="builtins.print"):
        wire.loads_control(evil)


def test_bad_magic_and_other_versions_are_refused():
    with pytest.raises(wire.ProtocolError, match="bad magic"):
        wire.read_frame(io.BytesIO(b"XX" + b"\0" * 30))
    header = struct.pack("!2sBBIQII", b"JM", wire.PROTOCOL_VERSION + 1, wire.HELLO, 0, 0, 0, 0)
    with pytest.raises(wire.ProtocolError, match="protocol version"):
        wire.read_frame(io.BytesIO(header))


def test_truncated_frame_is_an_error_not_a_clean_end():
    stream = io.BytesIO()
    wire.FrameWriter(stream).send(wire.HELLO, {"x": "y" * 100})
    with pytest.raises(EOFError):
        wire.read_frame(io.BytesIO(stream.getvalue()[:-10]))


def test_a_big_bytes_buffer_is_read_into_a_bytes_object_and_others_into_writable_memory():
    stream = io.BytesIO()
    blob = bytes(range(256)) * (wire.BIG_BUFFER // 256)
    array_like = bytearray(b"a" * wire.BIG_BUFFER)
    wire.FrameWriter(stream).send(wire.RECORDS, {}, job=1, buffers=[blob, array_like, b"small"])
    stream.seek(0)
    first, second, third = wire.read_frame(stream).buffers
    assert type(first) is bytes and first == blob
    assert memoryview(second).readonly is False and bytes(second) == bytes(array_like)
    assert bytes(third) == b"small"
