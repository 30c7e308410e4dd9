import Foundation
import JamzAudio
import JamzCore
import JamzStore
import Logging
import Synchronization

/// The spoken prompts (issue 17): `say(.youAreDJ)` reads the prompt's pieces (files made by
/// scripts/make-prompts.sh: mono S16_LE at 22050 Hz), converts them to the output's rate and
/// channel count and hands them to the renderer, which mixes them over the music, ducked. The
/// files are read on the blocking thread pool (`onThread`), never on the concurrency pool, and
/// only when a prompt is said (nothing stays in memory between prompts). A prompt said while the
/// same one is still loading, waiting or playing is said once. A missing or unreadable piece is
/// logged and counted (`prompts.bad_pieces`) and the prompt is left out; the music goes on. A
/// missing piece of `Prompt.optionalPieces` is only left out of its prompt (`prompts.missing_pieces`).
public final class Prompts: Sendable {
    /// The rate and format of the files in the prompts directory.
    public static let fileRate = 22_050
    let dir: String
    let renderer: Renderer
    let counters: Counters
    let logger: Logger
    let format: AudioFormat
    /// Off: the directory is missing or the board file switched them off.
    public let enabled: Bool
    private let loading = Mutex<Set<Prompt>>([])

    /// Checks the directory (on the blocking pool) and says on the log whether prompts are on.
    static func start(settings: BoardConfig.PromptSettings, renderer: Renderer, format: AudioFormat, counters: Counters,
                      logger: Logger) async -> Prompts {
        let exists = (try? await onThread("jamz-prompts") {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: settings.dir, isDirectory: &isDir) && isDir.boolValue
        }) ?? false
        return Prompts(settings: settings, dirExists: exists, renderer: renderer, format: format, counters: counters, logger: logger)
    }

    init(settings: BoardConfig.PromptSettings, dirExists exists: Bool, renderer: Renderer, format: AudioFormat,
         counters: Counters, logger: Logger) {
        self.dir = settings.dir
        self.renderer = renderer
        self.counters = counters
        self.logger = logger
        self.format = format
        if settings.enabled == false {
            enabled = false
            logger.info("spoken prompts: off (board file)")
        } else if !exists {
            enabled = false
            logger.notice("spoken prompts: off, no prompts directory \(settings.dir) (scripts/make-prompts.sh makes one)")
            counters.add("prompts.missing_dir")
        } else {
            enabled = true
            logger.info("spoken prompts from \(settings.dir), volume \(settings.volume)")
        }
        renderer.setPromptVolume(Double(settings.volume) / 100)
    }

    /// Says `p` to the driver (queued behind a prompt already playing). Returns at once.
    public func say(_ p: Prompt) {
        guard enabled else { return }
        guard let pieces = p.pieces else {
            logger.warning("spoken prompt \(p) has no recorded pieces; not said")
            counters.add("prompts.unsayable")
            return
        }
        guard loading.withLock({ $0.insert(p).inserted }) else { return }
        let key = "\(p)"
        Task { [self] in
            defer { _ = loading.withLock { $0.remove(p) } }
            let samples: [Int16]
            do {
                let loaded = try await onThread("jamz-prompts") { [dir, format] in
                    try Prompts.load(pieces: pieces, dir: dir, format: format)
                }
                samples = loaded.samples
                if !loaded.skipped.isEmpty {
                    logger.warning("spoken prompt \(p): no \(loaded.skipped.joined(separator: ", ")) in \(dir) (made by an older make-prompts.sh?); said without")
                    counters.add("prompts.missing_pieces")
                }
            } catch {
                logger.error("spoken prompt \(p) not said: \(error)")
                counters.add("prompts.bad_pieces")
                return
            }
            if renderer.say(key: key, samples: samples) {
                counters.add("prompts.said")
                logger.info("spoken prompt: \(key)")
            }
        }
    }

    struct PieceError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the pieces and joins them (a short gap between pieces), converted to `format`.
    /// A missing piece of `Prompt.optionalPieces` is left out (`skipped`); any other missing or
    /// malformed piece throws.
    static func load(pieces: [String], dir: String, format: AudioFormat) throws -> (samples: [Int16], skipped: [String]) {
        var mono: [Int16] = []
        var skipped: [String] = []
        for name in pieces {
            let path = (dir as NSString).appendingPathComponent("\(name).raw")
            guard let data = FileManager.default.contents(atPath: path) else {
                if Prompt.optionalPieces.contains(name), !FileManager.default.fileExists(atPath: path) {
                    skipped.append(name)
                    continue
                }
                throw PieceError(description: "cannot read \(path)")
            }
            guard data.count >= 2, data.count % 2 == 0, data.count <= 60 * fileRate * 2 else {
                throw PieceError(description: "\(path) is not a prompt piece (\(data.count) bytes; expected mono S16_LE at \(fileRate) Hz)")
            }
            if !mono.isEmpty { mono += repeatElement(0, count: fileRate / 20) }   // 50 ms between pieces
            data.withUnsafeBytes { raw in
                for j in stride(from: 0, to: raw.count, by: 2) {
                    mono.append(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: j, as: Int16.self)))
                }
            }
        }
        return (convert(mono, from: fileRate, to: format), skipped)
    }

    /// Linear-interpolation resampling of mono speech to the output's rate, copied to each channel.
    static func convert(_ mono: [Int16], from rate: Int, to format: AudioFormat) -> [Int16] {
        guard !mono.isEmpty else { return [] }
        let n = Int(Int64(mono.count) * Int64(format.sampleRate) / Int64(rate))
        var out = [Int16]()
        out.reserveCapacity(n * format.channels)
        let ratio = Double(rate) / Double(format.sampleRate)
        for f in 0..<n {
            let x = Double(f) * ratio
            let i = Int(x), t = x - Double(i)
            let a = Double(mono[min(i, mono.count - 1)]), b = Double(mono[min(i + 1, mono.count - 1)])
            let s = Int16(clamping: Int((a + (b - a) * t).rounded()))
            for _ in 0..<format.channels { out.append(s) }
        }
        return out
    }
}
