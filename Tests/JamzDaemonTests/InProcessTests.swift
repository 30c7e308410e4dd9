import Foundation
import JamzClient
import JamzCore
import JamzDaemon
import JamzTestSupport
import Logging
import JamzPlatform
import Testing

/// The daemon started inside the test process: the same requests answered in-process and
/// through its live control socket.
@Suite struct InProcessTests {
    /// A daemon that accepts and never answers: the client gives up after its silence, with a
    /// line that says so, instead of hanging the CLI.
    @Test func clientGivesUpOnASilentDaemon() async throws {
        let path = Fixtures.tempDir().appendingPathComponent("mute.sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let bound = UnixAddress(path)!.withSockaddr { bind(fd, $0, $1) }
        #expect(bound == 0 && listen(fd, 4) == 0)
        let client = ControlClient(path: path, silence: 0.3)
        let error = await Task.detached { () -> String? in
            do { _ = try client.status(); return nil } catch { return "\(error)" }
        }.value
        #expect(error?.contains("did not answer status within 0.3 s") == true, "\(String(describing: error))")
    }

    @Test func sameAnswersInProcessAndOverTheSocket() async throws {
        let dir = Fixtures.tempDir()
        var config = DaemonConfig()
        config.dataDir = dir.appendingPathComponent("data").path
        config.socket = dir.appendingPathComponent("jamz.sock").path
        config.output = "file:/dev/null"
        let daemon = try await Daemon.start(config: config, configProblems: [], logger: Logger(label: "test"))
        let serving = Task { await daemon.serve() }

        let empty = await daemon.request(#"{"cmd":"play"}"#)
        #expect(empty.contains(#""ok":false"#) && empty.contains("the queue is empty"))
        let bad = await daemon.request("{not json")
        #expect(bad.contains("not a valid request"))

        let music = try musicFolder(["cbr.mp3", "id3v24.mp3"])
        let client = ControlClient(path: config.socket)
        let added2 = try await Task.detached { try client.call("import", music).data?["added"]?.int }.value
        #expect(added2 == 2)

        let added = await daemon.request(#"{"cmd":"add","args":["zoë"]}"#)
        #expect(added.contains(#""ok":true"#) && added.contains("Café Ünïcode"))
        let played = await daemon.request(#"{"cmd":"play","args":["1"]}"#)
        #expect(played.contains("playing 1."))

        let viaSocket = try await Task.detached { try client.status() }.value
        #expect(viaSocket.state == "playing")
        #expect(viaSocket.track?.artist == "Zoë")
        #expect(viaSocket.queueLength == 1)
        let inProcess = await daemon.request(#"{"cmd":"status"}"#)
        #expect(inProcess.contains(#""title":"Café Ünïcode""#))

        serving.cancel()
        await serving.value
    }
}
