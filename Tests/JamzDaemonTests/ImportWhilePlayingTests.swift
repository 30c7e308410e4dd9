import Foundation
import JamzClient
import JamzCore
import JamzTestSupport
import Testing

/// Playback goes on while an import runs, and an import skips bad files with one line each.
@Suite struct ImportWhilePlayingTests {
    /// Copies of the 65 s fixture, each made distinct by its own ID3v1 tag (a new hash).
    static func bigFolder(copies: Int) throws -> String {
        let d = Fixtures.tempDir()
        let base = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("long65.mp3")))
        for i in 0..<copies {
            var tag = Data("TAG".utf8)
            var title = Array("Copy \(i)".utf8); title += [UInt8](repeating: 0, count: 30 - title.count)
            tag += title + [UInt8](repeating: 0, count: 30 + 30 + 4 + 30) + [255]
            try (base + tag).write(to: d.appendingPathComponent(String(format: "copy%02d.mp3", i)))
        }
        try Data("not audio".utf8).write(to: d.appendingPathComponent("broken.mp3"))
        return d.path
    }

    @Test func playsWhileImporting() throws {
        let car = Car()
        try car.start()
        try car.client.call("import", try musicFolder(["cbr.mp3", "long65.mp3"]))
        try car.client.call("add", "long sixty")
        try car.client.call("play")
        let folder = try Self.bigFolder(copies: 12)

        // The import runs in another client while this one watches the music.
        let importer = Thread {
            _ = try? car.jamz("import", folder)
        }
        importer.start()
        var positions: [Double] = []
        var sawImportRunning = false
        for _ in 0..<40 {
            usleep(100_000)
            let s = try car.client.status()
            positions.append(s.position)
            let tracks = try car.client.call(.cache, expecting: CacheReport.self).data?.tracks ?? 0
            if tracks > 2 && tracks < 14 { sawImportRunning = true }
            if tracks == 14 { break }
        }
        try waitUntil("the import finishes", timeout: 60) {
            (try? car.client.call(.cache, expecting: CacheReport.self))?.data?.tracks == 14
        }
        #expect(sawImportRunning)
        #expect(positions.count >= 3)
        // The position kept moving forward the whole time.
        #expect(zip(positions, positions.dropFirst()).allSatisfy { $1 > $0 })
        #expect(try car.client.status().state == "playing")
        #expect(try car.client.status().counters["import.skipped"] == 1)
        // Importing the same tree again adds nothing.
        let again = try car.client.call("import", folder).data
        #expect(again?["added"]?.int == 0 && again?["duplicates"]?.int == 12)
        #expect(car.terminate() == 0)
    }
}
