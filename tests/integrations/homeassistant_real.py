"""A real Home Assistant for the delivery tests (homeassistant==2025.4.4, installed by scripts/test into
a Python 3.13 virtualenv outside the repository and named by ``HUB_TEST_HASS``).

It runs ``hass -c DIR`` with a minimal configuration on a free loopback port, is onboarded through its
REST API (an owner account, then a long-lived access token through the websocket API), and is stopped
with SIGTERM (SIGKILL if it hangs). The websocket API also answers what Home Assistant really holds:
persistent notifications are not states since 2023.6, ``persistent_notification/get`` lists them.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from services import Service, http
from websockets.sync.client import connect

HOMEASSISTANT_VERSION = "2025.4.4"
#: Home Assistant's first start (database, auth store, frontend) is slow on a Raspberry Pi or a busy CI
START_TIMEOUT = 120.0

CONFIGURATION = """\
homeassistant:
  name: Hub test
  time_zone: UTC
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
auth:
onboarding:
frontend:
persistent_notification:
logger:
  default: warning
"""


class HomeAssistantError(AssertionError):
    """Home Assistant answered a set-up or websocket request with something else than expected."""


class RealHomeAssistant(Service):
    """``hass -c DIR`` on a free port, onboarded: ``url``, ``token``, ``websocket(type, **fields)``."""

    name = "homeassistant"
    owner = "hubtest"
    owner_password = "hub-test-owner-password"

    def __init__(self, workdir: Path, hass: str) -> None:
        super().__init__(workdir)
        self.hass = hass
        self.url = f"http://{self.host}:{self.port}"
        self.config_dir = workdir / "config"
        self.config_dir.mkdir(exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        self.token = ""

    def command(self) -> list[str]:
        # --skip-pip: everything is in the virtualenv already; the tests never reach for the network
        return [self.hass, "-c", str(self.config_dir), "--skip-pip", "--log-no-color"]

    def ready(self) -> bool:
        try:
            status, _ = http("GET", f"{self.url}/api/onboarding", timeout=2.0)
        except OSError:
            return False
        return status == 200

    def start(self) -> None:
        """Start, wait until the onboarding API answers (up to 120 s), and onboard once."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if self._process.poll() is not None:
                self._fail(f"exited with code {self._process.returncode} while starting")
            if time.monotonic() > deadline:
                self.kill()
                self._fail(f"did not answer /api/onboarding on port {self.port} within {START_TIMEOUT:g} s")
            time.sleep(0.25)
        if not self.token:
            try:
                self.token = self._onboard()
            except BaseException:
                self.kill()  # the fixture never reaches its teardown: do not leave hass running
                raise

    def _onboard(self) -> str:
        """Create the owner through the onboarding API and return a long-lived access token for it."""
        client_id = f"{self.url}/"
        user = {
            "client_id": client_id,
            "name": "Hub test",
            "username": self.owner,
            "password": self.owner_password,
            "language": "en",
        }
        created = self._post_json("/api/onboarding/users", user)
        form = urllib.parse.urlencode(
            {"grant_type": "authorization_code", "code": created["auth_code"], "client_id": client_id}
        )
        status, body = http("POST", f"{self.url}/auth/token", form.encode())
        if status != 200:
            self._fail(f"refused the onboarding auth code at /auth/token: {status} {body[:300]!r}")
        access_token = json.loads(body)["access_token"]
        token = self.websocket(
            "auth/long_lived_access_token",
            access_token=access_token,
            client_name="neighborhood hub tests",
            lifespan=1,
        )
        if not isinstance(token, str) or not token:
            self._fail(f"gave no long-lived access token: {token!r}")
        return token

    def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        status, body = http("POST", f"{self.url}{path}", json.dumps(payload).encode())
        if status != 200:
            self._fail(f"answered POST {path} with {status}: {body[:300]!r}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def websocket(self, command: str, *, access_token: str | None = None, **fields: Any) -> Any:
        """Run one websocket API command (authenticated with ``access_token`` or the test token) and
        return its result; raise HomeAssistantError when Home Assistant reports a failure."""
        ws_url = f"ws://{self.host}:{self.port}/api/websocket"
        with connect(ws_url, open_timeout=10, close_timeout=2, max_size=None) as ws:
            self._expect(ws.recv(timeout=10), "auth_required")
            ws.send(json.dumps({"type": "auth", "access_token": access_token or self.token}))
            self._expect(ws.recv(timeout=10), "auth_ok")
            ws.send(json.dumps({"id": 1, "type": command, **fields}))
            answer = json.loads(ws.recv(timeout=10))
        if answer.get("type") != "result" or not answer.get("success"):
            raise HomeAssistantError(f"Home Assistant refused {command}: {answer}")
        return answer["result"]

    @staticmethod
    def _expect(raw: str | bytes, kind: str) -> None:
        message = json.loads(raw)
        if message.get("type") != kind:
            raise HomeAssistantError(f"expected {kind} on the websocket API, got {message}")

    def notifications(self) -> list[dict[str, Any]]:
        """The persistent notifications Home Assistant holds now, as it lists them (its own included)."""
        listed: list[dict[str, Any]] = self.websocket("persistent_notification/get")
        return listed
