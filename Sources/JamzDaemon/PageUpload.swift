import Foundation
import JamzCore
import JamzLibrary
import JamzPlatform
import NIOCore
import NIOHTTP1

/// An MP3 sent from a phone (`POST /api/upload`, the file as the raw body): streamed to a
/// temporary file in the cache's folder in 256 KB batches (one hop to NIO's thread pool each,
/// never held whole in memory), then imported with the same importer as `jamz import` (probe,
/// hash, cache). A refused, failed or interrupted upload leaves nothing behind.
final class PageUpload: @unchecked Sendable {
    // @unchecked: owned by one connection's task, used strictly in turn (append, finish/discard).
    let path: String
    let limit: Int64
    private var fd: Int32 = -1
    private var batch: [UInt8] = []
    private(set) var received: Int64 = 0

    static let batchBytes = 256 << 10

    private init(path: String, limit: Int64) { self.path = path; self.limit = limit }

    /// The folder for uploads in progress; emptied at start (an upload cut by a power loss).
    static func folder(_ cache: TrackCache) -> String {
        cache.dir.deletingLastPathComponent().appendingPathComponent("uploads").path
    }

    static func clean(_ folder: String) async throws {
        try await onThread("jamz-page-upload") {
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
    }

    static func open(in folder: String, limit: Int64) async throws -> PageUpload {
        let u = PageUpload(path: (folder as NSString).appendingPathComponent(PageAccess.randomToken() + ".mp3.part"), limit: limit)
        let path = u.path
        let fd = try await onThread("jamz-page-upload") { () throws -> Int32 in
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd < 0 { throw PageError("cannot create \(path): \(String(cString: strerror(errno)))") }
            return fd
        }
        u.fd = fd
        return u
    }

    /// Adds a chunk; false when the upload went over its limit (nothing more is written).
    func append(_ chunk: ByteBuffer) async throws -> Bool {
        received += Int64(chunk.readableBytes)
        guard received <= limit else { return false }
        batch.append(contentsOf: chunk.readableBytesView)
        if batch.count >= PageUpload.batchBytes { try await flush() }
        return true
    }

    private func flush() async throws {
        guard !batch.isEmpty else { return }
        let bytes = batch, fd = self.fd
        batch.removeAll(keepingCapacity: true)
        try await onThread("jamz-page-upload") {
            try bytes.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = retryingEINTR { write(fd, raw.baseAddress! + off, raw.count - off) }
                    if n <= 0 { throw PageError("cannot write the upload: \(String(cString: strerror(errno)))") }
                    off += n
                }
            }
        }
    }

    /// Writes the rest, closes, imports, and removes the temporary file whatever happened.
    func finish(_ library: Library) async -> Importer.Result {
        do { try await flush() } catch {
            await discard()
            return .skipped("\(error)")
        }
        let fd = self.fd, path = self.path, importer = library.importer
        self.fd = -1
        let r = try? await onThread("jamz-page-upload") { () -> Importer.Result in
            close(fd)
            defer { unlink(path) }
            return importer.importFile(path)
        }
        return r ?? .skipped("the import could not run")
    }

    func discard() async {
        let fd = self.fd, path = self.path
        self.fd = -1
        _ = try? await onThread("jamz-page-upload") {
            if fd >= 0 { close(fd) }
            unlink(path)
        }
    }
}

extension PageServer {
    /// At an upload's head: refused at once (no session, cross-site, declared too big), or the
    /// temporary file to stream it into.
    func beginUpload(_ h: HTTPRequestHead) async -> Result<PageUpload, PageResponse> {
        guard access.valid(cookieHeader: h.headers["Cookie"].first) else {
            counters.add("page.unauthorized")
            return .failure(.json(.unauthorized, ["error": "not logged in: enter the car's PIN"]))
        }
        guard PageServer.sameOrigin(h) else {
            counters.add("page.cross_site")
            return .failure(.json(.forbidden, ["error": "cross-site request refused"]))
        }
        if let declared = h.headers["Content-Length"].first.flatMap(Int64.init), declared > maxUpload {
            return .failure(tooLarge())
        }
        do {
            return .success(try await PageUpload.open(in: PageUpload.folder(commands.library.cache), limit: maxUpload))
        } catch {
            logger.error("page upload: \(error)")
            return .failure(.json(.internalServerError, ["error": "\(error)"]))
        }
    }

    func tooLarge() -> PageResponse {
        counters.add("page.upload_refused")
        return .json(.payloadTooLarge, ["error": "too large: the limit is \(maxUpload >> 20) MB"])
    }

    /// At an upload's end: imported (200, the track), or refused with the importer's reason (422).
    func finishUpload(_ u: PageUpload) async -> PageResponse {
        switch await u.finish(commands.library) {
        case .added(let info):
            counters.add("page.uploads")
            changes.forEach { $0.fire() }
            return .json(.ok, ["ok": "added", "id": info.id.hex, "title": info.title])
        case .duplicate(let id):
            return .json(.ok, ["ok": "already in this car", "id": id.hex])
        case .skipped(let why):
            counters.add("page.upload_refused")
            return .json(.unprocessableEntity, ["error": why])
        }
    }
}

/// A refusal carried as `Result`'s failure.
extension PageResponse: Error {}
