"""The aiohttp application: route table, envelope, auth, rate limits, faults and handlers.

Every route the emulator serves outside ``/_emulator/`` is listed in :data:`ROUTES` together
with the falconpy operation it implements, the scope it needs, its rate-limit group and the
query parameters it reads (handlers can only read declared parameters, see :class:`Query`).

Behaviour not documented by CrowdStrike is marked "unverified" below.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aiohttp import web

from ... import _fql
from ._faults import FaultAction
from ._fleet import fmt_ts
from ._rtr import ACTIVE_RESPONDER, ADMIN, READ_ONLY, run_command
from ._state import RequestRecord

if TYPE_CHECKING:
    from . import FalconEmulator

log = logging.getLogger("tw_bridge.testing.falcon")

__all__ = ["ROUTES", "ADMIN_ROUTES", "Route", "build_app"]

_AID_RE = re.compile(r"^[0-9a-f]{32}$")
RTR_SESSION_TTL = 600.0  # sessions expire after 10 minutes unless refreshed


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str  # falconpy operation id
    handler: str  # name of the App method
    params: tuple[str, ...] = ()  # query parameters the handler reads
    scope: str | None = None
    group: str = "default"
    auth: str = "bearer"  # "bearer", "none" (token endpoint), "basic" (revoke), "admin"


ROUTES: tuple[Route, ...] = (
    Route("POST", "/oauth2/token", "oauth2AccessToken", "token", (), None, "token", "none"),
    Route("POST", "/oauth2/revoke", "oauth2RevokeToken", "revoke", (), None, "token", "basic"),
    Route("GET", "/devices/queries/devices/v1", "QueryDevicesByFilter", "query_devices",
          ("filter", "limit", "offset", "sort"), "hosts:read", "host_query"),
    Route("GET", "/devices/combined/devices/v1", "CombinedDevicesByFilter", "combined_devices",
          ("filter", "limit", "offset", "sort", "fields"), "hosts:read", "host_query"),
    Route("GET", "/devices/entities/devices/v2", "GetDeviceDetailsV2", "device_details_get",
          ("ids",), "hosts:read", "host_query"),
    Route("POST", "/devices/entities/devices/v2", "PostDeviceDetailsV2", "device_details_post",
          (), "hosts:read", "host_query"),
    Route("GET", "/devices/entities/online-state/v1", "GetOnlineState_V1", "online_state",
          ("ids",), "hosts:read", "host_query"),
    Route("POST", "/devices/entities/devices-actions/v2", "PerformActionV2", "device_action",
          ("action_name",), "hosts:write", "action"),
    Route("GET", "/alerts/queries/alerts/v2", "GetQueriesAlertsV2", "query_alerts",
          ("filter", "limit", "offset", "sort", "q", "include_hidden"), "alerts:read",
          "alert_query"),
    Route("POST", "/alerts/entities/alerts/v2", "PostEntitiesAlertsV2", "alert_details",
          ("include_hidden",), "alerts:read", "alert_query"),
    Route("POST", "/alerts/combined/alerts/v1", "PostCombinedAlertsV1", "combined_alerts",
          (), "alerts:read", "alert_query"),
    Route("POST", "/ods/entities/scans/v1", "create_scan", "create_scan", (), "ods:write",
          "action"),
    Route("GET", "/ods/entities/scans/v2", "get_scans_by_scan_ids_v2", "get_scans", ("ids",),
          "ods:read"),
    Route("POST", "/real-time-response/entities/sessions/v1", "RTR_InitSession", "rtr_init",
          ("timeout", "timeout_duration"), "rtr:read", "rtr"),
    Route("DELETE", "/real-time-response/entities/sessions/v1", "RTR_DeleteSession",
          "rtr_delete", ("session_id",), "rtr:read", "rtr"),
    Route("POST", "/real-time-response/entities/refresh-session/v1", "RTR_PulseSession",
          "rtr_refresh", (), "rtr:read", "rtr"),
    Route("POST", "/real-time-response/entities/command/v1", "RTR_ExecuteCommand",
          "rtr_exec_read", (), "rtr:read", "rtr"),
    Route("GET", "/real-time-response/entities/command/v1", "RTR_CheckCommandStatus",
          "rtr_status", ("cloud_request_id", "sequence_id"), "rtr:read", "rtr"),
    Route("POST", "/real-time-response/entities/active-responder-command/v1",
          "RTR_ExecuteActiveResponderCommand", "rtr_exec_active", (), "rtr:write", "rtr"),
    Route("GET", "/real-time-response/entities/active-responder-command/v1",
          "RTR_CheckActiveResponderCommandStatus", "rtr_status",
          ("cloud_request_id", "sequence_id"), "rtr:write", "rtr"),
    Route("POST", "/real-time-response/entities/admin-command/v1", "RTR_ExecuteAdminCommand",
          "rtr_exec_admin", (), "rtr-admin:write", "rtr"),
    Route("GET", "/real-time-response/entities/admin-command/v1", "RTR_CheckAdminCommandStatus",
          "rtr_status", ("cloud_request_id", "sequence_id"), "rtr-admin:write", "rtr"),
)

ADMIN_ROUTES: tuple[Route, ...] = (
    Route("GET", "/_emulator/health", "", "admin_health", auth="admin"),
    Route("POST", "/_emulator/faults", "", "admin_faults", auth="admin"),
    Route("DELETE", "/_emulator/faults", "", "admin_faults_clear", auth="admin"),
    Route("GET", "/_emulator/requests", "", "admin_requests", auth="admin"),
    Route("DELETE", "/_emulator/requests", "", "admin_requests_clear", auth="admin"),
    Route("POST", "/_emulator/hosts/online", "", "admin_set_online", auth="admin"),
    Route("POST", "/_emulator/hosts", "", "admin_add_host", auth="admin"),
)


class Query:
    """Read-only view of the query string that only serves the route's declared parameters."""

    __slots__ = ("_q", "_allowed")

    def __init__(self, q: Any, allowed: tuple[str, ...]) -> None:
        self._q = q
        self._allowed = allowed

    def get(self, name: str, default: str | None = None) -> str | None:
        if name not in self._allowed:
            raise AssertionError(f"route did not declare query parameter {name!r}")
        v = self._q.get(name)
        return default if v is None else str(v)

    def getall(self, name: str) -> list[str]:
        if name not in self._allowed:
            raise AssertionError(f"route did not declare query parameter {name!r}")
        out: list[str] = []
        for v in self._q.getall(name, []):
            # falconpy sends repeated ids=a&ids=b; some clients send ids=a,b
            out.extend(p for p in str(v).split(",") if p)
        return out


@dataclass
class Reply:
    status: int = 200
    resources: Any = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    pagination: dict[str, Any] | None = None
    raw: Any = None  # a non-envelope JSON body (token reply)
    empty: bool = False  # 204
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else status


@dataclass
class Ctx:
    request: web.Request
    route: Route
    query: Query
    body: Any
    client_id: str | None
    trace_id: str


def _int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"invalid {name}: {value!r} is not an integer") from None


def _sort_key_fn(spec: str, dot_sep: bool) -> tuple[str, bool]:
    """'last_seen.desc' / 'timestamp|desc' / 'hostname' -> (field, descending)."""
    s = spec.strip()
    for sep in ("|", "."):
        if sep in s:
            head, _, tail = s.rpartition(sep)
            if tail.lower() in ("asc", "desc"):
                return head, tail.lower() == "desc"
    return s, False


def _dotted(record: Any, prop: str) -> Any:
    cur = record
    for part in prop.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
    return cur


def _sorted(records: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    if not spec:
        return records
    fieldname, desc = _sort_key_fn(spec, True)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", fieldname):
        raise ApiError(400, f"invalid sort: {spec!r}")
    present: list[tuple[Any, dict[str, Any]]] = []
    missing: list[dict[str, Any]] = []
    for r in records:
        v = _dotted(r, fieldname)
        if v is None or isinstance(v, (dict, list)):
            missing.append(r)
        else:
            present.append((v if isinstance(v, (int, float)) else str(v), r))
    try:
        present.sort(key=lambda p: p[0], reverse=desc)
    except TypeError:
        present.sort(key=lambda p: str(p[0]), reverse=desc)
    return [r for _, r in present] + missing


def _equality_keys(node: _fql.Node, prop: str) -> list[str] | None:
    """Lower-cased values when ``node`` is ``prop:'v'`` / ``prop:['v',...]`` or an OR of
    those (no wildcard, no negation); else None."""
    terms = node.children if isinstance(node, _fql.Or) else (node,)
    keys: list[str] = []
    for t in terms:
        if not (isinstance(t, _fql.Compare) and t.prop == prop and t.op in ("eq", "in")
                and not t.negate):
            return None
        for v in t.values:
            if v.kind != "str" or v.pattern is not None:
                return None
            keys.append(str(v.value).lower())
    return keys


def _filter(
    records: Iterable[dict[str, Any]],
    fql: str | None,
    by_hostname: dict[str, list[tuple[int, dict[str, Any]]]] | None = None,
) -> list[dict[str, Any]]:
    if fql is None or fql.strip() == "":
        return list(records)
    try:
        node = _fql.parse(fql)
    except _fql.FQLSyntaxError as exc:
        raise ApiError(400, f"Invalid filter: {exc}") from None
    keys = _equality_keys(node, "hostname") if by_hostname is not None else None
    if keys is not None and by_hostname is not None:
        # Hostname lookups through an index (a full scan per request made the emulator,
        # not the client, the bottleneck of bulk benchmarks); the exact evaluation still
        # decides, and fleet order is kept.
        cand = sorted(
            {pos: r for k in keys for pos, r in by_hostname.get(k, ())}.items()
        )
        return [r for _, r in cand if node.evaluate(r)]
    return [r for r in records if node.evaluate(r)]


def _b64_token(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _b64_untoken(tok: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        obj = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid offset token") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "invalid offset token")
    return obj


def _ids_from_body(body: Any, key: str = "ids") -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise ApiError(400, f"request body must be a JSON object with a '{key}' list")
    ids = body[key]
    if not all(isinstance(i, str) for i in ids):
        raise ApiError(400, f"'{key}' must be a list of strings")
    return list(ids)


class App:
    """Request handling for one :class:`FalconEmulator`."""

    def __init__(self, emu: FalconEmulator) -> None:
        self.emu = emu
        self.fleet = emu.fleet
        self.routes: dict[tuple[str, str], Route] = {
            (r.method, r.path): r for r in ROUTES + ADMIN_ROUTES
        }
        self.paths = {r.path for r in ROUTES + ADMIN_ROUTES}
        # containment: aid -> (final status, epoch time of the action)
        self.pending: dict[str, tuple[str, float]] = {}
        self.scans: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.commands: dict[str, dict[str, Any]] = {}
        self._handlers: dict[str, Callable[[Ctx], Awaitable[Reply]]] = {
            r.handler: getattr(self, "h_" + r.handler) for r in ROUTES + ADMIN_ROUTES
        }

    # ------------------------------------------------------------------------------------
    # state transitions

    def settle(self) -> None:
        """Apply due containment transitions (lazily, whenever host state is read)."""
        if not self.pending:
            return
        now = time.time()
        delay = self.emu.containment_delay
        with self.fleet.lock:
            for aid, (final, t0) in list(self.pending.items()):
                if not self.fleet.online.get(aid, False):
                    continue  # offline hosts stay pending until they come back
                since = self.fleet.online_since.get(aid, float("-inf"))
                if now >= max(t0, since) + delay:
                    host = self.fleet.by_id.get(aid)
                    if host is not None:
                        host["status"] = final
                        host["modified_timestamp"] = fmt_ts(now)
                    del self.pending[aid]

    # ------------------------------------------------------------------------------------
    # dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        arrived = time.time()
        trace_id = str(uuid.uuid4())
        method = request.method
        path = request.path
        route = self.routes.get((method, path))
        raw = await request.read() if request.body_exists else b""
        body = self._parse_body(request, raw)
        is_admin = path.startswith("/_emulator/")
        client_id: str | None = None
        fault: FaultAction | None = None if is_admin else self.emu.faults.take(path)
        rl_headers: dict[str, str] = {}
        reply: Reply

        def record(status: int, fault_kind: str | None = None) -> None:
            if is_admin:
                return
            log_body = body
            if isinstance(body, dict) and "client_secret" in body:
                log_body = dict(body, client_secret="***")  # noqa: S106 - redaction
            self.emu._log.append(RequestRecord(
                time=arrived, method=method, path=path,
                query={k: request.query.getall(k) for k in request.query.keys()},
                body=log_body, status=status, client_id=client_id, fault=fault_kind,
                trace_id=trace_id, headers=dict(request.headers),
            ))

        delay = self.emu.latency_ms / 1000.0 if not is_admin else 0.0
        if fault is not None:
            delay += fault.delay
        if delay > 0:
            await asyncio.sleep(delay)
        kind = fault.kind if fault else None
        params = fault.params if fault else {}

        if kind == "drop":
            record(0, "drop")
            log.debug("fault: dropping connection for %s %s", method, path)
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # aiohttp treats this as a dead connection
        if kind == "slow":
            # Hold the reply, but notice a client that gives up (timeout, cancelled call):
            # such a request is logged with status 499 and fault "client_disconnect".
            until = time.monotonic() + float(params.get("seconds", 0))
            while (left := until - time.monotonic()) > 0:
                transport = request.transport
                if transport is None or transport.is_closing():
                    record(499, "client_disconnect")
                    log.debug("fault: client disconnected during a slow %s %s", method, path)
                    raise asyncio.CancelledError
                await asyncio.sleep(min(0.02, left))

        if kind == "fail":
            reply = Reply(status=int(params.get("status", 500)),
                          errors=[{"code": int(params.get("status", 500)),
                                   "message": "Internal Server Error (emulated fault)"}])
        elif kind == "rate_limit":
            retry_at = time.time() + float(params.get("retry_after", 1.0))
            retry_hdr = (str(int(retry_at * 1000)) if params.get("ms") else str(int(retry_at) + 1))
            reply = Reply(status=429, errors=[{"code": 429, "message": "API rate limit exceeded."}],
                          headers={"X-Ratelimit-Retryafter": retry_hdr})
            rl_headers = {"X-Ratelimit-Limit": str(self.emu.rate.limits["default"][0]),
                          "X-Ratelimit-Remaining": "0"}
        elif route is None:
            if path in self.paths:
                reply = Reply(status=405, errors=[{"code": 405, "message": "Method Not Allowed"}])
            else:
                reply = Reply(status=404, errors=[{"code": 404, "message": "Not Found"}])
        else:
            try:
                client_id, reply, rl_headers = await self._handle(request, route, body, trace_id)
            except ApiError as exc:
                reply = Reply(status=exc.status, errors=[{"code": exc.code,
                                                          "message": exc.message}])
            except Exception:  # pragma: no cover - emulator bug
                log.exception("emulator handler failed for %s %s", method, path)
                reply = Reply(status=500, errors=[{"code": 500, "message": "internal error"}])
        if not rl_headers and not is_admin:
            group = route.group if route else "default"
            limit, remaining = self.emu.rate.peek(client_id or request.remote or "-", group)
            rl_headers = {"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(remaining)}

        headers = {"X-Cs-Traceid": trace_id, "Content-Type": "application/json"}
        headers.update(rl_headers)
        headers.update(reply.headers)
        if reply.empty:
            record(reply.status, kind)
            headers.pop("Content-Type", None)
            return web.Response(status=reply.status, headers=headers)
        if reply.raw is not None:
            payload = reply.raw
        else:
            meta: dict[str, Any] = {
                "query_time": round(time.perf_counter() - t0, 6),
                "powered_by": _powered_by(path),
                "trace_id": trace_id,
            }
            if reply.pagination is not None:
                meta["pagination"] = reply.pagination
            payload = {"meta": meta, "resources": reply.resources if reply.resources is not None
                       else [], "errors": reply.errors}
        data = json.dumps(payload, separators=(",", ":")).encode()
        record(reply.status, kind)
        if kind == "malformed":
            data = data[: max(1, len(data) // 2)] + b"<html><body>502 Bad Gateway"
        if kind == "truncated":
            resp = web.StreamResponse(status=reply.status, headers=headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            transport = request.transport
            if transport is not None:
                transport.close()
            return resp
        return web.Response(status=reply.status, body=data, headers=headers)

    def _parse_body(self, request: web.Request, raw: bytes) -> Any:
        if not raw:
            return None
        ctype = request.content_type
        text = raw.decode("utf-8", "replace")
        if ctype == "application/x-www-form-urlencoded":
            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
        try:
            return json.loads(text)
        except ValueError:
            if "=" in text and ctype != "application/json":
                return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
            return {"_raw": text}

    async def _handle(self, request: web.Request, route: Route, body: Any,
                      trace_id: str) -> tuple[str | None, Reply, dict[str, str]]:
        emu = self.emu
        client_id: str | None = None
        if route.auth == "bearer":
            auth = request.headers.get("Authorization", "")
            tok = None
            if auth[:7].lower() == "bearer ":
                tok = emu.tokens.get(auth[7:].strip())
            if (tok is None or tok.expires_at <= time.monotonic()
                    or tok.generation < emu.faults.revocations or tok.region != emu.region):
                # Falcon: expired, revoked and wrong-cloud tokens all get this 401.
                return None, Reply(status=401, errors=[{
                    "code": 401, "message": "access denied, invalid bearer token"}]), {}
            client_id = tok.client_id
        elif route.auth == "none":
            cid = body.get("client_id") if isinstance(body, dict) else None
            client_id = cid if isinstance(cid, str) else None
        elif route.auth == "basic":
            client_id = self._basic_client(request)
        rl: dict[str, str] = {}
        if route.auth != "admin":
            ok, limit, remaining, retry_at = emu.rate.hit(client_id or request.remote or "-",
                                                          route.group)
            rl = {"X-Ratelimit-Limit": str(limit), "X-Ratelimit-Remaining": str(remaining)}
            if not ok:
                # Unverified whether Falcon sends seconds or ms here; seconds (PSFalcon).
                return client_id, Reply(
                    status=429, errors=[{"code": 429, "message": "API rate limit exceeded."}],
                    headers={"X-Ratelimit-Retryafter": str(int(retry_at) + 1)}), rl
        if route.scope is not None:
            client = emu.clients.get(client_id or "")
            if client is None or route.scope not in client.scopes:
                return client_id, Reply(status=403, errors=[{
                    "code": 403, "message": "access denied, authorization failed"}]), rl
        ctx = Ctx(request, route, Query(request.query, route.params), body, client_id, trace_id)
        reply = await self._handlers[route.handler](ctx)
        return client_id, reply, rl

    def _basic_client(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() != "basic ":
            return None
        try:
            cid, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client = self.emu.clients.get(cid)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            return None
        return cid

    # ------------------------------------------------------------------------------------
    # OAuth2

    async def h_token(self, ctx: Ctx) -> Reply:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        cid, secret = body.get("client_id"), body.get("client_secret")
        if not isinstance(cid, str) or not isinstance(secret, str) or not cid or not secret:
            raise ApiError(400, "client_id and client_secret are required")
        client = self.emu.clients.get(cid)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            raise ApiError(403, "Failed to issue access token - Client authentication failed")
        member = body.get("member_cid")
        region = self.emu.faults.take_wrong_region() or self.emu.region
        tok = self.emu.tokens.issue(cid, self.emu.token_lifetime, region,
                                    self.emu.faults.revocations,
                                    member if isinstance(member, str) else None)
        return Reply(status=201, raw={
            "access_token": tok.value, "token_type": "bearer",
            "expires_in": max(1, int(round(self.emu.token_lifetime))),
        }, headers={"X-Cs-Region": region})

    async def h_revoke(self, ctx: Ctx) -> Reply:
        if ctx.client_id is None:
            raise ApiError(403, "access denied, authorization failed")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "token is required")
        tok = self.emu.tokens.get(token)
        if tok is not None and tok.client_id == ctx.client_id:
            self.emu.tokens.revoke(token)
        return Reply(status=200)

    # ------------------------------------------------------------------------------------
    # Hosts

    def _hosts(self) -> list[dict[str, Any]]:
        self.settle()
        return self.fleet.raw_hosts()

    async def h_query_devices(self, ctx: Ctx) -> Reply:
        q = ctx.query
        limit = _int_param(q.get("limit"), "limit", 100)
        offset = _int_param(q.get("offset"), "offset", 0)
        if limit < 1 or limit > 5000:
            raise ApiError(400, "limit must be between 1 and 5000")
        if offset < 0:
            raise ApiError(400, "offset must be >= 0")
        if offset + limit >= 10000:
            raise ApiError(400, "limit + offset must be less than 10000")
        items = _sorted(_filter(self._hosts(), q.get("filter"), self.fleet.hostname_index()),
                        q.get("sort"))
        page = items[offset:offset + limit]
        return Reply(resources=[h["device_id"] for h in page],
                     pagination={"offset": offset, "limit": limit, "total": len(items)})

    async def h_combined_devices(self, ctx: Ctx) -> Reply:
        q = ctx.query
        limit = _int_param(q.get("limit"), "limit", 100)
        if limit < 1 or limit > 10000:
            raise ApiError(400, "limit must be between 1 and 10000")
        tok = q.get("offset")
        pos = 0
        if tok:
            pos = int(_b64_untoken(tok).get("p", 0))
        items = _sorted(_filter(self._hosts(), q.get("filter"), self.fleet.hostname_index()),
                        q.get("sort") or "device_id.asc")
        page = items[pos:pos + limit]
        fields_param = q.get("fields")
        if fields_param:
            wanted = [f.strip() for f in fields_param.split(",") if f.strip()]
            page = [{k: h[k] for k in wanted if k in h} for h in page]
        pagination: dict[str, Any] = {"offset": tok or "", "limit": limit, "total": len(items)}
        if pos + limit < len(items):
            pagination["next"] = _b64_token({"p": pos + limit})
            # unverified: Falcon omits or empties `next` on the last page; we omit it.
        return Reply(resources=page, pagination=pagination)

    def _details(self, ids: list[str]) -> Reply:
        self.settle()
        found: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for aid in ids:
            if aid in seen:
                continue
            seen.add(aid)
            h = self.fleet.by_id.get(aid)
            if h is None:
                errors.append({"code": 404, "message": f"Device not found: {aid}", "id": aid})
            else:
                found.append(h)
        status = 200 if found or not errors else 404
        return Reply(status=status, resources=found, errors=errors)

    async def h_device_details_get(self, ctx: Ctx) -> Reply:
        ids = ctx.query.getall("ids")
        if len(ids) > 100:
            raise ApiError(400, "request must contain between 0 and 100 ids")
        return self._details(ids)

    async def h_device_details_post(self, ctx: Ctx) -> Reply:
        ids = _ids_from_body(ctx.body)
        if len(ids) > 5000:
            # unverified message text; the 5000 cap is Falcon's
            raise ApiError(400, "request must contain between 0 and 5000 ids")
        return self._details(ids)

    async def h_online_state(self, ctx: Ctx) -> Reply:
        ids = ctx.query.getall("ids")
        if len(ids) > 100:
            raise ApiError(400, "request must contain between 0 and 100 ids")
        res: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for aid in ids:
            h = self.fleet.by_id.get(aid)
            if h is None:
                errors.append({"code": 404, "message": f"Device not found: {aid}", "id": aid})
                continue
            res.append({"id": aid, "cid": h["cid"],
                        "state": "online" if self.fleet.online.get(aid) else "offline",
                        "last_seen": h["last_seen"]})
        return Reply(status=200 if res or not errors else 404, resources=res, errors=errors)

    async def h_device_action(self, ctx: Ctx) -> Reply:
        action = ctx.query.get("action_name")
        if action not in ("contain", "lift_containment"):
            # hide_host, detection_suppress etc. exist in Falcon but are not emulated
            raise ApiError(400, f"invalid or unsupported action_name: {action!r}")
        ids = _ids_from_body(ctx.body)
        if not ids:
            raise ApiError(400, "ids must not be empty")
        resources: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        self.settle()
        now = time.time()
        with self.fleet.lock:
            for aid in ids:
                h = self.fleet.by_id.get(aid)
                if h is None:
                    errors.append({"code": 404, "message": f"Device {aid} not found", "id": aid})
                    continue
                st = h["status"]
                if action == "contain":
                    if st in ("contained", "containment_pending"):
                        errors.append({"code": 409, "id": aid,
                                       "message": f"Device {aid} is already contained "
                                                  f"or containment is pending"})
                        continue
                    h["status"] = "containment_pending"
                    self.pending[aid] = ("contained", now)
                else:
                    if st in ("normal", "lift_containment_pending"):
                        errors.append({"code": 409, "id": aid,
                                       "message": f"Device {aid} is not contained "
                                                  f"or lift is pending"})
                        continue
                    h["status"] = "lift_containment_pending"
                    self.pending[aid] = ("normal", now)
                h["modified_timestamp"] = fmt_ts(now)
                resources.append({"id": aid, "path": ""})
        # Unverified: with no host accepted Falcon is assumed to answer with the common
        # per-host code (e.g. 409 when all were already in the requested state).
        status = 202
        if not resources and errors:
            codes = {e["code"] for e in errors}
            status = codes.pop() if len(codes) == 1 else 400
        return Reply(status=status, resources=resources, errors=errors)

    # ------------------------------------------------------------------------------------
    # Alerts

    async def h_query_alerts(self, ctx: Ctx) -> Reply:
        q = ctx.query
        q.get("include_hidden")  # accepted; the emulator has no hidden alerts
        limit = _int_param(q.get("limit"), "limit", 100)
        offset = _int_param(q.get("offset"), "offset", 0)
        if limit < 0 or limit > 10000:
            raise ApiError(400, "limit must be between 0 and 10000")
        if offset < 0:
            raise ApiError(400, "offset must be >= 0")
        if offset + limit > 10000:
            # unverified: the alerts API's deep-paging cap is assumed to mirror hosts'
            raise ApiError(400, "limit + offset must be less than or equal to 10000")
        items = _filter(self.fleet.alerts, q.get("filter"))
        text = q.get("q")
        if text:
            t = text.casefold()
            items = [a for a in items if any(
                t in str(a.get(k, "")).casefold()
                for k in ("display_name", "description", "filename", "cmdline", "user_name",
                          "tactic", "technique", "sha256"))
                or t in str(a["device"].get("hostname", "")).casefold()]
        items = _sorted(items, q.get("sort") or "created_timestamp|desc")
        page = items[offset:offset + limit]
        return Reply(resources=[a["composite_id"] for a in page],
                     pagination={"offset": offset, "limit": limit, "total": len(items)})

    async def h_alert_details(self, ctx: Ctx) -> Reply:
        ctx.query.get("include_hidden")
        ids = _ids_from_body(ctx.body, "composite_ids")
        if len(ids) > 1000:
            raise ApiError(413, "request too large")
        by_id = self.fleet.alerts_by_id
        found = [by_id[i] for i in dict.fromkeys(ids) if i in by_id]
        # Falcon returns alerts in arbitrary order; shuffle (deterministically) so clients
        # cannot depend on request order.
        random.Random(len(ids)).shuffle(found)
        # unverified: unknown composite ids are assumed to be silently omitted.
        return Reply(resources=found)

    async def h_combined_alerts(self, ctx: Ctx) -> Reply:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        limit = body.get("limit", 100)
        if not isinstance(limit, int) or limit < 1 or limit > 1000:
            raise ApiError(400, "limit must be between 1 and 1000")
        pos = 0
        after = body.get("after")
        if after:
            pos = int(_b64_untoken(str(after)).get("p", 0))
        flt = body.get("filter")
        items = _sorted(_filter(self.fleet.alerts, flt if isinstance(flt, str) else None),
                        str(body.get("sort") or "created_timestamp|desc"))
        page = items[pos:pos + limit]
        pagination: dict[str, Any] = {"limit": limit, "total": len(items)}
        if pos + limit < len(items):
            pagination["after"] = _b64_token({"p": pos + limit})
        return Reply(resources=page, pagination=pagination)

    # ------------------------------------------------------------------------------------
    # ODS

    async def h_create_scan(self, ctx: Ctx) -> Reply:
        b = ctx.body
        if not isinstance(b, dict):
            raise ApiError(400, "request body must be a JSON object")
        hosts = b.get("hosts") or []
        groups = b.get("host_groups") or []
        if not isinstance(hosts, list) or not isinstance(groups, list):
            raise ApiError(400, "hosts and host_groups must be lists")
        if not hosts and not groups:
            raise ApiError(400, "one of hosts or host_groups is required")
        for h in hosts:
            if not isinstance(h, str) or not _AID_RE.match(h):
                raise ApiError(400, f"invalid host id: {h!r}")
        fp = b.get("file_paths", [])
        for key in ("file_paths", "scan_inclusions", "scan_exclusions"):
            v = b.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ApiError(400, f"{key} must be a list of strings")
        for kind in ("sensor", "cloud"):
            det = b.get(f"{kind}_ml_level_detection", 0)
            prev = b.get(f"{kind}_ml_level_prevention", 0)
            for name, val in ((f"{kind}_ml_level_detection", det),
                              (f"{kind}_ml_level_prevention", prev)):
                if not isinstance(val, int) or not 0 <= val <= 4:
                    raise ApiError(400, f"{name} must be an integer 0-4")
            if det < prev:
                raise ApiError(400, f"{kind}_ml_level_detection must be >= "
                                    f"{kind}_ml_level_prevention")
        cpu = b.get("cpu_priority", 2)
        if not isinstance(cpu, int) or not 1 <= cpu <= 5:
            raise ApiError(400, "cpu_priority must be an integer 1-5")
        for key in ("max_duration", "pause_duration"):
            v = b.get(key, 0)
            if not isinstance(v, int) or not 0 <= v <= 24:
                raise ApiError(400, f"{key} must be an integer 0-24 (hours)")
        for key in ("quarantine", "endpoint_notification"):
            if key in b and not isinstance(b[key], bool):
                raise ApiError(400, f"{key} must be a boolean")
        scan_id = secrets.token_hex(16)
        now = time.time()
        scan = {
            "id": scan_id, "cid": self.fleet.cid, "profile_id": "", "description":
            b.get("description", ""), "file_paths": fp, "scan_inclusions": b.get(
                "scan_inclusions", []), "scan_exclusions": b.get("scan_exclusions", []),
            "initiated_from": b.get("initiated_from", "api"), "quarantine": b.get("quarantine",
                                                                                  False),
            "cpu_priority": cpu, "max_duration": b.get("max_duration", 0),
            "sensor_ml_level_detection": b.get("sensor_ml_level_detection", 0),
            "sensor_ml_level_prevention": b.get("sensor_ml_level_prevention", 0),
            "cloud_ml_level_detection": b.get("cloud_ml_level_detection", 0),
            "cloud_ml_level_prevention": b.get("cloud_ml_level_prevention", 0),
            "hosts": list(hosts), "host_groups": list(groups),
            "created_on": fmt_ts(now), "created_by": ctx.client_id or "",
            "_created": now,
        }
        self.scans[scan_id] = scan
        return Reply(status=201, resources=[self._scan_view(scan)])

    def _scan_view(self, scan: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        delay = self.emu.scan_delay
        created = scan["_created"]
        metadata = []
        missing = 0
        done = running = 0
        for aid in scan["hosts"]:
            if aid not in self.fleet.by_id:
                missing += 1
                continue
            online = self.fleet.online.get(aid, False)
            start = max(created, self.fleet.online_since.get(aid, float("-inf")))
            if online and now >= start + delay:
                st = "completed"
                done += 1
            elif online and now >= start + delay * 0.3:
                st = "running"
                running += 1
            else:
                st = "pending"  # offline hosts wait (unverified status name)
            rng = random.Random(f"{scan['id']}:{aid}")
            scanned = rng.randrange(1000, 250000) if st == "completed" else 0
            entry: dict[str, Any] = {
                "host_id": aid, "host_scan_id": f"{scan['id'][:16]}{aid[:16]}",
                "scan_host_metadata_id": f"{aid[:16]}{scan['id'][16:]}", "status": st,
                "filecount": {"scanned": scanned, "malicious": 0, "quarantined": 0,
                              "skipped": scanned // 50, "traversed": scanned + scanned // 50},
            }
            if st != "pending":
                entry["started_on"] = fmt_ts(start + delay * 0.3)
            if st == "completed":
                entry["completed_on"] = fmt_ts(start + delay)
            metadata.append(entry)
        targeted = len(scan["hosts"]) - missing
        if targeted == 0 or done == targeted:
            status = "completed"
        elif done or running:
            status = "running"
        else:
            status = "pending"
        totals = {k: sum(m["filecount"][k] for m in metadata)
                  for k in ("scanned", "malicious", "quarantined", "skipped", "traversed")}
        out = {k: v for k, v in scan.items() if not k.startswith("_")}
        out.update({
            "status": status, "targeted_host_count": targeted, "completed_host_count": done,
            "missing_host_count": missing, "filecount": totals, "metadata": metadata,
            "last_updated": fmt_ts(now),
        })
        return out

    async def h_get_scans(self, ctx: Ctx) -> Reply:
        ids = ctx.query.getall("ids")
        if not ids:
            raise ApiError(400, "ids is required")
        res = []
        errors = []
        for sid in ids:
            scan = self.scans.get(sid)
            if scan is None:
                errors.append({"code": 404, "message": f"scan {sid} not found", "id": sid})
            else:
                res.append(self._scan_view(scan))
        return Reply(status=200 if res else 404, resources=res, errors=errors)

    # ------------------------------------------------------------------------------------
    # RTR

    def _session_view(self, s: dict[str, Any], existing: int) -> dict[str, Any]:
        host = self.fleet.by_id[s["aid"]]
        return {
            "session_id": s["id"], "created_at": s["created_at"],
            "existing_aid_sessions": existing, "offline_queued": s["offline_queued"],
            "pwd": "C:\\" if host["platform_name"] == "Windows" else "/",
            "scripts": [], "device_id": s["aid"],
        }

    def _live_session(self, sid: str, client_id: str | None) -> dict[str, Any]:
        s = self.sessions.get(sid)
        if s is None or s["client_id"] != client_id or s["expires"] <= time.monotonic():
            if s is not None and s["expires"] <= time.monotonic():
                del self.sessions[sid]
            # unverified status/message for an unknown or expired session
            raise ApiError(404, "Could not find session")
        return s

    async def h_rtr_init(self, ctx: Ctx) -> Reply:
        _int_param(ctx.query.get("timeout"), "timeout", 30)
        ctx.query.get("timeout_duration")
        b = ctx.body if isinstance(ctx.body, dict) else {}
        aid = b.get("device_id")
        if not isinstance(aid, str) or not _AID_RE.match(aid):
            raise ApiError(400, "device_id is required and must be a 32-character hex id")
        host = self.fleet.by_id.get(aid)
        if host is None:
            raise ApiError(404, "Could not find device")  # unverified text
        queue_offline = bool(b.get("queue_offline", False))
        online = self.fleet.online.get(aid, False)
        if not online and not queue_offline:
            # Falcon's batch replies use code 40401 for this; the single-host status is
            # unverified (404 chosen).
            raise ApiError(404, "Could not establish sensor comms", code=40401)
        now_m = time.monotonic()
        ttl = self.emu.rtr_session_ttl
        for s in self.sessions.values():
            if s["client_id"] == ctx.client_id and s["aid"] == aid and s["expires"] > now_m:
                s["expires"] = now_m + ttl  # Falcon reuses the caller's session
                return Reply(status=201, resources=[self._session_view(s, 1)])
        sid = str(uuid.uuid4())
        s = {"id": sid, "aid": aid, "client_id": ctx.client_id, "created_at": fmt_ts(time.time()),
             "expires": now_m + ttl, "offline_queued": not online}
        self.sessions[sid] = s
        return Reply(status=201, resources=[self._session_view(s, 0)])

    async def h_rtr_delete(self, ctx: Ctx) -> Reply:
        sid = ctx.query.get("session_id")
        if not sid:
            raise ApiError(400, "session_id is required")
        s = self.sessions.get(sid)
        if s is None or s["client_id"] != ctx.client_id:
            raise ApiError(404, "Could not find session")
        del self.sessions[sid]
        return Reply(status=204, empty=True)

    async def h_rtr_refresh(self, ctx: Ctx) -> Reply:
        b = ctx.body if isinstance(ctx.body, dict) else {}
        aid = b.get("device_id")
        if not isinstance(aid, str):
            raise ApiError(400, "device_id is required")
        now_m = time.monotonic()
        for s in self.sessions.values():
            if s["client_id"] == ctx.client_id and s["aid"] == aid and s["expires"] > now_m:
                s["expires"] = now_m + self.emu.rtr_session_ttl
                return Reply(status=201, resources=[self._session_view(s, 1)])
        raise ApiError(404, "Could not find session")  # unverified

    async def _rtr_exec(self, ctx: Ctx, allowed: frozenset[str] | set[str]) -> Reply:
        b = ctx.body if isinstance(ctx.body, dict) else {}
        base = b.get("base_command")
        cmd = b.get("command_string")
        sid = b.get("session_id")
        if not isinstance(base, str) or not isinstance(cmd, str) or not isinstance(sid, str):
            raise ApiError(400, "base_command, command_string and session_id are required")
        s = self._live_session(sid, ctx.client_id)
        if base not in allowed:
            raise ApiError(400, f"command '{base}' is not available in this tier")
        if cmd.split(maxsplit=1)[:1] != [base]:
            raise ApiError(400, "command_string must start with base_command")
        host = self.fleet.by_id[s["aid"]]
        stdout, stderr = run_command(host, base, cmd)
        rid = str(uuid.uuid4())
        self.commands[rid] = {
            "session_id": sid, "base_command": base, "stdout": stdout, "stderr": stderr,
            "complete_at": time.monotonic() + self.emu.rtr_delay, "aid": s["aid"],
        }
        s["expires"] = time.monotonic() + self.emu.rtr_session_ttl
        return Reply(status=201, resources=[{"cloud_request_id": rid, "session_id": sid,
                                             "queued_command_offline": False}])

    async def h_rtr_exec_read(self, ctx: Ctx) -> Reply:
        return await self._rtr_exec(ctx, READ_ONLY)

    async def h_rtr_exec_active(self, ctx: Ctx) -> Reply:
        return await self._rtr_exec(ctx, ACTIVE_RESPONDER)

    async def h_rtr_exec_admin(self, ctx: Ctx) -> Reply:
        return await self._rtr_exec(ctx, ADMIN)

    async def h_rtr_status(self, ctx: Ctx) -> Reply:
        rid = ctx.query.get("cloud_request_id")
        seq = _int_param(ctx.query.get("sequence_id"), "sequence_id", 0)
        if not rid:
            raise ApiError(400, "cloud_request_id is required")
        c = self.commands.get(rid)
        if c is None:
            raise ApiError(404, "Could not find command")  # unverified
        done = time.monotonic() >= c["complete_at"] and self.fleet.online.get(c["aid"], False)
        return Reply(resources=[{
            "session_id": c["session_id"], "task_id": rid, "complete": done,
            "stdout": c["stdout"] if done and seq == 0 else "",
            "stderr": c["stderr"] if done and seq == 0 else "",
            "base_command": c["base_command"], "sequence_id": seq,
        }])

    # ------------------------------------------------------------------------------------
    # admin (/_emulator/...)

    async def h_admin_health(self, ctx: Ctx) -> Reply:
        return Reply(resources=[{"hosts": len(self.fleet.raw_hosts()), "region": self.emu.region}])

    async def h_admin_faults(self, ctx: Ctx) -> Reply:
        specs = ctx.body if isinstance(ctx.body, list) else [ctx.body]
        try:
            for spec in specs:
                if not isinstance(spec, dict):
                    raise ValueError("fault spec must be a JSON object")
                self.emu.faults.configure(spec)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return Reply(resources=[])

    async def h_admin_faults_clear(self, ctx: Ctx) -> Reply:
        self.emu.faults.clear()
        return Reply(resources=[])

    async def h_admin_requests(self, ctx: Ctx) -> Reply:
        return Reply(resources=[{
            "time": r.time, "method": r.method, "path": r.path, "query": r.query,
            "body": r.body, "status": r.status, "client_id": r.client_id, "fault": r.fault,
        } for r in self.emu.requests])

    async def h_admin_requests_clear(self, ctx: Ctx) -> Reply:
        self.emu.clear_requests()
        return Reply(resources=[])

    async def h_admin_set_online(self, ctx: Ctx) -> Reply:
        b = ctx.body if isinstance(ctx.body, dict) else {}
        aid = b.get("id")
        if not isinstance(aid, str) or aid not in self.fleet.by_id:
            raise ApiError(404, "unknown host")
        self.emu.set_online(aid, bool(b.get("online", True)))
        return Reply(resources=[{"id": aid}])

    async def h_admin_add_host(self, ctx: Ctx) -> Reply:
        b = ctx.body if isinstance(ctx.body, dict) else {}
        try:
            rec = self.emu.add_host(**b)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return Reply(status=201, resources=[rec])


def _powered_by(path: str) -> str:
    if path.startswith("/devices/"):
        return "device-api"
    if path.startswith("/alerts/"):
        return "alerts-api"
    if path.startswith("/real-time-response/"):
        return "empower-api"
    if path.startswith("/ods/"):
        return "ods-api"
    if path.startswith("/oauth2/"):
        return "csam"
    return "crowdstrike-api-gateway"


def build_app(emu: FalconEmulator) -> tuple[web.Application, App]:
    app_state = App(emu)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", app_state.dispatch)
    return app, app_state
