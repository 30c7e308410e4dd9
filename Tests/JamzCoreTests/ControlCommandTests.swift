import Foundation
import JamzCore
import Testing

/// The typed commands and their wire form (`{"cmd": NAME, "args": [...]}`, README).
@Suite struct ControlCommandTests {
    static let all: [ControlCommand] = [
        .status, .queue, .play(nil), .play(3), .pause, .toggle, .next, .prev, .seek(20.5), .seek(0),
        .volume(55), .add("zoë long"), .add("a1b2c3"), .cache, .import("/media/usb/Music Folder"),
        .group(.create(name: "")), .group(.create(name: "Road Trip")), .group(.join(code: "ABCD-EFGH")),
        .group(.show), .group(.leave), .group(.invite), .group(.button), .peers, .takeControl, .where, .convoy,
        .remove(3), .move(4, to: 2),
    ]

    @Test(arguments: all)
    func roundTripsThroughJSON(_ cmd: ControlCommand) throws {
        let data = try JSONEncoder().encode(cmd)
        #expect(try JSONDecoder().decode(ControlCommand.self, from: data) == cmd)
        #expect(try JSONDecoder().decode(ControlRequest.self, from: data) == cmd.request)
    }

    @Test func everyNameHasACommand() {
        #expect(Set(Self.all.map(\.name)) == Set(ControlCommand.Name.allCases))
    }

    @Test func readsTheDocumentedForm() throws {
        // README, control protocol: `{"cmd": "NAME", "args": ["…"]}` (`args` may be omitted).
        func read(_ line: String) throws -> ControlCommand { try JSONDecoder().decode(ControlCommand.self, from: Data(line.utf8)) }
        #expect(try read(#"{"cmd": "status", "args": []}"#) == .status)
        #expect(try read(#"{"cmd": "status"}"#) == .status)
        #expect(try read(#"{"cmd":"play","args":["1"]}"#) == .play(1))
        #expect(try read(#"{"cmd":"seek","args":["20.0"]}"#) == .seek(20))
        #expect(try read(#"{"cmd":"volume","args":["+5"]}"#) == .volume(5))
        #expect(try read(#"{"cmd":"add","args":["abc def","x"]}"#) == .add("abc def x"))
        #expect(try read(#"{"cmd":"group","args":["create","Road","Trip"]}"#) == .group(.create(name: "Road Trip")))
        #expect(try read(#"{"cmd":"group","args":["join","ABCD","EFGH"]}"#) == .group(.join(code: "ABCDEFGH")))
        #expect(try read(#"{"cmd":"group"}"#) == .group(.show))
        #expect(try read(#"{"cmd":"take-control"}"#) == .takeControl)
        #expect(try read(#"{"cmd":"move","args":["5","2"]}"#) == .move(5, to: 2))
    }

    @Test func writesTheDocumentedForm() throws {
        let o = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(ControlCommand.volume(40))) as? [String: Any])
        #expect(o["cmd"] as? String == "volume" && o["args"] as? [String] == ["40"])
    }

    @Test func namesTheBadCommandOrArgument() {
        func error(_ cmd: String, _ args: [String] = []) -> String? {
            do { _ = try ControlCommand(ControlRequest(cmd: cmd, args: args)); return nil } catch { return error.description }
        }
        #expect(error("self-destruct") == #"unknown command "self-destruct"; try: status, queue, add, play, pause, toggle, next, prev, seek, volume, import, cache, group, peers, take-control, convoy, where, remove, move"#)
        #expect(error("volume", ["loud"]) == "usage: volume 0-100")
        #expect(error("volume") == "usage: volume 0-100")
        #expect(error("seek", ["soon"]) == "usage: seek SECONDS")
        #expect(error("play", ["first"]) == "usage: play [N] (N = place in the queue, from 1)")
        #expect(error("add", ["  "]) == "usage: add TRACK-ID|WORDS")
        #expect(error("import") == "usage: import DIR")
        #expect(error("remove", ["2", "3"]) == "usage: remove N (N = place in the queue, from 1)")
        #expect(error("move", ["2"]) == "usage: move N M (entry N to place M, from 1)")
        #expect(error("group", ["join"]) == "usage: group join CODE")
        #expect(error("group", ["disband"]) == "usage: group create [NAME] | group join CODE | group invite | group button | group show | group leave")
        #expect(throws: ControlCommand.ParseError.unknownCommand("x")) {
            try JSONDecoder().decode(ControlCommand.self, from: Data(#"{"cmd":"x"}"#.utf8))
        }
    }
}
