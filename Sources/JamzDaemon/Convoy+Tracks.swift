import Foundation
import JamzCore
import JamzLibrary
import JamzNet

/// Tracks this car lacks: copied from a car that has them, over the LAN.
extension Convoy {
    /// The playing entry and the next two (`ConvoyNode.upcomingTracks`): any whose track is not
    /// in this car's cache is copied from a car that has it, by content hash (verified by
    /// SHA-256 before use), while the music goes on. Until it arrives that entry is silent in
    /// this car only.
    func fetchMissing() {
        guard let s = secret, !node.peers.isEmpty else { return }
        for track in node.upcomingTracks(now: nodeNow()) where !fetching.contains(track) {
            guard !FileManager.default.fileExists(atPath: cache.path(for: track)) else { continue }
            // Copies come over the LAN (TCP to its track server); the relay carries no files.
            let sources = node.peers.filter { $0.value.dataPort > 0 && lanAddress[$0.key] != nil }
                .sorted { $0.value.lastHeard > $1.value.lastHeard }
                .compactMap { id, p in lanAddress[id]?.ipAddress.map { (name: p.name, host: $0, port: p.dataPort) } }
            guard !sources.isEmpty else { return }
            fetching.insert(track)
            let key = s.key
            Task { await self.fetch(track, from: sources, key: key) }
        }
    }

    private func fetch(_ id: TrackID, from sources: [(name: String, host: String, port: Int)], key: ConvoyKey) async {
        defer { fetching.remove(id) }
        for p in sources {
            do {
                let began = clock.now()
                let file = try await TrackFetcher.fetch(id, from: p.host, port: p.port, key: key, sender: me,
                                                        into: cache.dir.path, timeout: .seconds(60))
                let took = clock.now() - began
                let (cache, rate, path) = (self.cache, sampleRate, file.path)
                // The file system work (stat, probe, catalog) on a thread of its own.
                let (info, size) = try await onThread("jamz-register") { () -> (TrackInfo, Int64) in
                    let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
                    return (try cache.register(id, rate: rate), size)
                }
                fetchedBytes += size
                fetchNanos += took
                fetched += 1
                logger.info("copied \"\(info.title)\" (\(id.short), \(size) bytes in \(took / 1_000_000) ms) from \(p.name)")
                await follow()
                return
            } catch {
                logger.warning("cannot copy \(id.short) from \(p.name): \(error)")
            }
        }
        fetchFailures += 1
        logger.warning("track \(id.short) could not be copied from any car: it is silent in this car; trying again later")
    }
}
