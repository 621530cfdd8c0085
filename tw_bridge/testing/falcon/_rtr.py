"""Plausible RTR command output (``ps``, ``netstat``) for Windows, Linux and macOS hosts.

The exact formats Falcon's RTR prints are not documented; these are modelled on PowerShell's
``Get-Process`` table (Windows RTR ``ps``), ``ps -ef`` and ``netstat -anp`` (unverified).
"""

from __future__ import annotations

import random
import time
from typing import Any

__all__ = ["READ_ONLY", "ACTIVE_RESPONDER", "ADMIN", "run_command"]

READ_ONLY = frozenset({
    "cat", "cd", "clear", "env", "eventlog", "filehash", "getsid", "help", "history", "ipconfig",
    "ls", "mount", "netstat", "ps", "reg", "pwd", "users",
})
ACTIVE_RESPONDER = READ_ONLY | {
    "cp", "encrypt", "get", "kill", "map", "memdump", "mkdir", "mv", "restart", "rm", "runscript",
    "shutdown", "unmap", "update", "xmemdump", "zip",
}
ADMIN = ACTIVE_RESPONDER | {"put", "run", "put-and-run"}

_WIN_PROCS = [
    ("System", ""), ("Registry", ""), ("smss", "C:\\Windows\\System32\\smss.exe"),
    ("csrss", "C:\\Windows\\System32\\csrss.exe"),
    ("wininit", "C:\\Windows\\System32\\wininit.exe"),
    ("services", "C:\\Windows\\System32\\services.exe"),
    ("lsass", "C:\\Windows\\System32\\lsass.exe"),
    ("svchost", "C:\\Windows\\System32\\svchost.exe"),
    ("svchost", "C:\\Windows\\System32\\svchost.exe"),
    ("svchost", "C:\\Windows\\System32\\svchost.exe"),
    ("spoolsv", "C:\\Windows\\System32\\spoolsv.exe"),
    ("CSFalconService", "C:\\Program Files\\CrowdStrike\\CSFalconService.exe"),
    ("MsMpEng",
     "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe"),
    ("explorer", "C:\\Windows\\explorer.exe"),
    ("RuntimeBroker", "C:\\Windows\\System32\\RuntimeBroker.exe"),
    ("OneDrive", "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe"),
    ("msedge", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"),
    ("powershell", "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"),
    ("conhost", "C:\\Windows\\System32\\conhost.exe"),
    ("taskhostw", "C:\\Windows\\System32\\taskhostw.exe"),
]
_LINUX_PROCS = [
    ("root", "/sbin/init splash"), ("root", "[kthreadd]"), ("root", "[rcu_gp]"),
    ("root", "/lib/systemd/systemd-journald"), ("root", "/lib/systemd/systemd-udevd"),
    ("systemd+", "/lib/systemd/systemd-resolved"), ("root", "/usr/sbin/cron -f"),
    ("root", "/usr/sbin/rsyslogd -n -iNONE"), ("root", "sshd: /usr/sbin/sshd -D"),
    ("root", "/opt/CrowdStrike/falcond"), ("root", "falcon-sensor"),
    ("www-data", "nginx: worker process"), ("root", "nginx: master process /usr/sbin/nginx"),
    ("postgres", "/usr/lib/postgresql/14/bin/postgres -D /var/lib/postgresql/14/main"),
    ("ubuntu", "-bash"), ("root", "/usr/bin/containerd"),
]
_MAC_PROCS = [
    ("root", "/sbin/launchd"), ("root", "/usr/libexec/logd"), ("root", "/usr/sbin/syslogd"),
    ("root", "/Library/SystemExtensions/.../com.crowdstrike.falcon.Agent"),
    ("_windowserver",
     "/System/Library/PrivateFrameworks/SkyLight.framework/Resources/WindowServer"),
    ("user", "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder"),
    ("user", "/Applications/Safari.app/Contents/MacOS/Safari"),
    ("user", "/bin/zsh -l"),
]


def _rng(host: dict[str, Any], cmd: str) -> random.Random:
    return random.Random(f"{host['device_id']}:{cmd}")


def _ps_windows(host: dict[str, Any]) -> str:
    rng = _rng(host, "ps")
    lines = [
        f"{'Name':<24}{'Id':>7}  {'Start Time (UTC-0)':<22}{'WorkingMemory(MB)':>18}"
        f"{'CPU(s)':>11}{'HandleCount':>13}  Path",
        f"{'----':<24}{'--':>7}  {'------------------':<22}{'-----------------':>18}"
        f"{'------':>11}{'-----------':>13}  ----",
    ]
    boot = time.time() - rng.uniform(3600, 30 * 86400)
    pid = 4
    for name, path in _WIN_PROCS:
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(boot + rng.uniform(0, 600)))
        lines.append(
            f"{name:<24}{pid:>7}  {start:<22}{rng.uniform(0.1, 420):>18.2f}"
            f"{rng.uniform(0, 3000):>11.2f}{rng.randrange(50, 6000):>13}  {path}"
        )
        pid += rng.randrange(4, 900) // 4 * 4
    return "\n".join(lines) + "\n"


def _ps_unix(host: dict[str, Any], procs: list[tuple[str, str]]) -> str:
    rng = _rng(host, "ps")
    lines = ["UID          PID    PPID  C STIME TTY          TIME CMD"]
    pid = 1
    for uid, cmd in procs:
        ppid = 0 if pid == 1 else rng.choice([1, 2, pid - 1])
        stime = time.strftime("%b%d", time.gmtime(time.time() - rng.uniform(0, 20 * 86400)))
        tty = "pts/0" if "bash" in cmd or "zsh" in cmd else "?"
        cpu = rng.randrange(0, 90)
        lines.append(
            f"{uid:<8} {pid:>7} {ppid:>7}  0 {stime} {tty:<8} "
            f"{cpu // 60:02d}:{cpu % 60:02d}:{rng.randrange(60):02d} {cmd}"
        )
        pid += rng.randrange(1, 400)
    return "\n".join(lines) + "\n"


def _netstat_windows(host: dict[str, Any]) -> str:
    rng = _rng(host, "netstat")
    ip = host.get("local_ip", "10.0.0.5")
    rows = [
        ("TCP", "0.0.0.0:135", "0.0.0.0:0", "LISTENING"),
        ("TCP", "0.0.0.0:445", "0.0.0.0:0", "LISTENING"),
        ("TCP", "0.0.0.0:3389", "0.0.0.0:0", "LISTENING"),
        ("TCP", "0.0.0.0:49664", "0.0.0.0:0", "LISTENING"),
        ("TCP", f"{ip}:{rng.randrange(49152, 65535)}", "52.96.165.18:443", "ESTABLISHED"),
        ("TCP", f"{ip}:{rng.randrange(49152, 65535)}", "13.107.42.16:443", "ESTABLISHED"),
        ("TCP", f"{ip}:{rng.randrange(49152, 65535)}", "34.210.184.157:443", "ESTABLISHED"),
        ("TCP", f"{ip}:{rng.randrange(49152, 65535)}", "198.51.100.23:8080", "TIME_WAIT"),
        ("UDP", "0.0.0.0:123", "*:*", ""),
        ("UDP", "0.0.0.0:5353", "*:*", ""),
    ]
    # PIDs of processes `ps` lists on the same host, as on a real machine.
    pids = [int(line[24:31]) for line in _ps_windows(host).splitlines()[2:] if line.strip()]
    out = [f"{'Proto':<7}{'Local Address':<24}{'Foreign Address':<24}{'State':<14}PID"]
    for proto, local, foreign, state in rows:
        out.append(f"{proto:<7}{local:<24}{foreign:<24}{state:<14}{rng.choice(pids)}")
    return "\n".join(out) + "\n"


def _netstat_unix(host: dict[str, Any]) -> str:
    rng = _rng(host, "netstat")
    ip = host.get("local_ip", "10.0.0.5")
    rows = [
        ("tcp", "0.0.0.0:22", "0.0.0.0:*", "LISTEN", "sshd"),
        ("tcp", "127.0.0.53:53", "0.0.0.0:*", "LISTEN", "systemd-resolve"),
        ("tcp", "0.0.0.0:80", "0.0.0.0:*", "LISTEN", "nginx"),
        ("tcp", f"{ip}:22", f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}:"
                           f"{rng.randrange(40000, 65000)}", "ESTABLISHED", "sshd"),
        ("tcp", f"{ip}:{rng.randrange(32768, 60999)}", "34.210.184.157:443", "ESTABLISHED",
         "falcon-sensor"),
        ("tcp6", ":::22", ":::*", "LISTEN", "sshd"),
        ("udp", "127.0.0.53:53", "0.0.0.0:*", "", "systemd-resolve"),
        ("udp", "0.0.0.0:68", "0.0.0.0:*", "", "dhclient"),
    ]
    out = ["Active Internet connections (servers and established)",
           "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
           "PID/Program name"]
    for proto, local, foreign, state, prog in rows:
        out.append(f"{proto:<5} {0:>6} {0:>6} {local:<23} {foreign:<23} {state:<11} "
                   f"{rng.randrange(300, 40000)}/{prog}")
    return "\n".join(out) + "\n"


def run_command(host: dict[str, Any], base_command: str, command_string: str) -> tuple[str, str]:
    """Return (stdout, stderr) for a command on ``host``."""
    platform = host.get("platform_name", "Windows")
    if base_command == "ps":
        if platform == "Windows":
            return _ps_windows(host), ""
        return _ps_unix(host, _MAC_PROCS if platform == "Mac" else _LINUX_PROCS), ""
    if base_command == "netstat":
        if platform == "Windows":
            return _netstat_windows(host), ""
        return _netstat_unix(host), ""
    if base_command == "pwd":
        return ("C:\\" if platform == "Windows" else "/") + "\n", ""
    if base_command in ("help", "history", "clear", "cd"):
        return "", ""
    # Other commands are accepted but produce no output in the emulator.
    return "", ""
