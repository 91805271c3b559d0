"""The checkpoint sinks put each signed line where the database's owner cannot reach it: a
file only its owner reads (0600, appended, synced) and a syslog collector (RFC 5424 over a
real local UDP or TCP socket)."""

from __future__ import annotations

import os
import re
import socket
import stat
import threading

import pytest

from services.router.audit.checkpoint_sinks import FileSink, syslog_sink

pytestmark = pytest.mark.security

LINE = '{"v":1,"seq":3,"hash":"ab","at":"2026-12-01T08:00:00.000000Z","keyId":"k","sig":"x"}'
RFC5424 = re.compile(
    r"^<85>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ carebridge-router \d+ "
    r"access-log-checkpoint - (?P<msg>.*)$"
)


def test_the_file_sink_appends_lines_only_its_owner_can_read(tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    sink = FileSink(path)
    sink.write(LINE)
    sink.write(LINE.replace('"seq":3', '"seq":4'))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [line[:14] for line in sink.lines()] == ['{"v":1,"seq":3', '{"v":1,"seq":4']


def test_the_file_sink_narrows_a_file_left_readable_by_others(tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    path.write_text("earlier\n")
    os.chmod(path, 0o644)
    FileSink(path).write(LINE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().splitlines() == ["earlier", LINE]  # appended, nothing lost


def test_the_file_sink_fails_loudly_when_it_cannot_write(tmp_path):
    with pytest.raises(OSError):
        FileSink(tmp_path / "missing-dir" / "checkpoints.jsonl").write(LINE)


def test_the_syslog_sink_sends_rfc5424_over_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        port = collector.getsockname()[1]
        syslog_sink(f"udp://127.0.0.1:{port}").write(LINE)
        data, _ = collector.recvfrom(65536)
    found = RFC5424.match(data.decode())
    assert found is not None and found["msg"] == LINE


def test_the_syslog_sink_frames_by_octet_count_over_tcp():
    received: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.append(chunk)

        reader = threading.Thread(target=accept)
        reader.start()
        syslog_sink(f"tcp://127.0.0.1:{server.getsockname()[1]}").write(LINE)
        reader.join(5)
    data = b"".join(received)
    length, _, message = data.partition(b" ")
    assert int(length) == len(message)
    found = RFC5424.match(message.decode())
    assert found is not None and found["msg"] == LINE


def test_the_syslog_sink_fails_loudly_when_nobody_listens():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(OSError):
        syslog_sink(f"tcp://127.0.0.1:{port}").write(LINE)


@pytest.mark.parametrize("url", ["http://log:514", "udp://log", "tcp://:601", "log:514"])
def test_a_syslog_target_is_udp_or_tcp_with_host_and_port(url):
    with pytest.raises(ValueError, match="udp://host:port"):
        syslog_sink(url)
