import Foundation

/// The MP3 fixtures made by `scripts/make-fixtures.sh` (sox + lame), generated once per build
/// folder, or taken from `$JAMZ_FIXTURES`.
public enum Fixtures {
    public static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static let dir: String = {
        if let d = ProcessInfo.processInfo.environment["JAMZ_FIXTURES"] { return d }
        let out = repo.appendingPathComponent(".build/fixtures").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [repo.appendingPathComponent("scripts/make-fixtures.sh").path, out]
        try! p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "scripts/make-fixtures.sh failed")
        return out
    }()

    public static func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    /// name → exact decoded length (frames per channel at the file's own rate), from MANIFEST.
    public static let manifest: [String: (rate: Int, channels: Int, samples: Int64)] = {
        let text = try! String(contentsOfFile: path("MANIFEST"), encoding: .utf8)
        var d: [String: (Int, Int, Int64)] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: "\t")
            if f.count == 4 { d[String(f[0])] = (Int(f[1])!, Int(f[2])!, Int64(f[3])!) }
        }
        return d
    }()

    public static func tempDir() -> URL {
        let u = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("jamz-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// The executables built next to the test bundle (jamzd, jamz).
public enum Binaries {
    public static let dir: String = {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for candidate in [here, here.deletingLastPathComponent(), Fixtures.repo.appendingPathComponent(".build/debug")] {
            if FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("jamzd").path) { return candidate.path }
        }
        return Fixtures.repo.appendingPathComponent(".build/debug").path
    }()
    public static var jamzd: String { dir + "/jamzd" }
    public static var jamz: String { dir + "/jamz" }
}
