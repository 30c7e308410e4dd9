import CQRencode
import Foundation
import JamzPlatform

/// The phone page's join QR: the convoy's long join code as a QR symbol, made by libqrencode
/// (the only wrapper of it), drawn as SVG by the page server. Error correction M (15 % of the
/// symbol may be lost: a scratched phone screen, glare); the code's characters (0-9, A-Z, '-')
/// fit QR's alphanumeric mode, so the 65-character code is a version 4 symbol (33 × 33).
enum PageQR {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The symbol's modules, row by row (`true`: dark), `size` × `size`, without the quiet zone.
    static func matrix(_ text: String) throws(Failure) -> (size: Int, dark: [Bool]) {
        guard !text.isEmpty else { throw Failure(description: "nothing to encode") }
        guard let qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else {
            throw Failure(description: "libqrencode: \(errnoText())")
        }
        defer { QRcode_free(qr) }
        let size = Int(qr.pointee.width)
        // Bit 0 of each byte: dark module (qrencode.h); the other bits say which kind.
        let dark = (0..<size * size).map { qr.pointee.data[$0] & 1 == 1 }
        return (size, dark)
    }

    /// An SVG of the symbol with a 4-module quiet zone: one path, a unit per module, scaled by
    /// the page (crisp at any size, about 4 KB).
    static func svg(_ text: String) throws(Failure) -> String {
        let (size, dark) = try matrix(text)
        let full = size + 8
        var d = ""
        for y in 0..<size {
            var x = 0
            while x < size {
                guard dark[y * size + x] else { x += 1; continue }
                var run = 1
                while x + run < size, dark[y * size + x + run] { run += 1 }
                d += "M\(x + 4) \(y + 4)h\(run)v1h-\(run)z"
                x += run
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(full) \(full)" shape-rendering="crispEdges">\
            <rect width="\(full)" height="\(full)" fill="#fff"/><path fill="#000" d="\(d)"/></svg>
            """
    }

    /// The symbol as a plain PBM (P1) image, `scale` pixels per module (for decoders in tests).
    static func pbm(_ text: String, scale: Int = 4) throws(Failure) -> String {
        let (size, dark) = try matrix(text)
        let full = (size + 8) * scale
        var rows: [String] = ["P1", "\(full) \(full)"]
        for py in 0..<full {
            let y = py / scale - 4
            var row = ""
            for px in 0..<full {
                let x = px / scale - 4
                row += (0..<size).contains(x) && (0..<size).contains(y) && dark[y * size + x] ? "1 " : "0 "
            }
            rows.append(row)
        }
        return rows.joined(separator: "\n") + "\n"
    }
}
