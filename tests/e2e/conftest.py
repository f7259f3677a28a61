"""Fixtures for the end-to-end suite.

Every test here drives a real ``filament up`` process through the real Python
``vnc_api`` client (PyPI ``contrail-api-client``) or through raw HTTP.

* ``server``       -- one server for the whole session (tests use unique names,
                      so they do not depend on each other).
* ``module_server``-- a private server for one test module (a fresh system).
* ``fresh_server`` -- a private server for one test, on its own data
                      directory, for tests that restart it.
* ``api``          -- a fresh ``VncApi`` client connected to ``server``.

The binary is ``$FILAMENT_BIN`` (default ``<repo>/target/debug/filament``).
"""

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 80


def filament_bin() -> Path:
    """The server binary under test, as an absolute path."""
    value = os.environ.get("FILAMENT_BIN")
    if not value:
        return REPO_ROOT / "target" / "debug" / "filament"
    path = Path(value)
    if not path.is_absolute():
        in_cwd = Path.cwd() / path
        path = in_cwd if in_cwd.exists() else REPO_ROOT / path
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent():
    """Runs in the child before exec: SIGTERM the server if pytest dies, so a
    killed test run never leaves a server behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:  # not Linux, or no prctl: best effort only
        pass


class FilamentServer:
    """A ``filament up`` process on 127.0.0.1:<port> with its own data dir."""

    def __init__(self, binary: Path, data_dir: Path, work_dir: Path, role: str = "up"):
        self.binary = binary
        self.role = role
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.log_path = work_dir / "filament.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # An empty client config, so /etc/contrail/vnc_api_lib.ini is never read.
        self.client_conf = work_dir / "vnc_api_lib.ini"
        self.client_conf.write_text("")
        self.proc = None
        self.starts = 0

    # -- process control -------------------------------------------------
    def start(self):
        assert self.proc is None, "server already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts} =====\n".encode())
        log.flush()
        cmd = [
            str(self.binary),
            self.role,
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"127.0.0.1:{self.port}",
        ]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                pytest.fail(
                    f"filament exited with code {code} before serving GET / "
                    f"on {self.base_url}\n{self.log_tail()}",
                    pytrace=False,
                )
            try:
                resp = requests.get(self.base_url + "/", timeout=2)
                if resp.status_code == 200:
                    return
                last_error = f"GET / answered {resp.status_code}"
            except requests.RequestException as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self._kill()
        pytest.fail(
            f"filament did not answer GET / with 200 on {self.base_url} within "
            f"{STARTUP_TIMEOUT_S:.0f} s (last: {last_error})\n{self.log_tail()}",
            pytrace=False,
        )

    def stop(self) -> int:
        """SIGTERM the server and return its exit code; a server that does not
        exit within SHUTDOWN_TIMEOUT_S is killed and the test fails."""
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(
                f"filament did not exit within {SHUTDOWN_TIMEOUT_S:.0f} s of "
                f"SIGTERM\n{self.log_tail()}",
                pytrace=False,
            )

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def kill(self):
        """SIGKILL: the process dies wherever it is (no clean shutdown)."""
        self._kill()

    def restart(self):
        """Clean shutdown (must exit 0), then start again on the same data
        directory and port."""
        code = self.stop()
        assert code == 0, f"filament exited with code {code} on SIGTERM\n{self.log_tail()}"
        self.start()

    # -- helpers ---------------------------------------------------------
    def api(self):
        """A new vnc_api client with keystone disabled (noauth)."""
        from vnc_api.vnc_api import VncApi

        return VncApi(
            api_server_host="127.0.0.1",
            api_server_port=self.port,
            auth_type="noauth",
            conf_file=str(self.client_conf),
            timeout=60,
            connection_timeout=5,
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no server log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"


def _launch(tmp_path_factory, name: str, role: str = "up") -> FilamentServer:
    binary = filament_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.exit(
            f"FILAMENT_BIN {binary} does not exist or is not executable; "
            "build it with `cargo build` (or set FILAMENT_BIN)",
            returncode=2,
        )
    work_dir = tmp_path_factory.mktemp(name)
    data_dir = work_dir / "data"
    data_dir.mkdir()
    server = FilamentServer(binary, data_dir, work_dir, role)
    server.start()
    return server


def _shutdown(server: FilamentServer):
    code = server.stop()
    assert code == 0, (
        f"filament exited with code {code} after SIGTERM (expected 0)\n"
        f"{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = _launch(tmp_path_factory, "filament-session")
    yield srv
    _shutdown(srv)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    srv = _launch(tmp_path_factory, "filament-module")
    yield srv
    _shutdown(srv)


@pytest.fixture
def fresh_server(tmp_path_factory):
    srv = _launch(tmp_path_factory, "filament-fresh")
    yield srv
    _shutdown(srv)


@pytest.fixture
def api_only_server(tmp_path_factory):
    """``filament api``: the config API without the schema transformer."""
    srv = _launch(tmp_path_factory, "filament-api-only", role="api")
    yield srv
    _shutdown(srv)


@pytest.fixture
def api(server):
    return server.api()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server log tail to every failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    for key in ("fresh_server", "module_server", "server"):
        srv = funcargs.get(key)
        if isinstance(srv, FilamentServer):
            report.sections.append((f"filament log ({key})", srv.log_tail()))
            break
