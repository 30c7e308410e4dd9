/// Every control command with its typed arguments: the one list of them. On the wire it is a
/// `ControlRequest` (`{"cmd": NAME, "args": [...]}`); `jamz` builds these, jamzd executes them,
/// and the buttons hand them to the same executor.
public enum ControlCommand: Sendable, Equatable {
    case status
    case queue
    /// nil: resume; N: entry N (from 1) of the queue (or of the convoy playlist).
    case play(Int?)
    case pause
    case toggle
    case next
    case prev
    /// Seconds into the current track.
    case seek(Double)
    /// 0-100 (the player clamps and refuses).
    case volume(Int)
    /// A track id (or prefix), or words matching tracks.
    case add(String)
    /// Takes entry N (from 1) off the queue or the convoy playlist (in a convoy: the DJ).
    case remove(Int)
    /// Moves entry N (from 1) to place M (in a convoy: the DJ).
    case move(Int, to: Int)
    case cache
    /// An absolute folder path.
    case `import`(String)
    case group(Group)
    case peers
    case takeControl
    /// This car's GPS fix (`jamz where`).
    case `where`
    /// The other cars' positions (`jamz convoy`).
    case convoy

    public enum Group: Sendable, Equatable {
        case create(name: String)
        case join(code: String)
        /// Opens a short join code (6 digits, 5 minutes) for another car to join with.
        case invite
        /// The join button, as if pressed: pairs with a car whose button is pressed within 30 s.
        case button
        case show
        case leave
    }

    /// The wire names, in the order the daemon lists them.
    public enum Name: String, CaseIterable, Sendable {
        case status, queue, add, play, pause, toggle, next, prev, seek, volume, `import`, cache, group, peers
        case takeControl = "take-control"
        case convoy, `where`, remove, move
    }

    /// Why a request is not a command: an unknown name, or arguments that do not fit it.
    /// `description` is the reply's message.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unknownCommand(String)
        case usage(String)

        public var description: String {
            switch self {
            case .unknownCommand(let cmd): ControlCommand.unknown(cmd)
            case .usage(let text): "usage: \(text)"
            }
        }
    }

    /// The reply to a name jamzd does not serve.
    public static func unknown(_ cmd: String) -> String {
        "unknown command \"\(cmd)\"; try: \(Name.allCases.map(\.rawValue).joined(separator: ", "))"
    }

    public var name: Name {
        switch self {
        case .status: .status
        case .queue: .queue
        case .play: .play
        case .pause: .pause
        case .toggle: .toggle
        case .next: .next
        case .prev: .prev
        case .seek: .seek
        case .volume: .volume
        case .add: .add
        case .remove: .remove
        case .move: .move
        case .cache: .cache
        case .import: .import
        case .group: .group
        case .peers: .peers
        case .takeControl: .takeControl
        case .where: .where
        case .convoy: .convoy
        }
    }

    public var args: [String] {
        switch self {
        case .play(let n): n.map { [String($0)] } ?? []
        case .seek(let s): [String(s)]
        case .volume(let v): [String(v)]
        case .add(let q): [q]
        case .remove(let n): [String(n)]
        case .move(let n, let m): [String(n), String(m)]
        case .import(let dir): [dir]
        case .group(.create(let name)): name.isEmpty ? ["create"] : ["create", name]
        case .group(.join(let code)): ["join", code]
        case .group(.show): ["show"]
        case .group(.leave): ["leave"]
        case .group(.invite): ["invite"]
        case .group(.button): ["button"]
        case .status, .queue, .pause, .toggle, .next, .prev, .cache, .peers, .takeControl, .where, .convoy: []
        }
    }

    public var request: ControlRequest { ControlRequest(cmd: name.rawValue, args: args) }

    /// Reads a request; the arguments are read as the daemon always has (`add` joins its words,
    /// `group` without a subcommand is `show`).
    public init(_ req: ControlRequest) throws(ParseError) {
        guard let name = Name(rawValue: req.cmd) else { throw .unknownCommand(req.cmd) }
        let first = req.args.first
        func required(_ usage: String) throws(ParseError) -> String {
            guard let a = first, !a.isEmpty else { throw .usage(usage) }
            return a
        }
        switch name {
        case .status: self = .status
        case .queue: self = .queue
        case .play:
            guard let a = first else { self = .play(nil); return }
            guard let n = Int(a) else { throw .usage("play [N] (N = place in the queue, from 1)") }
            self = .play(n)
        case .pause: self = .pause
        case .toggle: self = .toggle
        case .next: self = .next
        case .prev: self = .prev
        case .seek:
            guard let s = Double(try required("seek SECONDS")) else { throw .usage("seek SECONDS") }
            self = .seek(s)
        case .volume:
            guard let v = Int(try required("volume 0-100")) else { throw .usage("volume 0-100") }
            self = .volume(v)
        case .add:
            let q = req.args.joined(separator: " ")
            guard q.contains(where: { !$0.isWhitespace || $0.isNewline }) else { throw .usage("add TRACK-ID|WORDS") }
            self = .add(q)
        case .cache: self = .cache
        case .remove:
            guard let n = Int(try required("remove N")), req.args.count == 1 else { throw .usage("remove N (N = place in the queue, from 1)") }
            self = .remove(n)
        case .move:
            guard req.args.count == 2, let n = Int(req.args[0]), let m = Int(req.args[1]) else { throw .usage("move N M (entry N to place M, from 1)") }
            self = .move(n, to: m)
        case .import: self = .import(try required("import DIR"))
        case .group:
            let rest = req.args.dropFirst()
            switch first ?? "show" {
            case "create": self = .group(.create(name: rest.joined(separator: " ")))
            case "join":
                guard !rest.isEmpty else { throw .usage("group join CODE") }
                self = .group(.join(code: rest.joined()))
            case "show": self = .group(.show)
            case "leave": self = .group(.leave)
            case "invite": self = .group(.invite)
            case "button": self = .group(.button)
            default: throw .usage("group create [NAME] | group join CODE | group invite | group button | group show | group leave")
            }
        case .peers: self = .peers
        case .takeControl: self = .takeControl
        case .where: self = .where
        case .convoy: self = .convoy
        }
    }
}

/// The wire form, `{"cmd": NAME, "args": [...]}`; decoding throws `ParseError` for a request
/// that is well-formed JSON but not a command.
extension ControlCommand: Codable {
    public init(from decoder: any Decoder) throws {
        try self.init(ControlRequest(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try request.encode(to: encoder)
    }
}
