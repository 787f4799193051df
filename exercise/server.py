"""``critmin exercise``: serve the crisis-exercise app (Solara on uvicorn) and print its URL.

Loopback (``127.0.0.1``) by default. Binding any other address needs ``--token``: every HTTP
request and websocket must then carry it (``?token=`` once, then a cookie), or gets 403. The
Solara kernel of a browser that went away is culled after ``--cull`` (30 s), which stops its
play loop. Solara's web assets are served from the local copy of the ``solara-assets`` package
(no CDN: the assets proxy never needs the internet).
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import os
import socket
import sys
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from critmin.sim.world import DataError

COOKIE = "critmin_exercise_token"
BAD_INPUT = 2


def banner(url: str) -> str:
    """What `critmin exercise` prints once it serves (the README and docs/exercise.md show it)."""
    return f"critmin exercise: open {url}  (teams: role=<team>; Ctrl-C stops)"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost`` (which binds to loopback)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (DataError)."""
    if not is_loopback(host) and not token:
        raise DataError(
            f"--host {host}: not a loopback address; serving other machines needs --token SECRET "
            "(each browser opens the URL with ?token=SECRET)"
        )
    if token is not None and len(token) < 16:
        raise DataError("--token: expected at least 16 characters")


class TokenGate:
    """ASGI middleware: requests without the token (query ``token=`` or the cookie it sets) get
    403; the first request with it in the query sets the cookie for the page's assets and
    websocket."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    def _ok(self, scope: dict) -> tuple[bool, bool]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0].encode()
        if given and hmac.compare_digest(given, self.token):
            return True, True
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie = SimpleCookie(value.decode("latin-1"))
                if COOKIE in cookie and hmac.compare_digest(cookie[COOKIE].value.encode(), self.token):
                    return True, False
        return False, False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        ok, set_cookie = self._ok(scope)
        if not ok:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return None
            await send(
                {"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]}
            )
            await send(
                {"type": "http.response.body", "body": b"critmin exercise: a valid token is required\n"}
            )
            return None
        if not set_cookie or scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="critmin exercise",
        description="The crisis-exercise web app: a facilitator steps the world month by month and "
        "injects shocks, teams respond with instruments, the exercise is saved as a timeline that "
        "`critmin run --timeline` replays (docs/exercise.md).",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)"
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--token", default=None, help="access token, required for a non-loopback --host")
    p.add_argument("--world", default="ree_2024_short", help="scenario of new exercises (configs/scenario)")
    p.add_argument(
        "--start", default=None, help="month new exercises open, YYYY-MM (default: the world's start)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--teams",
        default="USA,JPN,DEU,KOR",
        help="teams, comma-separated: country codes or groups of experiment.metrics.regions (e.g. USA,JPN,EU,KOR)",
    )
    p.add_argument("--timeline", default=None, help="open this saved timeline as the first exercise")
    p.add_argument(
        "--cull", default="30s", help="drop an abandoned browser's kernel after this (default 30s)"
    )
    return p


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check_binding(args.host, args.token)
        from critmin.exercise.hall import Hall
        from critmin.exercise.timeline import load

        defaults: dict[str, Any] = {
            "world": args.world,
            "start": args.start,
            "seed": args.seed,
            "teams": args.teams.split(","),
        }
        hall = Hall(defaults)
        first = hall.open(load(args.timeline)) if args.timeline else hall.open()
    except DataError as exc:
        print(f"critmin exercise: bad input: {exc}", file=sys.stderr)
        return BAD_INPUT
    # Solara reads its settings from the environment when first imported
    os.environ["SOLARA_APP"] = "critmin.exercise.app"
    os.environ.setdefault("SOLARA_KERNEL_CULL_TIMEOUT", args.cull)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    os.environ.setdefault("SOLARA_ASSETS_PROXY", "True")  # served from solara-assets' local copy
    import uvicorn

    from critmin.exercise import app as app_module

    app_module.configure(hall)
    import solara.server.starlette as solara_server

    asgi: Any = solara_server.app
    if args.token:
        asgi = TokenGate(asgi, args.token)
    port = args.port or _free_port(args.host)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}/?exercise={first}&role=facilitator"
    if args.token:
        url += f"&token={args.token}"
    print(banner(url), flush=True)
    uvicorn.run(asgi, host=args.host, port=port, log_level="warning")
    return 0
