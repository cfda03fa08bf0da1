"""Other processes that own a SQLite store, for tests of locks, inspection and commands."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# Owns the file until its stdin closes. It watches for commands and answers each one with
# "<action> <job id>". Its first line is "ready <watch mode>".
OWNER = """
import asyncio, sys
from jobify.storage import SQLiteStorage

async def main():
    storage = SQLiteStorage(sys.argv[1])
    await storage.startup()
    woke = asyncio.Event()
    storage.watch_commands(woke.set)
    print("ready", storage.watch_mode, flush=True)

    async def answer():
        while True:
            await woke.wait()
            woke.clear()
            for command in await storage.take_commands():
                await storage.finish_command(
                    command.command_id, f"{command.action} {command.job_id}"
                )

    answering = asyncio.create_task(answer())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    answering.cancel()
    await storage.shutdown()

asyncio.run(main())
"""


async def start_owner(database: Path | str) -> tuple[asyncio.subprocess.Process, str]:
    """Start a process that owns ``database``; return it and its watch mode once ready."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OWNER,
        str(database),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode().split()
    if not line or line[0] != "ready":
        process.kill()
        await process.wait()
        raise AssertionError(f"the owner process did not start: {line}")
    return process, line[1]


async def stop_owner(process: asyncio.subprocess.Process) -> int:
    """Let the owner shut down cleanly (or kill it if it already is gone); its exit code."""
    if process.returncode is None and process.stdin is not None:
        process.stdin.close()
        try:
            return await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
    return await process.wait()
