/// The words a push-button join speaks on both cars so the driver can hear that the two head
/// units paired with each other (and not with a third car pressing at the same moment): two
/// words, each chosen by a byte both ends derived from their shared key. Short, common, and unlike
/// each other when spoken through road noise; the spoken prompts are rendered from this list.
public enum CheckWords {
    public static let all: [String] = [
        "apple", "banana", "cherry", "dolphin", "eagle", "falcon", "guitar", "harbor",
        "igloo", "jasmine", "kettle", "lemon", "mango", "nectar", "olive", "pepper",
        "quartz", "river", "salmon", "tiger", "umbrella", "violet", "walnut", "yellow",
        "zebra", "anchor", "bamboo", "copper", "desert", "ember", "forest", "glacier",
    ]

    /// The word for a key-derived byte (32 words: its low five bits).
    public static func word(for byte: UInt8) -> String { all[Int(byte) % all.count] }
}
