"""A LISTEN connection whose network path goes silent (no FIN, no RST: a vanished host, a
firewall that forgot the flow) is noticed by TCP keepalive and resynchronised once the path
is back. It needs root (a network namespace of its own, where a route can swallow every
packet) and the PostgreSQL binaries, for a server of its own inside that namespace; it is
skipped elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(os.environ.get("JOBIFY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PORT = int(os.environ.get("JOBIFY_TEST_PG_PORT", "5443")) + 1

# Runs inside `unshare -n`: only a loopback device, ours to route as we like.
NAMESPACE = """
set -e
ip link set lo up
ip addr add 10.99.0.1/32 dev lo
# Route lookups of the local table after ours, so a rule of ours can swallow packets.
ip rule add pref 100 lookup local
ip rule del pref 0
D=$(mktemp -d /tmp/jobify-silent-XXXXXX)
chown postgres "$D"
stop() { runuser -u postgres -- "$BIN/pg_ctl" -D "$D/data" -m immediate stop; rm -rf "$D"; }
trap 'stop >/dev/null 2>&1' EXIT
runuser -u postgres -- "$BIN/initdb" -A trust -U postgres -D "$D/data" >/dev/null
echo "host all all 10.99.0.1/32 trust" >> "$D/data/pg_hba.conf"
runuser -u postgres -- "$BIN/pg_ctl" -D "$D/data" -w -l "$D/log" \\
    -o "-p $PORT -k $D -c listen_addresses=10.99.0.1 -c fsync=off" start >/dev/null
"$PYTHON" "$CLIENT"
"""

CLIENT = """
import asyncio, subprocess, time
from jobify.storage import PostgresStorage
from jobify.storage.base import SharedListener

class Heard(SharedListener):
    def __init__(self):
        self.resynced = asyncio.Event()
    def on_new_job(self, exec_at): pass
    def on_job_changed(self, job_id): pass
    def on_job_finished(self, job_id): pass
    def on_resync(self):
        self.resynced.set()

def sh(command):
    subprocess.run(command, shell=True, check=True)

async def main():
    dsn = "postgresql://postgres@10.99.0.1:{PORT}/postgres"
    storage = PostgresStorage(dsn, connect_timeout=1)
    heard = Heard()
    storage.set_listener(heard)
    await storage.startup()
    await asyncio.sleep(1.5)  # the connection has been quiet for a while, as it always is
    sh("ip rule add pref 50 to 10.99.0.1 lookup 99")
    sh("ip route add blackhole 10.99.0.1/32 table 99")
    dropped = time.monotonic()
    while storage.listening and time.monotonic() - dropped < 20:
        await asyncio.sleep(0.01)
    print("noticed", time.monotonic() - dropped, flush=True)
    sh("ip rule del pref 50")
    back = time.monotonic()
    await asyncio.wait_for(heard.resynced.wait(), 20)
    print("resynced", time.monotonic() - back, flush=True)
    await storage.shutdown()

asyncio.run(main())
"""


def test_a_silently_dropped_listen_connection_is_noticed_and_resynchronised(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip (a network namespace of its own)")
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {BIN} (set JOBIFY_TEST_PG_BIN)")
    client = tmp_path / "client.py"
    client.write_text(CLIENT.replace("{PORT}", str(PORT)))
    client.chmod(0o644)
    env = {**os.environ, "BIN": str(BIN), "PORT": str(PORT), "PYTHON": sys.executable}
    env["CLIENT"] = str(client)
    done = subprocess.run(
        ["unshare", "-n", "bash", "-c", NAMESPACE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(line.split() for line in done.stdout.splitlines() if line)
    # Keepalive probes after 1 s of silence, 1 s apart, give up on the first unanswered
    # one: noticed within about 2 s of the path going quiet (the kernel's floor is whole
    # seconds); a busy host may add a little.
    assert float(figures["noticed"]) < 3.5, figures
    assert float(figures["resynced"]) < 2.0, figures
