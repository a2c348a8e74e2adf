#!/usr/bin/env bash
# Run a command with every process on a shifted clock (docs/testing.md, `make test-shifted`).
#
#   tests/faketime/shifted.sh SHIFT command [args…]
#
# SHIFT is a libfaketime offset ("+13d", "+90d", "+1y", "-6h") or a UTC moment
# ("2026-12-31 16:30" or "2026-12-31 16:30:00"), turned into an offset in seconds
# from the real present so that every process (each starts later) shares one clock
# that keeps ticking. The embedded PostgreSQL (var/pgdata) is stopped first, so it
# restarts under the same shift, and stopped again at the end, so that no later
# unshifted run reuses a shifted server. DATABASE_URL is ignored: the machine's
# server is not shifted, and a test comparing with its now() would lie.
set -euo pipefail
cd "$(dirname "$0")/../.."
shift_arg=${1:?usage: tests/faketime/shifted.sh SHIFT command [args…]}
shift
case "$shift_arg" in
  [+-]*) offset=$shift_arg ;;
  *) offset="+$(( $(date -u -d "$shift_arg" +%s) - $(date -u +%s) ))" ;;
esac
lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
test -r "$lib" || { echo "libfaketime is not installed (apt-get install faketime)" >&2; exit 2; }
stop_db() { env -u LD_PRELOAD -u FAKETIME .venv/bin/python -c "from pathlib import Path; from baitiao.embedded_db import stop_embedded_database as stop; stop(Path('var'))" 2>/dev/null || true; }
stop_db
trap stop_db EXIT
echo "shifted clock: FAKETIME=$offset ($(LD_PRELOAD=$lib FAKETIME=$offset FAKETIME_DONT_FAKE_MONOTONIC=1 date -u '+%F %T UTC'))" >&2
# The monotonic clock stays real (timeouts, lock waits); tests/faketime/sitecustomize.py
# makes Python's time.sleep cope with that (libfaketime 0.9.10 bug, issue #426).
env -u DATABASE_URL \
  LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" FAKETIME="$offset" FAKETIME_DONT_FAKE_MONOTONIC=1 \
  PYTHONPATH="$PWD/tests/faketime${PYTHONPATH:+:$PYTHONPATH}" DEBUG="${DEBUG:-true}" \
  "$@"
