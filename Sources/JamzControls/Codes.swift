import CLinuxInput

/// The evdev key and switch names a board file may use, with their codes from the kernel's
/// input-event-codes.h (through CLinuxInput, never retyped).
public enum InputCodes {
    public static let keys: [String: Int] = {
        var t: [String: Int32] = [
            "KEY_PLAYPAUSE": KEY_PLAYPAUSE, "KEY_PLAY": KEY_PLAY, "KEY_PAUSE": KEY_PAUSE,
            "KEY_NEXTSONG": KEY_NEXTSONG, "KEY_PREVIOUSSONG": KEY_PREVIOUSSONG,
            "KEY_STOPCD": KEY_STOPCD, "KEY_NEXT": KEY_NEXT, "KEY_PREVIOUS": KEY_PREVIOUS,
            "KEY_VOLUMEUP": KEY_VOLUMEUP, "KEY_VOLUMEDOWN": KEY_VOLUMEDOWN, "KEY_MUTE": KEY_MUTE,
            "KEY_PROG1": KEY_PROG1, "KEY_PROG2": KEY_PROG2, "KEY_PROG3": KEY_PROG3, "KEY_PROG4": KEY_PROG4,
            "KEY_MEDIA": KEY_MEDIA, "KEY_ENTER": KEY_ENTER, "KEY_SELECT": KEY_SELECT,
            "KEY_UP": KEY_UP, "KEY_DOWN": KEY_DOWN, "KEY_LEFT": KEY_LEFT, "KEY_RIGHT": KEY_RIGHT,
            "KEY_POWER": KEY_POWER,
        ]
        let btn: [Int32] = [BTN_0, BTN_1, BTN_2, BTN_3, BTN_4, BTN_5, BTN_6, BTN_7, BTN_8, BTN_9]
        for (i, c) in btn.enumerated() { t["BTN_\(i)"] = c }
        return t.mapValues(Int.init)
    }()

    public static let switches: [String: Int] = [
        "SW_LID": SW_LID, "SW_DOCK": SW_DOCK, "SW_TABLET_MODE": SW_TABLET_MODE,
        "SW_HEADPHONE_INSERT": SW_HEADPHONE_INSERT, "SW_LINEOUT_INSERT": SW_LINEOUT_INSERT,
        "SW_MUTE_DEVICE": SW_MUTE_DEVICE,
    ].mapValues(Int.init)

    public static let relAxes: [String: Int] = [
        "REL_X": REL_X, "REL_Y": REL_Y, "REL_DIAL": REL_DIAL, "REL_WHEEL": REL_WHEEL, "REL_MISC": REL_MISC,
    ].mapValues(Int.init)

    public static func keyName(_ code: Int) -> String? { keys.first { $0.value == code }?.key }
    public static func switchName(_ code: Int) -> String? { switches.first { $0.value == code }?.key }
    public static func list(_ t: [String: Int]) -> String { t.keys.sorted().joined(separator: ", ") }
}
