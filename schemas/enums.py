"""The kit's enumerations, value for value (ARCHITECTURE.md section 3)."""

from enum import Enum


class ZegoCallInvitationType(str, Enum):
    voiceCall = "voiceCall"
    videoCall = "videoCall"


class ZegoSignalingPluginInvitationUserState(str, Enum):
    unknown = "unknown"
    inviting = "inviting"
    accepted = "accepted"
    rejected = "rejected"
    cancelled = "cancelled"
    offline = "offline"
    received = "received"
    timeout = "timeout"
    quited = "quited"
    ended = "ended"
    notYetReceived = "notYetReceived"
    beCanceled = "beCanceled"


class ZegoCallEndReason(str, Enum):
    localHangUp = "localHangUp"
    remoteHangUp = "remoteHangUp"
    kickOut = "kickOut"
    abandoned = "abandoned"


class ZegoRoomStateChangedReason(str, Enum):
    Logining = "Logining"
    Logined = "Logined"
    LoginFailed = "LoginFailed"
    Reconnecting = "Reconnecting"
    Reconnected = "Reconnected"
    ReconnectFailed = "ReconnectFailed"
    KickOut = "KickOut"
    Logout = "Logout"
    LogoutFailed = "LogoutFailed"


class ZegoUIKitAudioRoute(str, Enum):
    speaker = "speaker"
    headphone = "headphone"
    bluetooth = "bluetooth"
    receiver = "receiver"
    externalUSB = "externalUSB"
    airPlay = "airPlay"


class ZegoUIKitDeviceExceptionType(str, Enum):
    unknown = "unknown"
    generic = "generic"
    invalidId = "invalidId"
    permissionNotGranted = "permissionNotGranted"
    zeroCaptureFps = "zeroCaptureFps"
    deviceOccupied = "deviceOccupied"
    deviceUnplugged = "deviceUnplugged"
    rebootRequired = "rebootRequired"
    mediaServicesWereLost = "mediaServicesWereLost"
    siriIsRecording = "siriIsRecording"
    soundLevelTooLow = "soundLevelTooLow"
    magneticCase = "magneticCase"
    audioSessionDeactivate = "audioSessionDeactivate"
    audioSessionCategoryChange = "audioSessionCategoryChange"
    interruption = "interruption"
    inBackground = "inBackground"
    multiForegroundApp = "multiForegroundApp"
    bySystemPressure = "bySystemPressure"


class Source(str, Enum):
    invitation = "invitation"
    room = "room"
    device_monitor = "device-monitor"
