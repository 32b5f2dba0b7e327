"""Room service layer: load, decide, commit the room commands; ask the hang-up hook first.

Every command runs under the UnitOfWork lock (one writer per process), so a decision
sees the state the previous one left and the events of one room get a gapless `seq`.
The hang-up hook is the exception: it is a network round trip of up to
`hook_timeout_seconds`, so it is asked before the lock is taken; the domain then checks
membership again under the lock, and a hang-up that lost a race is refused as usual.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from schemas.commands import HangUp, Join, Kick, ReportState
from schemas.events import Event
from schemas.types import User
from services.room import domain
from services.runtime.endpoints import CommandRoute
from services.runtime.handling import StateCache, UnitOfWork, internal_command_id

Confirm = Callable[[str, User], Awaitable[bool]]


async def always_confirmed(call_id: str, user: User) -> bool:
    return True


def abandon_command_id(call_id: str) -> str:
    """One Abandon per call, whoever issues it and however often (restarts replay the log)."""
    return internal_command_id("abandon", call_id)


class RoomService:
    def __init__(self, uow: UnitOfWork, confirm_hang_up: Confirm = always_confirmed):
        self.uow = uow
        self.store = uow.store
        self.confirm_hang_up = confirm_hang_up
        self.states: StateCache[domain.RoomState] = StateCache(lambda call_id: domain.fold(self.store.load(call_id)))
        uow.on_abort.append(self.states.drop)

    def routes(self) -> dict[str, CommandRoute]:
        return {
            "join": CommandRoute(Join, self.join),
            "hang_up": CommandRoute(HangUp, self.hang_up),
            "kick": CommandRoute(Kick, self.handle),
            "report_state": CommandRoute(ReportState, self.handle),
        }

    # --- commands ---------------------------------------------------------------------
    async def join(self, command: Join) -> dict[str, Any]:
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            state = self._load(command.callID)
            events = await self._decide(state, command)
            after = domain.fold(events, state)
            reply = {
                "callID": command.callID,
                "roomSessionID": after.room_session_id,
                "members": [member.id for member in domain.members(after)],
            }
            committed = self._stage(command, state, events, reply, after)
        return await committed

    async def hang_up(self, command: HangUp) -> dict[str, Any]:
        if (answer := await self.uow.previous_answer(command)) is not None:
            return answer  # a retry does not ask the hook again
        confirmed = True
        if command.user.id in self._members_now(command.callID):
            confirmed = await self.confirm_hang_up(command.callID, command.user)
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer  # the same commandID won the lock while the hook was asked
            state = self._load(command.callID)
            events = await self._decide(state, command, hang_up_confirmed=confirmed)
            committed = self._stage(command, state, events, {"callID": command.callID, "confirmed": confirmed})
        return await committed

    async def handle(self, command: Kick | ReportState) -> dict[str, Any]:
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            state = self._load(command.callID)
            events = await self._decide(state, command)
            committed = self._stage(command, state, events, {"callID": command.callID})
        return await committed

    async def abandon(self, expectation: domain.ExpectMembers) -> list[Event]:
        """End a call whose expected callees never arrived (a no-op once one did)."""
        command = expectation.abandon(abandon_command_id(expectation.callID))
        async with self.uow.lock:
            if self.store.command_record(command.commandID) is not None:
                return []
            state = self._load(command.callID)
            events = domain.decide(state, command, self.uow.context())
            if not events:
                return events
            committed = self._stage(command, state, events, {"callID": command.callID})
        await committed
        return events

    def expected_callee_arrived(self, expectation: domain.ExpectMembers) -> bool:
        """True when any expected callee has been in the room (Abandon would be a no-op)."""
        state = self.states.peek(expectation.callID)
        return state is not None and any(user.id in state.arrived for user in expectation.expected[1:])

    # --- helpers ----------------------------------------------------------------------
    def _load(self, call_id: str) -> domain.RoomState | None:
        return self.states.get(call_id)

    def _stage(self, command, state: domain.RoomState | None, events: list[Event], reply: dict[str, Any],
               after: domain.RoomState | None = None):
        committed = self.uow.stage(command, [(command.callID, events)], reply)
        self.states.put(command.callID, after if after is not None else domain.fold(events, state))
        return committed

    def _members_now(self, call_id: str) -> frozenset[str]:
        return frozenset(member.id for member in domain.members(self._load(call_id)))

    async def _decide(self, state: domain.RoomState | None, command, **inputs) -> list[Event]:
        return await self.uow.decide(
            command, state,
            lambda: domain.decide(state, command, self.uow.context(), **inputs),
            lambda written: self.states.put(command.callID, domain.fold(written, state)),
        )

