"""Who applies an action, and how: the running owner through a command, or the inspector itself.

The rule (:class:`~jobify.storage.base.CommandChannel`): an embedded store is never edited
under its running owner. While an owner runs, the inspector sends it a command and waits, for
a bounded time, for its answer. With no owner running, the inspector opens the store as its
owner (``startup()``), edits it, and closes it. A shared store is always edited directly (the
store notifies its workers).

While the inspector owns an embedded store for an edit it is its owner like any app: it also
answers the commands that are waiting (sent by an inspector that saw it as the owner, or left
by an app that stopped before answering), so that no command lingers to be applied by surprise
when the app next starts. For the same reason an inspector waiting for an answer checks whether
the owner is still there; if it went away without answering, the inspector takes the store and
answers the commands itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from jobify.exceptions import StorageError, StorageLockedError
from jobify.inspection._actions import VERBS, apply_direct
from jobify.inspection._decode import safe_text
from jobify.inspection._model import (
    ActionRefusedError,
    ActionResult,
    InspectionError,
    OwnerNotAnsweringError,
)
from jobify.storage.base import CommandChannel, Storage

__all__ = ["Steering"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.05
_OWNER_CHECK = 0.25
"""Seconds between checks that the owner we wait for still runs."""
_OK = "ok"


class Steering:
    """Applies actions to one store (see the module docstring).

    ``open_storage`` makes a new, unopened storage for the store; ``name`` describes it in
    messages; ``clock`` gives "now" in UTC epoch seconds for run-now edits.
    """

    def __init__(
        self,
        open_storage: Callable[[], Storage],
        name: str,
        clock: Callable[[], float],
    ) -> None:
        self._open_storage = open_storage
        self._name = name
        self.timeout = 5.0
        """Seconds to wait for a running owner's answer."""
        self._clock = clock
        # One edit session at a time from this inspector: two would race for ownership and
        # the second would take the first for a running app (see _lock).
        self._editing: asyncio.Lock | None = None

    async def apply(
        self, inspected: Storage, job_id: str, action: str, orphaned: bool | None
    ) -> ActionResult:
        """Apply ``action`` to ``job_id``; ``inspected`` is the store opened for inspection
        (it tells whether an owner runs)."""
        if inspected.shared or not isinstance(inspected, CommandChannel):
            # A shared store is edited directly. A store that cannot tell whether an owner
            # runs is edited only if startup() succeeds (a running owner makes it fail).
            async with self._lock():
                result, _ = await self._edit(job_id, action, orphaned)
            assert result is not None
            return result
        # Two rounds: an app may start between "no owner runs" and our own startup().
        for _ in range(2):
            # The decision and the edit are one step for this inspector: otherwise its
            # own edit in progress would look like a running app to its next action.
            async with self._lock():
                if not await inspected.owner_running():
                    try:
                        result, _ = await self._edit(job_id, action, orphaned)
                    except StorageLockedError:
                        continue
                    assert result is not None
                    return result
            return await self._ask(inspected, job_id, action)
        raise StorageError(f"{self._name} changed hands while the action was attempted; try again")

    def _lock(self) -> asyncio.Lock:
        # Created on first use, on the loop the inspector runs on.
        if self._editing is None:
            self._editing = asyncio.Lock()
        return self._editing

    async def _ask(self, channel: CommandChannel, job_id: str, action: str) -> ActionResult:
        """Send the command and wait, up to the timeout, for its answer (polled: there is no
        notification back to an inspector; quickly at first)."""
        command_id = await channel.send_command(job_id, action)
        deadline = time.monotonic() + self.timeout
        next_check = time.monotonic() + _OWNER_CHECK
        pause = _FIRST_POLL
        via: Literal["owner", "direct"] = "owner"
        while True:
            answer = await channel.command_result(command_id)
            if answer is not None:
                break
            now = time.monotonic()
            if now >= next_check:
                next_check = now + _OWNER_CHECK
                if not await channel.owner_running():
                    answer = await self._answer_left_behind(command_id)
                    if answer is not None:
                        via = "direct"
                        break
            if now >= deadline:
                raise OwnerNotAnsweringError(
                    f"the running app that owns {self._name} did not answer within "
                    f"{self.timeout:g}s (command {command_id}: {VERBS[action]} job "
                    f"{job_id!r}); it may be busy, stuck, or a jobify version that does not "
                    "take commands. The command stays queued: the app applies it when it "
                    "reads its commands, or when it next starts."
                )
            await asyncio.sleep(min(pause, max(deadline - now, 0.0)))
            pause = min(pause * 2, _MAX_POLL)
        if answer == _OK:
            done = "done by the running app" if via == "owner" else "done"
            return ActionResult(job_id, action, via, f"{VERBS[action]} job {job_id!r}: {done}")
        who = "the running app" if via == "owner" else "the store"
        raise ActionRefusedError(
            f"{who} refused to {VERBS[action]} job {job_id!r}: {safe_text(answer)}"
        )

    async def _answer_left_behind(self, command_id: int) -> str | None:
        """The owner went away without answering: take the store and answer ourselves."""
        try:
            async with self._lock():
                _, answers = await self._edit(None, None, None)
        except StorageLockedError:
            return None  # someone owns it again: keep waiting for them
        return answers.get(command_id)

    async def _edit(
        self, job_id: str | None, action: str | None, orphaned: bool | None
    ) -> tuple[ActionResult | None, dict[int, str]]:
        """Own the store for a moment: apply ``action`` (if any), answer waiting commands
        (embedded stores), close. Returns the result and the answers given by command id.
        The caller holds :meth:`_lock`."""
        owner = self._open_storage()
        await owner.startup()
        try:
            result = None
            if job_id is not None and action is not None:
                result = await apply_direct(
                    owner, job_id, action, self._clock(), self._name, orphaned
                )
            answers: dict[int, str] = {}
            if not owner.shared and isinstance(owner, CommandChannel):
                answers = await self._answer_commands(owner)
            return result, answers
        finally:
            await owner.shutdown()

    async def _answer_commands(self, owner: CommandChannel) -> dict[int, str]:
        assert isinstance(owner, Storage)
        registered = {task.name for task in await owner.load_tasks()}
        answers: dict[int, str] = {}
        for command in await owner.take_commands():
            record = await owner.get(command.job_id)
            orphaned = (
                None if not registered or record is None else record.task_name not in registered
            )
            try:
                await apply_direct(
                    owner, command.job_id, command.action, self._clock(), self._name, orphaned
                )
            except (InspectionError, ValueError) as exc:
                answer = " ".join(str(exc).split())
            else:
                answer = _OK
            await owner.finish_command(command.command_id, answer)
            answers[command.command_id] = answer
        return answers
