"""The call figures each service owns, registered on that service's registry.

Only the process that decides an event counts it, so no figure is counted twice:

- invitation: ringing invitations, call outcomes answered/declined/busy/canceled/missed,
  invite-to-accept setup time;
- room: active calls, room members, talk time, the call outcome abandoned;
- device: device exceptions by device and type.

Labels are closed sets (outcome, device, exception type): never a user or call id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# People answer within seconds; an invitation rings 600 s at most.
SETUP_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0)
# A room session: from a few seconds (a mistaken call) to hours.
TALK_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)

INVITATION_OUTCOMES = ("answered", "declined", "busy", "canceled", "missed")
ROOM_OUTCOMES = ("abandoned",)
OUTCOMES = INVITATION_OUTCOMES + ROOM_OUTCOMES

_OUTCOMES_HELP = (
    "Calls by outcome. answered/declined/busy/canceled/missed: how each invitation ended "
    "(invitation service, one per call); abandoned: an answered call whose callees never "
    "joined the room (room service)."
)


def _outcomes(registry: CollectorRegistry, outcomes: tuple[str, ...]) -> dict[str, Counter]:
    family = Counter("ringlog_call_outcomes_total", _OUTCOMES_HELP, ["outcome"], registry=registry)
    return {outcome: family.labels(outcome) for outcome in outcomes}


class InvitationMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.ringing = Gauge(
            "ringlog_invitations_ringing", "Invitations with at least one callee still ringing.", registry=registry,
        )
        self.outcomes = _outcomes(registry, INVITATION_OUTCOMES)
        self.setup_time = Histogram(
            "ringlog_call_setup_seconds",
            "Time from an invitation being sent to its first acceptance (onOutgoingCallAccepted).",
            buckets=SETUP_BUCKETS, registry=registry,
        )


class RoomMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.active_calls = Gauge(
            "ringlog_calls_active", "Calls in progress: rooms with at least one member.", registry=registry,
        )
        self.members = Gauge(
            "ringlog_room_members", "Users in a room now, over all rooms.", registry=registry,
        )
        self.talk_time = Histogram(
            "ringlog_call_talk_seconds",
            "Length of a room session: from the first member logged in to the room emptying.",
            buckets=TALK_BUCKETS, registry=registry,
        )
        self.outcomes = _outcomes(registry, ROOM_OUTCOMES)


class DeviceMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.exceptions = Counter(
            "ringlog_device_exceptions_total",
            "Local device exceptions reported, by device (camera, microphone) and exception type.",
            ["device", "type"], registry=registry,
        )
