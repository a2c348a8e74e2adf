"""Embedded PostgreSQL for a machine with nothing installed.

When ``DATABASE_URL`` is unset, settings call :func:`embedded_database_url`, which
starts (or reuses) a ``pgserver`` instance whose data lives in ``var/pgdata``. The
server listens on a Unix socket only and is shared by every process of the
project: web server, queue cluster, management commands and the test run. It is
left running when a process exits (``cleanup_mode=None``) so that the next
command reuses it in well under a second; ``make db-stop`` stops it.
"""

from __future__ import annotations

import atexit
import os
import warnings
from pathlib import Path

DATABASE_NAME = "baitiao"


def embedded_database_url(var_dir: Path) -> str:
    """Start or reuse the embedded server and return a URL for our database.

    Args:
        var_dir: the project's ``var/`` folder; the cluster lives in ``var_dir/pgdata``.

    Returns:
        A ``postgresql://`` URL (socket host) for the ``baitiao`` database, which is
        created on first use.

    Raises:
        RuntimeError: the embedded server could not start; the message points at
            its log file.
    """
    var_dir.mkdir(parents=True, exist_ok=True)
    pgdata = var_dir / "pgdata"
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"runtime-{os.getuid()}"))  # noqa: S108
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata.resolve()) if pgdata.exists() else None
        if info is not None and info.is_running() and info.status == "ready":
            # Already up: read its socket from postmaster.pid and leave pgserver's
            # shared handle list alone (concurrent exits race on that file).
            _ensure_database(info.get_uri())
            return info.get_uri(database=DATABASE_NAME)
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except Exception as exc:  # pgserver raises subprocess errors with no context
            raise RuntimeError(f"Embedded PostgreSQL did not start; see {pgdata / 'log'} ({exc})") from exc
        # cleanup_mode=None keeps the server running; its exit hook would only
        # rewrite the handle list, which races with other processes exiting.
        atexit.unregister(server._cleanup)
    _ensure_database(server.get_uri())
    return server.get_uri(DATABASE_NAME)


def _ensure_database(admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def stop_embedded_database(var_dir: Path) -> bool:
    """Stop the embedded server if it runs (``make db-stop``). Returns whether it was running."""
    pgdata = var_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"runtime-{os.getuid()}"))  # noqa: S108
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import _commands

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user under root
    # pgserver creates its command functions with setattr() at import, unseen by mypy.
    _commands.pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)  # type: ignore[attr-defined]
    return True
