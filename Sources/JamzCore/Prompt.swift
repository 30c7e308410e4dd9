/// What the head unit says to the driver (issue 17): each prompt is a sequence of pre-rendered
/// pieces (scripts/make-prompts.sh renders one file per piece name). Pure: the daemon's
/// `Prompts` service loads the pieces and hands them to the renderer.
public enum Prompt: Sendable, Hashable {
    case youAreDJ
    case joinedConvoy
    case leftConvoy
    /// Car `n` (1...20) is no longer heard.
    case carLeft(Int)
    case noGPS
    case gpsBack
    case offline
    case online
    /// A push-button join is waiting for the other car.
    case joinWaiting
    /// Paired; both cars say the same check words (`CheckWords`, separated by spaces).
    case paired(checkWord: String)
    /// A push-button exchange's check words, before the convoy's key goes: `confirm` on the car
    /// that hosts (its driver presses join again if the other car says the same words).
    case compare(checkWord: String, confirm: Bool)
    /// The other car joined after the words were confirmed (they were spoken already).
    case pairedConfirmed
    case joinFailed
    /// More than one car pressed join at the same moment.
    case joinOverlap

    /// The highest number that has a piece ("one" ... "twenty").
    public static let maxNumber = 20

    /// The piece names, in the order they are spoken (nil: a piece this prompt cannot name,
    /// e.g. a car number above twenty or a word not in `CheckWords.all`).
    public var pieces: [String]? {
        switch self {
        case .youAreDJ: return ["you-are-the-dj"]
        case .joinedConvoy: return ["joined-the-convoy"]
        case .leftConvoy: return ["left-the-convoy"]
        case .carLeft(let n):
            guard (1...Prompt.maxNumber).contains(n) else { return nil }
            return ["car", "number-\(n)", "left"]
        case .noGPS: return ["no-gps"]
        case .gpsBack: return ["gps-is-back"]
        case .offline: return ["offline"]
        case .online: return ["back-online"]
        case .joinWaiting: return ["press-join"]
        case .paired(let words):
            let w = words.split(separator: " ").map(String.init)
            guard !w.isEmpty, w.allSatisfy(CheckWords.all.contains) else { return nil }
            return ["paired", "check-word"] + w.map { "word-\($0)" }
        case .compare(let words, let confirm):
            let w = words.split(separator: " ").map(String.init)
            guard !w.isEmpty, w.allSatisfy(CheckWords.all.contains) else { return nil }
            return ["check-word"] + w.map { "word-\($0)" } + [confirm ? "press-join-if-same" : "other-car-confirms"]
        case .pairedConfirmed: return ["paired"]
        case .joinFailed: return ["pairing-failed"]
        case .joinOverlap: return ["join-overlap"]
        }
    }

    /// Pieces a prompt may be said without: the instructions added after the first prompts
    /// directories were made (a board's own `dir` may predate them). The check words before
    /// them are what the driver compares, so they are said even then.
    public static let optionalPieces: Set<String> = ["press-join-if-same", "other-car-confirms"]

    /// Every piece any prompt can ask for (what the prompts directory must hold).
    public static var allPieces: [String] {
        var names = ["you-are-the-dj", "joined-the-convoy", "left-the-convoy", "car", "left", "no-gps", "gps-is-back",
                     "offline", "back-online", "press-join", "paired", "check-word", "pairing-failed", "join-overlap",
                     "press-join-if-same", "other-car-confirms"]
        names += (1...maxNumber).map { "number-\($0)" }
        names += CheckWords.all.map { "word-\($0)" }
        return names
    }
}
