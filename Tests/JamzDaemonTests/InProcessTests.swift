import Foundation
import JamzClient
import JamzCore
import JamzDaemon
import JamzTestSupport
import Logging
import Testing

/// The daemon started inside the test process: the same requests answered in-process and
/// through its live control socket.
@Suite struct InProcessTests {
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
        let added2 = try await Task.detached { (try client.call("import", music)["data"] as? [String: Any])?["added"] as? Int }.value
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
