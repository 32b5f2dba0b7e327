"""Invitation service layer: load, decide, commit; busy view; timeouts; dial-back."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import msgspec

from schemas.commands import Accept, Cancel, Command, Decline, MissedCallClick, Received, Send
from schemas.enums import Source
from schemas.events import Event, IncomingMissedCallDialBackFailed
from services.invitation import domain
from services.runtime.domain import CommandRejected, Stamper
from services.runtime.deadlines import Deadlines
from services.runtime.endpoints import CommandRoute
from services.runtime.errors import ServiceError
from services.runtime.handling import StateCache, UnitOfWork, internal_command_id
from services.runtime.views import RoomMembership

log = logging.getLogger(__name__)
MAX_TIMEOUT_SECONDS = 600  # the largest timeoutSeconds a send may ask for
RETRY_AFTER = timedelta(seconds=0.5)  # a timeout whose decision failed (the store refused) is tried again


class Invitations:
    """Pending invitations in memory (they decide busy and timeouts); the rest load on demand."""

    def __init__(self) -> None:
        self.pending: dict[str, domain.InvitationState] = {}
        self._engaged: dict[str, set[str]] = {}

    def put(self, call_id: str, state: domain.InvitationState) -> None:
        self._forget_engagements(call_id)
        if domain.deadline(state) is None:
            self.pending.pop(call_id, None)
            return
        self.pending[call_id] = state
        for user_id in domain.engaged_users(state):
            self._engaged.setdefault(user_id, set()).add(call_id)

    def _forget_engagements(self, call_id: str) -> None:
        previous = self.pending.get(call_id)
        if previous is None:
            return
        for user_id in domain.engaged_users(previous):
            calls = self._engaged.get(user_id, set())
            calls.discard(call_id)
            if not calls:
                self._engaged.pop(user_id, None)

    def is_engaged(self, user_id: str) -> bool:
        return user_id in self._engaged


class InvitationService:
    def __init__(self, uow: UnitOfWork, rooms: RoomMembership | None = None):
        self.uow = uow
        self.store = uow.store
        self.rooms = rooms or RoomMembership()
        self.invitations = Invitations()
        self.states: StateCache[domain.InvitationState] = StateCache(lambda call_id: domain.fold(self.store.load(call_id)))
        uow.on_abort.append(self._forget)
        self.timeouts: Deadlines[str] = Deadlines(uow.clock)

    # --- start-up ---------------------------------------------------------------------
    def recover(self) -> int:
        """Rebuild pending invitations (and their timers) from the store.

        An invitation still rings at most MAX_TIMEOUT seconds after it was sent, so only
        those sent in that window before the service's last event can be pending: the
        work follows recent activity, not the size of the history.
        """
        window = MAX_TIMEOUT_SECONDS + 60
        for call_id in self.store.recent_streams("onOutgoingCallSent", window):
            state = domain.fold(self.store.load(call_id))
            if state is not None and domain.deadline(state) is not None:
                self._track(call_id, state)
        return len(self.invitations.pending)

    def routes(self) -> dict[str, CommandRoute]:
        return {
            "send": CommandRoute(Send, self.send),
            "accept": CommandRoute(Accept, self.answer),
            "decline": CommandRoute(Decline, self.answer),
            "cancel": CommandRoute(Cancel, self.answer),
            "received": CommandRoute(Received, self.answer),
            "missed_call_click": CommandRoute(MissedCallClick, self.missed_call_click),
        }

    def is_busy(self, user_id: str) -> bool:
        return self.invitations.is_engaged(user_id) or self.rooms.in_a_room(user_id)

    # --- commands ---------------------------------------------------------------------
    async def send(self, command: Send) -> dict[str, Any]:
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            command, events = self._decide_send(command)
            committed = self._stage(command, [(command.callID, None, events)], {"callID": command.callID})
        return await committed

    async def answer(self, command: Accept | Decline | Cancel | Received) -> dict[str, Any]:
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            state = self._load(command.callID)
            events = await self._decide(state, command)
            committed = self._stage(command, [(command.callID, state, events)], {"callID": command.callID})
        return await committed

    async def missed_call_click(self, command: MissedCallClick) -> dict[str, Any]:
        async with self.uow.lock:
            if (answer := await self.uow.previous_answer(command)) is not None:
                return answer
            state = self._load(command.callID)
            clicked = await self._decide(state, command)
            writes: list[tuple[str, Any, list[Event]]] = [(command.callID, state, list(clicked))]
            reply: dict[str, Any] = {"callID": command.callID, "dialBackCallID": None}
            if command.dialBack:
                dial_back = Send(
                    commandID=internal_command_id("dialBack", command.commandID),
                    caller=command.user,
                    callees=[state.caller],
                    callType=state.callType,
                    customData=state.customData,
                )
                try:
                    dial_back, events = self._decide_send(dial_back)
                    writes.append((dial_back.callID, None, events))
                    reply["dialBackCallID"] = dial_back.callID
                except ServiceError as failure:
                    reason = failure.message
                    stamp = Stamper(self.uow.context(), source=Source.invitation, call_id=command.callID,
                                    causation_id=command.commandID, version=clicked[-1].seq)
                    writes[0][2].append(stamp(IncomingMissedCallDialBackFailed, command.user.id, reason=reason))
                    reply["dialBackError"] = reason
            committed = self._stage(command, writes, reply)
        return await committed

    async def time_out(self, call_id: str) -> list[Event]:
        async with self.uow.lock:
            state = self._load(call_id)
            timeout = domain.Timeout(commandID=internal_command_id("timeout", call_id), callID=call_id)
            if state is None or self.store.command_record(timeout.commandID) is not None:
                return []
            events = domain.decide(state, timeout, self.uow.context())
            if not events:
                return events
            committed = self._stage(timeout, [(call_id, state, events)], {"callID": call_id})
        await committed
        return events

    # --- helpers ----------------------------------------------------------------------
    def _decide_send(self, command: Send) -> tuple[Send, list[Event]]:
        call_id = command.callID or self.uow.new_id()
        command = msgspec.structs.replace(command, callID=call_id)
        if self.is_busy(command.caller.id):
            raise ServiceError(409, "caller_busy", f"caller {command.caller.id} is already in a call or invitation - at `$.caller.id`")
        busy = frozenset(callee.id for callee in command.callees if self.is_busy(callee.id))
        try:
            return command, domain.decide(self._load(call_id), command, self.uow.context(), busy=busy)
        except CommandRejected as refusal:  # a new call: nothing to record
            raise ServiceError(refusal.status, refusal.code, refusal.message) from None

    async def _decide(self, state, command, **inputs) -> list[Event]:
        return await self.uow.decide(
            command, state,
            lambda: domain.decide(state, command, self.uow.context(), **inputs),
            lambda written: self._track(command.callID, domain.fold(written, state)),
        )

    def _load(self, call_id: str) -> domain.InvitationState | None:
        return self.states.get(call_id)

    def _stage(self, command: Command, writes, reply: dict[str, Any]):
        """Stage (stream, state before, events) triples and follow the new states at once."""
        committed = self.uow.stage(command, [(call_id, events) for call_id, _, events in writes], reply)
        for call_id, before, events in writes:
            if events:
                self._track(call_id, domain.fold(events, before))
        return committed

    def _forget(self, call_ids: set[str]) -> None:
        """A commit group failed: its decisions never happened; reload from the store."""
        self.states.drop(call_ids)
        for call_id in call_ids:
            state = self.states.get(call_id)
            if state is not None:
                self.invitations.put(call_id, state)
            else:
                self.invitations.pending.pop(call_id, None)

    def _track(self, call_id: str, state: domain.InvitationState) -> None:
        self.states.put(call_id, state)
        was_pending = call_id in self.invitations.pending
        self.invitations.put(call_id, state)
        due = domain.deadline(state)
        if due is not None and not was_pending:
            self.timeouts.add(due, call_id)

    # --- timer ------------------------------------------------------------------------
    async def run_timeouts(self) -> None:
        """Fire each invitation's timeout at its deadline (within a tick of `Deadlines`)."""
        while True:
            now = self.uow.clock()
            while (call_id := self.timeouts.pop_due(now)) is not None:
                if call_id in self.invitations.pending:
                    try:
                        await self.time_out(call_id)
                    except Exception:
                        log.exception("timeout of %s failed; retrying", call_id)
                        self.timeouts.add(now + RETRY_AFTER, call_id)
                        break
            await self.timeouts.wait()
