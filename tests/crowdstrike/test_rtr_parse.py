"""RTR ps/netstat parsing: fixed samples and generated tables (Hypothesis)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from tw_bridge.connectors.crowdstrike._rtr_parse import (
    parse_netstat,
    parse_ps,
    parse_start_time,
    split_address,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)

WIN_PS = """\
Name                      Id  Start Time (UTC-0)      WorkingMemory(kb)  CPU(s)  HandleCount  Path
----                      --  ------------------      -----------------  ------  -----------  ----
Idle                       0                                        8    0.00            0
System                     4  3/9/2026 1:22:09 PM               1,036    0.08           53
lsass                    672  2026-03-09T13:22:15Z             18,220   12.50         1450  C:\\Windows\\System32\\lsass.exe
my app                  4242  3/10/2026 9:05:00 AM              2,000    1.00           80  C:\\Program Files\\My App\\my app.exe
"""

LINUX_PS = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 Mar01 ?        00:00:05 /sbin/init splash
root           2       0  0 2025  ?        00:00:00 [kthreadd]
www-data    1234       1  0 11:30 ?        00:00:01 nginx: worker process
ubuntu      4321    1200  0 13:00 pts/0    00:00:00 -bash
"""

PS_AUX = """\
USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root           1  0.0  0.1 167000 11000 ?        Ss   Mar01   0:05 /sbin/init
"""

WIN_NETSTAT = """
Active Connections

  Proto  Local Address          Foreign Address        State           PID
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1072
  TCP    10.0.0.5:50123         52.96.165.18:443       ESTABLISHED     4242
  TCP    [::]:445               [::]:0                 LISTENING       4
  UDP    0.0.0.0:5353           *:*                                    2100
"""

LINUX_NETSTAT = """\
Active Internet connections (servers and established)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      812/sshd: /usr/sbin
tcp        0      0 10.0.0.7:22             10.0.9.9:51515          ESTABLISHED 9001/sshd
tcp6       0      0 :::80                   :::*                    LISTEN      -
udp        0      0 0.0.0.0:68              0.0.0.0:*                           655/dhclient
"""


def test_windows_ps() -> None:
    procs = parse_ps(WIN_PS, "Windows", now=NOW)
    by_pid = {p.pid: p for p in procs}
    assert set(by_pid) == {0, 4, 672, 4242}
    assert by_pid[0].start_time == NOW  # blank start time
    assert by_pid[4].start_time == datetime(2026, 3, 9, 13, 22, 9, tzinfo=timezone.utc)
    assert by_pid[672].name == "lsass.exe"
    assert by_pid[672].file_path == "C:\\Windows\\System32\\lsass.exe"
    assert by_pid[4242].name == "my app.exe"
    assert by_pid[4242].start_time.hour == 9


def test_linux_ps() -> None:
    procs = {p.pid: p for p in parse_ps(LINUX_PS, "Linux", now=NOW)}
    assert procs[1].name == "init" and procs[1].file_path == "/sbin/init"
    assert procs[1].start_time == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert procs[2].name == "kthreadd" and procs[2].file_path is None
    assert procs[1234].user == "www-data" and procs[1234].parent_pid == 1
    assert procs[1234].name == "nginx" and procs[1234].start_time.hour == 11
    assert procs[4321].name == "bash" and procs[4321].command_line == "-bash"
    # 13:00 is later than "now" (12:00): it was yesterday
    assert procs[4321].start_time == datetime(2026, 3, 9, 13, 0, tzinfo=timezone.utc)
    aux = parse_ps(PS_AUX, "Linux", now=NOW)
    assert [(p.pid, p.user, p.parent_pid) for p in aux] == [(1, "root", None)]


def test_garbage_is_skipped() -> None:
    assert parse_ps("", "Windows") == []
    assert parse_ps("hello\nworld\n", "Linux") == []
    assert parse_netstat("nothing here") == []


def test_windows_netstat() -> None:
    conns = parse_netstat(WIN_NETSTAT, now=NOW, names={4242: "my app.exe"})
    assert [(c.protocol, c.local_address, c.local_port, c.remote_address, c.remote_port,
             c.state, c.pid) for c in conns] == [
        ("TCP", "0.0.0.0", 135, "0.0.0.0", 0, "LISTENING", 1072),
        ("TCP", "10.0.0.5", 50123, "52.96.165.18", 443, "ESTABLISHED", 4242),
        ("TCP", "::", 445, "::", 0, "LISTENING", 4),
        ("UDP", "0.0.0.0", 5353, "*", 0, "", 2100),
    ]
    assert conns[1].process_name == "my app.exe"


def test_linux_netstat() -> None:
    conns = parse_netstat(LINUX_NETSTAT, now=NOW)
    assert [(c.protocol, c.local_port, c.state, c.pid, c.process_name) for c in conns] == [
        ("TCP", 22, "LISTEN", 812, "sshd: /usr/sbin"),
        ("TCP", 22, "ESTABLISHED", 9001, "sshd"),
        ("TCP6", 80, "LISTEN", None, ""),
        ("UDP", 68, "", 655, "dhclient"),
    ]
    assert conns[2].local_address == "::"


def test_start_time_forms() -> None:
    assert parse_start_time("2026-01-02 03:04:05", NOW) == datetime(2026, 1, 2, 3, 4, 5,
                                                                   tzinfo=timezone.utc)
    assert parse_start_time("12/31/2025 11:59 PM", NOW) == datetime(2025, 12, 31, 23, 59,
                                                                    tzinfo=timezone.utc)
    assert parse_start_time("12/31/2025 12:10:00 AM", NOW) == datetime(2025, 12, 31, 0, 10,
                                                                       tzinfo=timezone.utc)
    assert parse_start_time("Dec25", NOW) == datetime(2025, 12, 25, tzinfo=timezone.utc)
    assert parse_start_time("13/45/2025 1:00", NOW) is None
    assert parse_start_time("soon", NOW) is None


ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ports = st.integers(0, 65535)


@given(ipv4, ports)
def test_split_address_roundtrip_v4(addr: str, port: int) -> None:
    assert split_address(f"{addr}:{port}") == (addr, port)


@given(st.ip_addresses(v=6).map(str), ports)
def test_split_address_roundtrip_v6(addr: str, port: int) -> None:
    assert split_address(f"[{addr}]:{port}") == (addr, port)


rows = st.lists(st.tuples(st.sampled_from(["TCP", "UDP"]), ipv4, ports, ipv4, ports,
                          st.sampled_from(["LISTENING", "ESTABLISHED", "TIME_WAIT"]),
                          st.integers(0, 99999)), max_size=20)


@given(rows)
def test_windows_netstat_generated(data: list[tuple[str, str, int, str, int, str, int]]) -> None:
    lines = ["  Proto  Local Address          Foreign Address        State           PID"]
    for proto, la, lp, ra, rp, state, pid in data:
        st_ = state if proto == "TCP" else ""
        lines.append(f"  {proto:<6} {la}:{lp:<10} {ra}:{rp:<10} {st_:<15} {pid}")
    conns = parse_netstat("\n".join(lines), now=NOW)
    assert [(c.protocol, c.local_address, c.local_port, c.remote_address, c.remote_port,
             c.state, c.pid) for c in conns] == [
        (p, la, lp, ra, rp, s if p == "TCP" else "", pid)
        for p, la, lp, ra, rp, s, pid in data]


procs = st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9_+-]{0,10}", fullmatch=True),
                           st.integers(1, 10**6), st.integers(0, 10**6),
                           st.from_regex(r"/[a-z]{1,8}(/[a-z0-9.]{1,8}){0,3}( -[a-z]{1,3})*",
                                         fullmatch=True)), max_size=15)


@settings(max_examples=40, deadline=None)
@given(procs)
def test_unix_ps_generated(data: list[tuple[str, int, int, str]]) -> None:
    lines = ["UID          PID    PPID  C STIME TTY          TIME CMD"]
    for user, pid, ppid, cmd in data:
        lines.append(f"{user:<8} {pid:>7} {ppid:>7}  0 Mar01 ?        00:00:00 {cmd}")
    out = parse_ps("\n".join(lines), "Linux", now=NOW)
    assert [(p.user, p.pid, p.parent_pid, p.command_line, p.file_path) for p in out] == [
        (u, pid, ppid, cmd, cmd.split()[0]) for u, pid, ppid, cmd in data]
