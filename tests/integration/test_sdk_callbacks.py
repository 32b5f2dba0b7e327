"""Every callback of the reference page, with handlers shaped as on the page, from real flows.

The handlers below are the reference's examples written in Python: same names, same
parameters in the same order (`onIncomingCallReceived: (callID, caller, callType, callees,
customData) { ... }` becomes `def onIncomingCallReceived(callID, caller, callType, callees,
customData): ...`). They are set on the two holders exactly where the reference puts
them: `invitationEvents: ZegoUIKitPrebuiltCallInvitationEvents(...)` and `events:
ZegoUIKitPrebuiltCallEvents(..., user: ZegoCallUserEvents(...), room: ..., audioVideo: ...)`.
"""

import inspect
from collections import defaultdict

from ringlog.callbacks import CALLBACKS, registered
from ringlog.client import (
    ZegoCallAudioVideoEvents, ZegoCallRoomEvents, ZegoCallUserEvents, ZegoUIKitPrebuiltCallEvents,
    ZegoUIKitPrebuiltCallInvitationEvents,
)
from schemas.enums import ZegoCallEndReason, ZegoCallInvitationType, ZegoRoomStateChangedReason
from schemas.types import User
from tests.integration.test_sdk_flows import USERS, produce_every_callback, sdk_client, wait_for


def invitation_events_from_the_reference(note):
    """invitationEvents: ZegoUIKitPrebuiltCallInvitationEvents(...), handler by handler."""

    def onError(error):
        note("invitation.onError", error)

    def onInvitationUserStateChanged(userInfos):
        note("onInvitationUserStateChanged", userInfos)

    def onIncomingCallDeclineButtonPressed():
        note("onIncomingCallDeclineButtonPressed")

    def onIncomingCallAcceptButtonPressed():
        note("onIncomingCallAcceptButtonPressed")

    def onIncomingCallReceived(callID, caller, callType, callees, customData):
        note("onIncomingCallReceived", callID, caller, callType, callees, customData)

    def onIncomingCallCanceled(callID, caller, customData):
        note("onIncomingCallCanceled", callID, caller, customData)

    def onIncomingCallTimeout(callID, caller):
        note("onIncomingCallTimeout", callID, caller)

    async def onIncomingMissedCallClicked(callID, caller, callType, callees, customData, defaultAction):
        note("onIncomingMissedCallClicked", callID, caller, callType, callees, customData)
        await defaultAction()  # dial back

    def onIncomingMissedCallDialBackFailed():
        note("onIncomingMissedCallDialBackFailed")

    def onOutgoingCallCancelButtonPressed():
        note("onOutgoingCallCancelButtonPressed")

    def onOutgoingCallAccepted(callID, callee):
        note("onOutgoingCallAccepted", callID, callee)

    def onOutgoingCallRejectedCauseBusy(callID, callee, customData):
        note("onOutgoingCallRejectedCauseBusy", callID, callee, customData)

    def onOutgoingCallDeclined(callID, callee, customData):
        note("onOutgoingCallDeclined", callID, callee, customData)

    def onOutgoingCallTimeout(callID, callees, isVideoCall):
        note("onOutgoingCallTimeout", callID, callees, isVideoCall)

    def onOutgoingCallSent(callID, caller, callType, callees, customData):
        note("onOutgoingCallSent", callID, caller, callType, callees, customData)

    invitation_events = ZegoUIKitPrebuiltCallInvitationEvents(
        onError=onError,
        onInvitationUserStateChanged=onInvitationUserStateChanged,
        onIncomingCallDeclineButtonPressed=onIncomingCallDeclineButtonPressed,
        onIncomingCallAcceptButtonPressed=onIncomingCallAcceptButtonPressed,
        onIncomingCallReceived=onIncomingCallReceived,
        onIncomingCallCanceled=onIncomingCallCanceled,
        onIncomingCallTimeout=onIncomingCallTimeout,
        onIncomingMissedCallClicked=onIncomingMissedCallClicked,
        onIncomingMissedCallDialBackFailed=onIncomingMissedCallDialBackFailed,
        onOutgoingCallCancelButtonPressed=onOutgoingCallCancelButtonPressed,
        onOutgoingCallAccepted=onOutgoingCallAccepted,
        onOutgoingCallRejectedCauseBusy=onOutgoingCallRejectedCauseBusy,
        onOutgoingCallDeclined=onOutgoingCallDeclined,
        onOutgoingCallTimeout=onOutgoingCallTimeout,
        onOutgoingCallSent=onOutgoingCallSent,
    )

    return invitation_events


def events_from_the_reference(note):
    """events: ZegoUIKitPrebuiltCallEvents(..., user: ..., room: ..., audioVideo: ...)."""

    def onError(ZegoUIKitError):  # the reference's own parameter name here
        note("call.onError", ZegoUIKitError)

    def onHangUpConfirmation(context):
        note("onHangUpConfirmation", context)

    def onCallEnd(event, defaultAction):
        note("onCallEnd", event)
        defaultAction.call()  # "you can call this defaultAction to return to the previous page"

    def onEnter(user):
        note("onEnter", user)

    def onLeave(user):
        note("onLeave", user)

    def onStateChanged(state):
        note("onStateChanged", state)

    def onCameraStateChanged(isOpened):
        note("onCameraStateChanged", isOpened)

    def onFrontFacingCameraStateChanged(isFronted):
        note("onFrontFacingCameraStateChanged", isFronted)

    def onMicrophoneStateChanged(isOpened):
        note("onMicrophoneStateChanged", isOpened)

    def onAudioOutputChanged(audioRoute):
        note("onAudioOutputChanged", audioRoute)

    def onLocalCameraExceptionOccurred(exception):
        note("onLocalCameraExceptionOccurred", exception)

    def onLocalMicrophoneExceptionOccurred(exception):
        note("onLocalMicrophoneExceptionOccurred", exception)

    def onRemoteCameraExceptionOccurred(user, exception):
        note("onRemoteCameraExceptionOccurred", user, exception)

    def onRemoteMicrophoneExceptionOccurred(user, exception):
        note("onRemoteMicrophoneExceptionOccurred", user, exception)

    return ZegoUIKitPrebuiltCallEvents(
        onError=onError,
        onHangUpConfirmation=onHangUpConfirmation,
        onCallEnd=onCallEnd,
        user=ZegoCallUserEvents(onEnter=onEnter, onLeave=onLeave),
        room=ZegoCallRoomEvents(onStateChanged=onStateChanged),
        audioVideo=ZegoCallAudioVideoEvents(
            onCameraStateChanged=onCameraStateChanged,
            onFrontFacingCameraStateChanged=onFrontFacingCameraStateChanged,
            onMicrophoneStateChanged=onMicrophoneStateChanged,
            onAudioOutputChanged=onAudioOutputChanged,
            onLocalCameraExceptionOccurred=onLocalCameraExceptionOccurred,
            onLocalMicrophoneExceptionOccurred=onLocalMicrophoneExceptionOccurred,
            onRemoteCameraExceptionOccurred=onRemoteCameraExceptionOccurred,
            onRemoteMicrophoneExceptionOccurred=onRemoteMicrophoneExceptionOccurred,
        ),
    )


def reference_handlers(seen):
    """Both holders; each handler records its arguments under its name."""

    def note(name, *args):
        seen[name].append(args)

    return events_from_the_reference(note), invitation_events_from_the_reference(note)


def user(name):
    return User(id=name, name=name.title())


def test_the_handlers_here_have_the_references_names_and_parameters():
    events, invitation_events = reference_handlers(defaultdict(list))
    found = registered(events, invitation_events)
    assert len(found) == len(CALLBACKS)
    for callback, handler in found:
        assert handler.__name__ == callback.name
        names = tuple(inspect.signature(handler).parameters)
        assert tuple("error" if n == "ZegoUIKitError" else n for n in names) == callback.params, callback.name


async def test_every_callback_reaches_a_handler_written_from_the_reference(services, client, log):
    await services("invitation", "room", "device")
    seen = defaultdict(list)
    events, invitation_events = reference_handlers(seen)
    subscriber = sdk_client(client).callbacks(events=events, invitation_events=invitation_events)
    await subscriber.start()
    try:
        await produce_every_callback(client, log)
        # hank's defaultAction dialed gina back: that invitation is on the log too
        await log.wait_for(1, "ringlog.evt.invitation.onIncomingCallReceived.*.gina")
        total = len(await log.events())
        await wait_for(lambda: subscriber.handled >= total, what=f"{total} events handled")
    finally:
        await subscriber.stop()

    expected = {f"{cb.category}.onError" if cb.name == "onError" else cb.name for cb in CALLBACKS}
    assert sorted(expected - set(seen)) == []
    assert subscriber.handled == len(await log.events()) and subscriber.delivery.failures == 0

    # parameters by the reference's order, typed
    assert ("call-a", user("alice"), ZegoCallInvitationType.videoCall, [user("bob")], "hi") in seen["onIncomingCallReceived"]
    assert ("call-a", user("bob")) in seen["onOutgoingCallAccepted"]
    assert ("call-d", user("erin"), "not now") in seen["onOutgoingCallDeclined"]
    assert ("call-b", user("frank"), "") in seen["onOutgoingCallRejectedCauseBusy"]
    assert ("call-c", user("erin"), "sorry") in seen["onIncomingCallCanceled"]
    assert ("call-t1", user("gina")) in seen["onIncomingCallTimeout"]
    assert ("call-t1", [user("hank")], True) in seen["onOutgoingCallTimeout"]
    assert ("call-t1", user("gina"), ZegoCallInvitationType.videoCall, [user("hank")], "t1") in seen["onIncomingMissedCallClicked"]
    assert seen["onIncomingCallAcceptButtonPressed"] == [()] and seen["onIncomingMissedCallDialBackFailed"] == [()]
    [(infos,)] = [args for args in seen["onInvitationUserStateChanged"] if args[0][0].userID == "bob"][:1]
    assert infos[0].state.value == "received"
    [(kicked,)] = [args for args in seen["onCallEnd"] if args[0].reason is ZegoCallEndReason.kickOut]
    assert (kicked.recipient, kicked.kickerUserID) == ("carol", "alice")
    reasons = {args[0].reason for args in seen["onCallEnd"]}
    assert reasons == {ZegoCallEndReason.kickOut, ZegoCallEndReason.localHangUp, ZegoCallEndReason.remoteHangUp}
    logined = [s for (s,) in seen["onStateChanged"] if s.reason is ZegoRoomStateChangedReason.Logined]
    assert len(logined) == 3 and all(s.errorCode == 0 and s.extendedData["room_session_id"] for s in logined)
    assert any(s.errorCode == 1002 for (s,) in seen["onStateChanged"])
    assert [context.confirmed for (context,) in seen["onHangUpConfirmation"]] == [False, True]
    assert (user("bob"), "deviceOccupied") in [(u, e.value) for u, e in seen["onRemoteCameraExceptionOccurred"]]
    assert seen["onAudioOutputChanged"] == [("speaker",)] and seen["onCameraStateChanged"] == [(True,)]
    assert [e.code for (e,) in seen["invitation.onError"]] == [301003004]
    assert [(e.code, e.method) for (e,) in seen["call.onError"]] == [(300001004, "room.hang_up")]
    # hank's handler dialed back: the dial-back invitation rang gina
    assert any(args[1] == user("hank") and args[4] == "t1" for args in seen["onIncomingCallReceived"])
    # onCallEnd's defaultAction found everyone already out of the room: no extra command, no extra error
    assert len(seen["call.onError"]) == 1


async def test_filtered_to_one_user_and_one_call(services, client, log):
    await services("invitation", "room", "device")
    sdk = sdk_client(client)
    bobs, calls = [], []
    for_bob = await sdk.subscribe("onIncomingCallReceived", lambda event: bobs.append(event), user="bob")
    for_call = sdk.callbacks(call="call-d")
    for_call.invitation_events.onOutgoingCallDeclined = lambda callID, callee, customData: calls.append(callee.id)
    for_call.events.user.onEnter = lambda user: calls.append(user)
    await for_call.start()
    try:
        await produce_every_callback(client, log)
        await wait_for(lambda: len(bobs) >= 1 and calls, what="filtered events")
    finally:
        await for_bob.stop()
        await for_call.stop()
    assert [(event.type, event.recipient, event.callID) for event in bobs] == [("onIncomingCallReceived", "bob", "call-a")]
    assert calls == ["erin"]
    assert USERS["bob"]["name"] == bobs[0].callees[0].name
