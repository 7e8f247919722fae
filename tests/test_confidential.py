"""Confidential data stays with its owner: file modes, lock files, plain HTTP, and secrets.

Everything through the CLI as a real subprocess, under the umask most machines have (022), except
the name-by-name checks of the one secret filter, which are plain function calls.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Setup, write_config
from orsync import secrets
from orsync.config import parse_config
from orsync.emulator import Emulator
from orsync.errors import ConfigError
from orsync.lock import lock_path

# -- helpers ----------------------------------------------------------------------------------


def cli(
    setup: Setup | Path,
    *args: str,
    umask: int = 0o022,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`orsync --config CFG ARGS` with the given umask in the child (the parent's is untouched)."""
    config = setup.config if isinstance(setup, Setup) else setup
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_SOCKET"))
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        preexec_fn=lambda: os.umask(umask),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("orsync: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- 3. files with confidential content are 0600 whatever the umask ----------------------------


def test_store_side_files_lock_export_report_are_private(setup: Setup) -> None:
    first = cli(setup, "pull", "--no-push")
    assert first.returncode == 0, first.stderr
    assert mode(setup.db) == 0o600
    lock = setup.db.with_name(setup.db.name + ".lock")
    assert mode(lock) == 0o600
    # A reader holding the store open (the website build, a notebook) keeps the side files on
    # disk while the next cycle writes: they carry the store's mode.
    reader = sqlite3.connect(setup.db)
    try:
        reader.execute("SELECT count(*) FROM note").fetchone()
        setup.emu.edit_content(next(iter(setup.emu.truth("chair")["submissions"])), title="New")
        again = cli(setup, "pull", "--no-push")
        assert again.returncode == 0, again.stderr
        for suffix in ("-wal", "-shm"):
            side = setup.db.with_name(setup.db.name + suffix)
            assert side.exists(), suffix
            assert mode(side) == 0o600, suffix
    finally:
        reader.close()

    exported = setup.dir / "reviews.csv"
    result = cli(setup, "export", "--what", "reviews", "--format", "csv", "--out", str(exported))
    assert result.returncode == 0, result.stderr
    assert exported.read_text().strip() and mode(exported) == 0o600
    # An existing, wider file is replaced by a private one, not written through.
    exported.chmod(0o644)
    result = cli(setup, "export", "--what", "reviews", "--out", str(exported))
    assert result.returncode == 0, result.stderr
    assert mode(exported) == 0o600

    page = setup.dir / "report.html"
    result = cli(setup, "report", "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert "<html" in page.read_text().lower() and mode(page) == 0o600


def test_export_does_not_write_through_a_planted_link(setup: Setup) -> None:
    assert cli(setup, "pull", "--no-push").returncode == 0
    victim = setup.dir / "victim.txt"
    victim.write_text("keep me")
    victim.chmod(0o644)
    out = setup.dir / "out.json"
    out.symlink_to(victim)
    result = cli(setup, "export", "--what", "reviews", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep me"
    assert not out.is_symlink() and mode(out) == 0o600


def test_existing_store_readable_by_others_is_refused_group_warned(setup: Setup) -> None:
    assert cli(setup, "pull", "--no-push").returncode == 0
    setup.db.chmod(0o644)  # what orsync made under umask 022 before
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 5, result.stderr
    line = error_line(result)
    assert "readable by other users" in line and f"chmod 600 {setup.db}" in line, line
    # A reader only warns: what it reads is exposed already, and a store made readable for a
    # reader account must still serve status.
    result = cli(setup, "status")
    assert result.returncode == 0, result.stderr
    assert "readable by other accounts" in result.stderr and "chmod 600" in result.stderr

    for made in setup.dir.glob("orsync.db*"):  # the old unit's UMask=0027: only the group
        made.chmod(0o640)
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 0, result.stderr
    assert "readable by other accounts" in result.stderr and "chmod 600" in result.stderr

    setup.db.chmod(0o600)
    result = cli(setup, "status")
    assert result.returncode == 0, result.stderr
    assert "readable by" not in result.stderr


# -- 4. lock files -----------------------------------------------------------------------------


def test_lock_link_is_neither_followed_nor_truncated(setup: Setup) -> None:
    victim = setup.dir / "precious"
    victim.write_text("do not truncate")
    lock = setup.db.with_name(setup.db.name + ".lock")
    lock.symlink_to(victim)
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 5, result.stderr
    assert "symbolic link" in error_line(result)
    assert victim.read_text() == "do not truncate"
    assert lock.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant a file owned by someone else")
def test_lock_owned_by_another_user_is_refused(setup: Setup) -> None:
    lock = setup.db.with_name(setup.db.name + ".lock")
    lock.write_text("")
    os.chown(lock, 65534, 65534)  # nobody
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 5, result.stderr
    assert "belongs to another user" in error_line(result)


def test_lock_held_by_an_unknown_process_is_shown_as_held(setup: Setup) -> None:
    assert cli(setup, "pull", "--no-push").returncode == 0
    lock = setup.db.with_name(setup.db.name + ".lock")
    # Anything that flocks the file without saying who it is (not an orsync).
    handle = lock.open("r")
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        text = cli(setup, "status")
        assert text.returncode == 0, text.stderr
        assert not re.search(r"lock\s+free", text.stdout)
        assert re.search(r"lock\s+held by a process orsync cannot identify", text.stdout), (
            text.stdout
        )
        data = json.loads(cli(setup, "status", "--json").stdout)
        assert data["lock_holder"] is not None
        busy = cli(setup, "pull", "--no-push", "--no-wait")
        assert busy.returncode == 75
        assert "cannot identify" in error_line(busy)
    finally:
        handle.close()
    assert re.search(r"lock\s+free", cli(setup, "status").stdout)


def test_server_database_locks_never_in_a_shared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL: the advisory lock in the database alone, no local file to plant.
    assert lock_path("postgresql+psycopg://orsync@db.example.org/orsync", None) is None
    # Other server databases: a file in a folder only this user can enter.
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    path = lock_path("mysql+pymysql://orsync@db.example.org/orsync", None)
    assert path is not None and path.parent == tmp_path / "run" / "orsync"
    assert mode(path.parent) == 0o700
    assert not str(path).startswith("/tmp/orsync-")


# -- 5. no credentials over plain HTTP ----------------------------------------------------------


def test_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    # No network needed: the config is refused before any request.
    config = write_config(tmp_path, None, baseurl="http://api2.openreview.net")
    for command in ("pull", "status"):
        result = cli(config, command)
        assert result.returncode == 2, result.stderr
        line = error_line(result)
        assert "openreview.baseurl" in line and "openreview.allow_insecure_http" in line, line
    checked = cli(config, "check")
    assert checked.returncode == 2, checked.stdout
    assert "openreview.allow_insecure_http" in checked.stdout

    allowed = write_config(
        tmp_path / "allowed",
        None,
        baseurl="http://192.0.2.1",
        extra="",
    )
    text = allowed.read_text().replace("[openreview]", "[openreview]\nallow_insecure_http = true")
    allowed.write_text(text)
    result = cli(allowed, "status")
    assert result.returncode == 5, result.stderr  # past the config: no store yet


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api2.openreview.net", True),
        ("http://127.0.0.1:8765", True),
        ("http://127.8.9.10", True),
        ("http://localhost:8765", True),
        ("http://[::1]:8765", True),
        ("http://api2.openreview.net", False),
        ("http://10.0.0.5:8765", False),
        ("http://[2001:db8::1]", False),
        ("http://localhost.example.org", False),
    ],
)
def test_loopback_only_over_http(url: str, ok: bool) -> None:
    data = {"openreview": {"baseurl": url, "venue_id": "V"}}
    if ok:
        assert parse_config(data).openreview.baseurl == url
    else:
        with pytest.raises(ConfigError, match="allow_insecure_http"):
            parse_config(data)
        allowed = {"openreview": {**data["openreview"], "allow_insecure_http": True}}
        assert parse_config(allowed).openreview.baseurl == url


# -- 6. the one secret filter -------------------------------------------------------------------

SECRET_VARIABLES = {
    "GPG_PASSPHRASE": "correct horse",
    "HTTP_AUTHORIZATION": "Basic b3JzeW5jOmh1bnRlcjI=",
    "SESSION_COOKIE": "sid=abc123",
    "SMTP_PASS": "smtp-pass-value",
    "MYSQL_PWD": "mysql-pwd-value",
    "DEPLOY_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----",
    "GITHUB_TOKEN": "ghp_0123456789abcdef",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "ORSYNC_OPENREVIEW_PASSWORD": "or-password-value",
    "PGPASSWORD": "pg-password-value",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/chair/key.json",
    "NPM_AUTH": "npm-auth-value",
    "API_SECRET": "api-secret-value",
    "CREDENTIALS_DIRECTORY": "/run/credentials/orsync.service",
    "DATABASE_URL": "postgresql://orsync:db-password@db.example.org/orsync",
    "HTTPS_PROXY": "http://proxyuser:proxy-password@proxy.invalid:3128",
}
KEPT_VARIABLES = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/home/chair",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "Europe/Vienna",
    "KEYBOARD": "de",
    "XDG_SESSION_TYPE": "tty",
    "XDG_RUNTIME_DIR": "/run/user/1000",
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    "PWD": "/srv/site",
    "SSH_AUTH_SOCK": "/run/user/1000/ssh-agent",
    "GIT_AUTHOR_NAME": "BGPT chairs",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    "SITE_URL": "https://bgpt.example.org/",
    "NO_PROXY": "127.0.0.1,localhost",
}


@pytest.mark.parametrize("name", sorted(SECRET_VARIABLES))
def test_secret_variable_is_dropped(name: str) -> None:
    env = secrets.child_environ({name: SECRET_VARIABLES[name], "PATH": "/usr/bin"})
    assert name not in env and env == {"PATH": "/usr/bin"}


@pytest.mark.parametrize("name", sorted(KEPT_VARIABLES))
def test_ordinary_variable_is_kept(name: str) -> None:
    assert secrets.child_environ({name: KEPT_VARIABLES[name]}) == {name: KEPT_VARIABLES[name]}


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("push to https://bot:ghp_tok3n@github.com/x failed", "ghp_tok3n"),
        ("connect postgresql://orsync:db-pw@db/orsync refused", "db-pw"),
        ("MYSQL_PWD=mysql-pw-1 mysql: access denied", "mysql-pw-1"),
        ("SMTP_PASS: smtp-pw-2", "smtp-pw-2"),
        ("password=hunter2xyz", "hunter2xyz"),
        ("Authorization: Basic b3JzeW5jOmh1bnRlcjI=", "b3JzeW5jOmh1bnRlcjI="),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ('{"token": "tok-value-3"}', "tok-value-3"),
    ],
)
def test_mask_text_hides_credentials(text: str, hidden: str) -> None:
    masked = secrets.mask_text(text)
    assert hidden not in masked and secrets.REDACTED in masked


@pytest.mark.parametrize(
    "text",
    [
        "KeyError: 'forum'",
        "invalid value for 'openreview.password_file': /etc/orsync/pw does not exist",
        "session: P1",
        "store sqlite:////var/lib/orsync/orsync.db: database is locked",
        "see https://openreview.net/forum?id=abc",
        "http://127.0.0.1:8765 unreachable",
    ],
)
def test_mask_text_leaves_ordinary_text(text: str) -> None:
    assert secrets.mask_text(text) == text


def _on_change_script(folder: Path, body: str) -> list[str]:
    script = folder / "on_change.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def _website_config(tmp_path: Path, emu: Emulator, argv: list[str], password: str) -> Path:
    on_change = json.dumps(argv)
    extra = f'[website]\noutput_dir = "site"\non_change = {on_change}\n'
    config = write_config(tmp_path, emu, extra=extra)
    (tmp_path / "pw").write_text(password)
    (tmp_path / "pw").chmod(0o600)
    return config


def test_on_change_sees_no_secret_variable(tmp_path: Path, emulator: Emulator) -> None:
    dump = tmp_path / "env.json"
    argv = _on_change_script(
        tmp_path,
        f"""
        import json, os
        with open({str(dump)!r}, "w") as f:
            json.dump(dict(os.environ), f)
        """,
    )
    config = _website_config(tmp_path, emulator, argv, emulator.chair_password)
    env = {**SECRET_VARIABLES, **{k: v for k, v in KEPT_VARIABLES.items() if k != "PWD"}}
    result = cli(config, "pull", env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(dump.read_text())
    for name in SECRET_VARIABLES:
        assert name not in seen, name
    for value in SECRET_VARIABLES.values():
        assert value not in json.dumps(seen)
    assert emulator.chair_password not in json.dumps(seen)
    for name in (
        "PATH",
        "HOME",
        "LANG",
        "KEYBOARD",
        "XDG_SESSION_TYPE",
        "SSH_AUTH_SOCK",
        "SITE_URL",
    ):
        assert seen.get(name) == KEPT_VARIABLES[name], name
    assert "NOTIFY_SOCKET" not in seen


LEAKY_ON_CHANGE = """
    import sys
    password = open({pw!r}).read().strip()
    print("deploying...", file=sys.stderr)
    print("git push https://bot:" + password + "@git.example.org/site.git: auth failed, password "
          + password, file=sys.stderr)
    sys.exit(1)
"""


def test_failing_on_change_does_not_leak_the_password_to_the_cli(
    tmp_path: Path, emulator: Emulator
) -> None:
    password = emulator.chair_password
    argv = _on_change_script(tmp_path, LEAKY_ON_CHANGE.format(pw=str(tmp_path / "pw")))
    config = _website_config(tmp_path, emulator, argv, password)
    for command in (("pull",), ("push",)):  # push never logs in: the password is masked anyway
        if command == ("push",):
            (tmp_path / "site" / "papers.json").unlink()  # so that push changes a file again
        result = cli(config, *command)
        assert result.returncode != 0
        line = error_line(result)
        assert "on_change" in line and secrets.REDACTED in line, line
        assert password not in result.stderr + result.stdout


class _NotifySocket:
    def __init__(self, folder: Path) -> None:
        path = folder / "notify"
        if len(str(path)) > 100:
            path = Path("/tmp") / f"orsync-notify-{uuid.uuid4().hex}"
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)

    def messages_until(self, predicate: str, timeout: float) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.append(self.sock.recv(65536).decode())
            except TimeoutError:
                continue
            if predicate in got[-1]:
                return got
        raise AssertionError(f"no {predicate!r} in {got}")

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[_NotifySocket]:
    ns = _NotifySocket(tmp_path)
    try:
        yield ns
    finally:
        ns.close()


def test_failing_on_change_does_not_leak_the_password_to_status(
    tmp_path: Path, emulator: Emulator, notify_socket: _NotifySocket
) -> None:
    password = emulator.chair_password
    argv = _on_change_script(tmp_path, LEAKY_ON_CHANGE.format(pw=str(tmp_path / "pw")))
    config = _website_config(tmp_path, emulator, argv, password)
    config.write_text(config.read_text() + "\n[sync]\ninterval_s = 30\njitter_s = 0\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_", "WATCHDOG_"))
    }
    env["NOTIFY_SOCKET"] = str(notify_socket.path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: os.umask(0o022),
    )
    try:
        messages = notify_socket.messages_until("website push failed", timeout=60)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    status = next(m for m in messages if "website push failed" in m)
    assert status.startswith("STATUS=") and secrets.REDACTED in status, status
    assert password not in "".join(messages)
    assert password not in out + err
    assert mode(tmp_path / "orsync.db") == 0o600


# -- password_file readable by others -----------------------------------------------------------


def test_password_file_readable_by_others_warns(setup: Setup) -> None:
    pw = setup.dir / "pw"
    pw.chmod(0o644)
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 0, result.stderr
    assert f"chmod 600 {pw}" in result.stderr and "readable by other users" in result.stderr
    assert setup.emu.chair_password not in result.stderr

    pw.chmod(0o600)
    result = cli(setup, "pull", "--no-push")
    assert result.returncode == 0, result.stderr
    assert "chmod 600" not in result.stderr


# -- the public folder holds nothing confidential ---------------------------------------------


def _site_config(folder: Path, emu: Emulator, site: str, store: Path | None = None) -> Path:
    config = write_config(folder, emu, extra=f'[website]\noutput_dir = "{site}"\n')
    if store is not None:
        text = config.read_text().replace(str(folder / "orsync.db"), str(store))
        config.write_text(text)
    return config


@pytest.mark.parametrize("command", ["check", "pull", "push", "run"])
def test_site_folder_holding_the_store_is_refused(
    tmp_path: Path, emulator: Emulator, command: str
) -> None:
    """output_dir = "." holds the store: a deploy hook copying the folder would publish every
    review. Refused before anything is written, whatever the command."""
    config = _site_config(tmp_path, emulator, ".")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli(config, command, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    expected = (
        f"website.output_dir {tmp_path} contains the store {tmp_path / 'orsync.db'}: reviews "
        "would be published; put the store outside the site folder"
    )
    if command == "check":
        lines = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        assert lines == [f"FAIL config: {expected}"], result.stdout
    elif command == "run":
        logged = result.stdout + result.stderr  # the service logs JSON lines
        assert expected in logged and "not starting" in logged, logged
    else:
        assert error_line(result) == f"orsync: error: {expected}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no site file


def test_mini_conf_folder_holding_the_store_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    """Mini-Conf's folder is published whole like the site's: miniconf_dir = "." is refused, and
    only when the format is on (the key alone writes nothing)."""
    extra = '[website]\noutput_dir = "site"\nformats = ["json", "miniconf"]\nminiconf_dir = "."\n'
    config = write_config(tmp_path, emulator, extra=extra)
    result = cli(config, "check", timeout=60)
    assert result.returncode == 2, result.stdout
    expected = (
        f"FAIL config: website.miniconf_dir {tmp_path} contains the store "
        f"{tmp_path / 'orsync.db'}: reviews would be published; put the store outside the site folder"
    )
    assert expected in result.stdout.splitlines(), result.stdout
    config.write_text(config.read_text().replace('"json", "miniconf"', '"json"'))
    assert cli(config, "check", timeout=60).returncode == 0


def test_site_folder_holding_a_secret_is_refused_through_links(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The password file, the config and the store, each reached through a symbolic link: the
    real paths decide."""
    private = tmp_path / "private"
    private.mkdir()
    store = private / "orsync.db"
    # The site folder is a link to the folder holding the store.
    (tmp_path / "site-link").symlink_to(private)
    config = _site_config(private, emulator, str(tmp_path / "site-link"), store=store)
    result = cli(config, "push")
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert f"website.output_dir {tmp_path / 'site-link'} contains the store {store}" in line

    # The password file inside the site folder (the store and config elsewhere).
    folder = tmp_path / "b"
    config = _site_config(folder, emulator, "site", store=tmp_path / "b.db")
    (folder / "site").mkdir()
    (folder / "pw").rename(folder / "site" / "pw")
    config.write_text(
        config.read_text().replace('password_file = "pw"', 'password_file = "site/pw"')
    )
    result = cli(config, "check")
    assert result.returncode == 2, result.stdout
    assert (
        f"FAIL config: website.output_dir {folder / 'site'} contains openreview.password_file "
        f"{folder / 'site' / 'pw'}: the password would be published; put the password file "
        "outside the site folder"
    ) in result.stdout.splitlines()

    # The config inside the site folder, reached through a link to it.
    folder = tmp_path / "c"
    site = folder / "site"
    site.mkdir(parents=True)
    config = _site_config(site, emulator, str(folder / "www"), store=tmp_path / "c.db")
    config.write_text(
        config.read_text().replace(
            'password_file = "pw"', f'password_file = "{tmp_path / "b" / "site" / "pw"}"'
        )
    )
    (folder / "www").symlink_to(site)
    result = cli(config, "pull")
    assert result.returncode == 2, result.stderr
    assert f"contains the config file {config}: the config would be published" in error_line(result)
    assert not (tmp_path / "c.db").exists() and sorted(p.name for p in site.iterdir()) == [
        "orsync.toml",
        "pw",
    ]


def test_chairs_files_are_not_written_into_the_site_folder(
    tmp_path: Path, emulator: Emulator
) -> None:
    """report --html and export --out refuse a path inside website.output_dir (a link to it
    too) unless --force; report's page goes beside the store by default, not the shell's
    folder."""
    config = _site_config(tmp_path, emulator, "site")
    assert cli(config, "pull").returncode == 0
    site = tmp_path / "site"
    published = sorted(p.name for p in site.iterdir())
    (tmp_path / "into-site").symlink_to(site)
    for args, path in (
        (("report", "--html"), site / "report.html"),
        (("export", "--what", "reviews", "--format", "csv", "--out"), site / "reviews.csv"),
        (("export", "--what", "reviews", "--out"), tmp_path / "into-site" / "reviews.json"),
    ):
        result = cli(config, *args, str(path))
        assert result.returncode == 2, result.stderr
        option = args[-1]
        assert error_line(result) == (
            f"orsync: error: {option} {path} is inside website.output_dir {site}, which is "
            "published: what only the chairs may read would be too; write it elsewhere, or "
            "pass --force"
        )
        assert sorted(p.name for p in site.iterdir()) == published
    forced = cli(config, "export", "--what", "reviews", "--out", str(site / "r.json"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert mode(site / "r.json") == 0o600

    elsewhere = tmp_path / "shell"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "orsync", "--config", str(config), "report"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env={k: v for k, v in os.environ.items() if not k.startswith("ORSYNC_")},
    )
    assert result.returncode == 0, result.stderr
    page = tmp_path / "orsync-report.html"
    assert f"HTML report with charts: {page}" in result.stdout
    assert mode(page) == 0o600 and list(elsewhere.iterdir()) == []
