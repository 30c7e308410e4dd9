import ArgumentParser
import Foundation
import JamzClient
import JamzCore

/// `jamz`: the command-line remote of the head unit (talks to jamzd's control socket).
struct Jamz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jamz",
        abstract: "Control the TrafficJamz head unit (jamzd).",
        subcommands: [Status.self, Where.self, ConvoyView.self, Import.self, Queue.self, Add.self, Remove.self, Move.self, Play.self, Pause.self, Toggle.self,
                      Next.self, Prev.self, Seek.self, Volume.self, Cache.self, Group.self, Peers.self, TakeControl.self])
}

struct Common: ParsableArguments {
    @Option(help: "jamzd's control socket (default: $JAMZ_SOCKET or /run/jamz/jamz.sock)")
    var socket: String?

    var path: String { socket ?? ProcessInfo.processInfo.environment["JAMZ_SOCKET"] ?? "/run/jamz/jamz.sock" }

    /// Sends the command; prints the message (or `data` as JSON); exits 1 when jamzd said no.
    @discardableResult
    func run(_ cmd: ControlCommand, json: Bool = false,
             progress: (ImportProgressReport) -> Void = { _ in }) throws -> ControlReply<JSONValue> {
        let reply: ControlReply<JSONValue>
        do {
            reply = try ControlClient(path: path).send(cmd, onProgress: progress)
        } catch {
            FileHandle.standardError.write(Data("jamz: \(error)\n".utf8))
            throw ExitCode(2)
        }
        guard reply.ok else {
            FileHandle.standardError.write(Data("jamz: \(reply.message)\n".utf8))
            throw ExitCode.failure
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(reply.data ?? .null), as: UTF8.self))
        } else {
            print(reply.message)
        }
        return reply
    }

    /// The join code as a terminal QR code, for a phone or another car's camera, when `qrencode`
    /// is installed (Debian package qrencode); nothing otherwise.
    func printQR(_ reply: ControlReply<JSONValue>) {
        guard let code = reply.data?["code"]?.string,
              let exe = ["/usr/bin/qrencode", "/usr/local/bin/qrencode"].first(where: FileManager.default.isExecutableFile) else { return }
        fflush(nil)   // the message first (every output stream)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["-t", "UTF8", "-m", "2", code]
        try? p.run()
        p.waitUntilExit()
    }
}

extension Jamz {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What is playing, where, how loud.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output (stable; see README)") var json = false
        @Flag(help: "Keep printing the status every half second") var follow = false
        func run() throws {
            repeat {
                try common.run(.status, json: json)
                if follow { usleep(500_000) }
            } while follow
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy the MP3 files of a folder tree into the library.")
        @OptionGroup var common: Common
        @Argument(help: "Folder (e.g. /media/usb)") var dir: String
        @Flag(help: "Print the summary as JSON") var json = false
        func run() throws {
            let abs = URL(fileURLWithPath: dir).standardizedFileURL.path
            try common.run(.import(abs), json: json) { p in
                switch p.result {
                case "added": print("[\(p.done)/\(p.total)] added \(p.file) — \(p.title ?? "")")
                case "duplicate": print("[\(p.done)/\(p.total)] already in the library: \(p.file)")
                default: print("[\(p.done)/\(p.total)] skipped \(p.file): \(p.reason ?? "?")")
                }
            }
        }
    }

    struct Queue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The play queue.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output") var json = false
        func run() throws { try common.run(.queue, json: json) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue a track by id (or id prefix), or every track matching the words.")
        @OptionGroup var common: Common
        @Argument(help: "Track id or search words") var words: [String]
        func run() throws { try common.run(.add(words.joined(separator: " "))) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take entry N off the queue (in a convoy: the DJ; entries after the one playing).")
        @OptionGroup var common: Common
        @Argument(help: "Place in the queue, from 1") var n: Int
        func run() throws { try common.run(.remove(n)) }
    }

    struct Move: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move entry N to place M (in a convoy: the DJ; entries after the one playing).")
        @OptionGroup var common: Common
        @Argument(help: "Place in the queue, from 1") var n: Int
        @Argument(help: "The place it goes to, from 1") var to: Int
        func run() throws { try common.run(.move(n, to: to)) }
    }

    struct Play: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Play (resume), or play entry N of the queue.")
        @OptionGroup var common: Common
        @Argument(help: "Place in the queue, from 1") var n: Int?
        func run() throws { try common.run(.play(n)) }
    }

    struct Pause: ParsableCommand {
        @OptionGroup var common: Common
        func run() throws { try common.run(.pause) }
    }

    struct Toggle: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Play if paused, pause if playing.")
        @OptionGroup var common: Common
        func run() throws { try common.run(.toggle) }
    }

    struct Next: ParsableCommand {
        @OptionGroup var common: Common
        func run() throws { try common.run(.next) }
    }

    struct Prev: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Previous entry (or the start of this one after 3 s).")
        @OptionGroup var common: Common
        func run() throws { try common.run(.prev) }
    }

    struct Seek: ParsableCommand {
        @OptionGroup var common: Common
        @Argument(help: "Seconds into the current track") var seconds: Double
        func run() throws { try common.run(.seek(seconds)) }
    }

    struct Volume: ParsableCommand {
        @OptionGroup var common: Common
        @Argument(help: "0-100") var level: Int
        func run() throws { try common.run(.volume(level)) }
    }

    struct Group: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The convoy: create one (prints the join code), join one, show it, leave it.",
            subcommands: [Create.self, Join.self, Invite.self, Button.self, Show.self, Leave.self], defaultSubcommand: Show.self)

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make a new convoy; this car is its DJ. Prints the join code.")
            @OptionGroup var common: Common
            @Argument(help: "Convoy name") var name: [String] = []
            @Flag(help: "Machine-readable output") var json = false
            func run() throws {
                let reply = try common.run(.group(.create(name: name.joined(separator: " "))), json: json)
                if !json { common.printQR(reply) }
            }
        }
        struct Join: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Join the convoy whose code another car gave: its long code, or the 6-digit code of `jamz group invite`.")
            @OptionGroup var common: Common
            @Argument(help: "The join code (dashes, spaces and case do not matter)") var code: [String]
            func run() throws { try common.run(.group(.join(code: code.joined()))) }
        }
        struct Invite: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A 6-digit join code, valid 5 minutes, for a car on this network: `jamz group join CODE` there.")
            @OptionGroup var common: Common
            func run() throws { try common.run(.group(.invite)) }
        }
        struct Button: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The join button: pairs with a car whose join button is pressed within 30 s (both speak the same two check words).")
            @OptionGroup var common: Common
            func run() throws { try common.run(.group(.button)) }
        }
        struct Show: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The convoy, this car's part in it, the join code, packet counters.")
            @OptionGroup var common: Common
            @Flag(help: "Machine-readable output (stable; see README)") var json = false
            func run() throws { try common.run(.group(.show), json: json) }
        }
        struct Leave: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Leave the convoy and play alone.")
            @OptionGroup var common: Common
            func run() throws { try common.run(.group(.leave)) }
        }
    }

    struct Peers: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The other cars heard: name, address, link, last heard, clock offset and its bound, who is DJ.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output (stable; see README)") var json = false
        func run() throws { try common.run(.peers, json: json) }
    }

    struct Where: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "This car's GPS fix and its quality, and what GPS says about the wall clock.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output") var json = false
        func run() throws { try common.run(.where, json: json) }
    }

    struct ConvoyView: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: ControlCommand.Name.convoy.rawValue,
            abstract: "The other cars: distance, bearing, speed, ahead or behind, last heard, together or apart.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output") var json = false
        func run() throws { try common.run(.convoy, json: json) }
    }

    struct TakeControl: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: ControlCommand.Name.takeControl.rawValue, abstract: "Make this car the convoy's DJ.")
        @OptionGroup var common: Common
        func run() throws { try common.run(.takeControl) }
    }

    struct Cache: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cache use: tracks, bytes, hit rate, evictions.")
        @OptionGroup var common: Common
        @Flag(help: "Machine-readable output") var json = false
        func run() throws { try common.run(.cache, json: json) }
    }
}

// `jamz --socket PATH status` as well as `jamz status --socket PATH`: a leading --socket is
// taken out here and handed to every subcommand through $JAMZ_SOCKET.
var arguments = Array(CommandLine.arguments.dropFirst())
if let first = arguments.first, first == "--socket" || first.hasPrefix("--socket=") {
    let value: String?
    if first == "--socket" {
        value = arguments.count > 1 ? arguments[1] : nil
        arguments.removeFirst(min(2, arguments.count))
    } else {
        value = String(first.dropFirst("--socket=".count))
        arguments.removeFirst()
    }
    if let value { setenv("JAMZ_SOCKET", value, 1) }
}
Jamz.main(arguments)
