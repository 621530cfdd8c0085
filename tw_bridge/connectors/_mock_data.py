"""The mock connector's sample data (contract § Mock connector).

The values are those of the older native ``tw_bridge`` mock, so that code written
against it sees the same hosts, detections, processes and connections. Timestamps
are relative to the moment the mock is created, as they were there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .._models import (
    Detection,
    HostInfo,
    IsolationStatus,
    NetworkConnection,
    ProcessInfo,
    Reachability,
    Severity,
)

_AGENT = "6.42.0"


def _host(
    now: datetime,
    host_id: str,
    hostname: str,
    platform: str,
    os_version: str,
    ip: str,
    mac: str,
    tags: tuple[str, ...],
) -> HostInfo:
    return HostInfo(
        id=host_id,
        hostname=hostname,
        platform=platform,
        os_version=os_version,
        agent_version=_AGENT,
        last_seen=now,
        isolation_status=IsolationStatus.NORMAL,
        status=Reachability.ONLINE,
        ip_addresses=(ip,),
        mac_addresses=(mac,),
        tags=tags,
    )


def sample_hosts(now: datetime) -> list[HostInfo]:
    return [
        _host(now, "host-12345", "workstation-001", "Windows", "Windows 10 Enterprise 21H2",
              "192.168.1.100", "00:11:22:33:44:55", ("workstation", "finance")),
        _host(now, "host-12346", "workstation-002", "Windows", "Windows 11 Enterprise",
              "192.168.1.101", "00:11:22:33:44:56", ("workstation", "engineering")),
        _host(now, "host-67890", "server-001", "Linux", "Ubuntu 22.04 LTS",
              "10.0.0.50", "AA:BB:CC:DD:EE:FF", ("server", "production", "critical")),
        _host(now, "host-99999", "dc01", "Windows", "Windows Server 2019",
              "10.0.0.10", "AA:BB:CC:DD:EE:00", ("server", "domain-controller", "critical")),
        # The EDR Connector documentation's example host, `aid:abc123`.
        _host(now, "abc123", "example-host", "Windows", "Windows 10 Enterprise 22H2",
              "192.168.1.150", "00:11:22:33:44:57", ("example",)),
    ]


def sample_detections(now: datetime) -> list[Detection]:
    m = timedelta(minutes=1)
    return [
        Detection(
            id="detection-001",
            name="Suspicious PowerShell Execution",
            timestamp=now - 10 * m,
            severity=Severity.HIGH,
            tactic="Execution",
            technique="T1059.001",
            technique_name="PowerShell",
            description="PowerShell executed encoded command with suspicious parameters",
            process_name="powershell.exe",
            file_path="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            file_hash="abc123def456",
            status="new",
            host_id="host-12345",
            hostname="workstation-001",
            details={"command_line": "-enc SGVsbG8gV29ybGQ=", "parent_process": "cmd.exe"},
        ),
        Detection(
            id="detection-002",
            name="Connection to Known Malicious IP",
            timestamp=now - 5 * m,
            severity=Severity.CRITICAL,
            tactic="Command and Control",
            technique="T1071.001",
            technique_name="Web Protocols",
            description="Process established connection to IP associated with botnet C2",
            process_name="rundll32.exe",
            file_path="C:\\Windows\\System32\\rundll32.exe",
            file_hash=None,
            status="new",
            host_id="host-12345",
            hostname="workstation-001",
            details={"dest_ip": "203.0.113.100", "dest_port": 443},
        ),
        Detection(
            id="detection-003",
            name="Credential Dumping Attempt",
            timestamp=now - 2 * m,
            severity=Severity.CRITICAL,
            tactic="Credential Access",
            technique="T1003.001",
            technique_name="LSASS Memory",
            description="Process attempted to access LSASS memory",
            process_name="mimikatz.exe",
            file_path=None,
            file_hash="malware123",
            status="new",
            host_id="host-12346",
            hostname="workstation-002",
            details={},
        ),
        # The documentation's example host has a detection too, so that
        # `get_detections("aid:abc123")` shows something.
        Detection(
            id="detection-004",
            name="Suspicious Office Child Process",
            timestamp=now - 30 * m,
            severity=Severity.MEDIUM,
            tactic="Execution",
            technique="T1204.002",
            technique_name="Malicious File",
            description="WINWORD.EXE spawned cmd.exe",
            process_name="cmd.exe",
            file_path="C:\\Windows\\System32\\cmd.exe",
            file_hash=None,
            status="new",
            host_id="abc123",
            hostname="example-host",
            details={"parent_process": "WINWORD.EXE"},
        ),
    ]


def sample_processes(now: datetime) -> dict[str, list[ProcessInfo]]:
    h = timedelta(hours=1)
    user = "DOMAIN\\user"
    return {
        "host-12345": [
            ProcessInfo(pid=4, name="System", command_line="", parent_pid=None,
                        user="NT AUTHORITY\\SYSTEM", start_time=now - 24 * h),
            ProcessInfo(pid=1234, name="explorer.exe", command_line="C:\\Windows\\explorer.exe",
                        parent_pid=4, user=user, start_time=now - 8 * h,
                        file_hash="explorer_hash", file_path="C:\\Windows\\explorer.exe"),
            ProcessInfo(pid=5678, name="chrome.exe",
                        command_line='"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"',
                        parent_pid=1234, user=user, start_time=now - 2 * h,
                        file_hash="chrome_hash",
                        file_path="C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"),
            ProcessInfo(pid=9999, name="powershell.exe",
                        command_line="powershell.exe -enc SGVsbG8gV29ybGQ=",
                        parent_pid=1234, user=user, start_time=now - timedelta(minutes=10),
                        file_hash="powershell_hash",
                        file_path="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"),
        ]
    }


def sample_connections(now: datetime) -> dict[str, list[NetworkConnection]]:
    return {
        "host-12345": [
            NetworkConnection(pid=5678, process_name="chrome.exe", local_address="192.168.1.100",
                              local_port=54321, remote_address="142.250.80.68", remote_port=443,
                              protocol="TCP", state="ESTABLISHED", timestamp=now),
            NetworkConnection(pid=9999, process_name="powershell.exe",
                              local_address="192.168.1.100", local_port=54322,
                              remote_address="203.0.113.100", remote_port=443, protocol="TCP",
                              state="ESTABLISHED", timestamp=now - timedelta(minutes=5)),
        ]
    }
