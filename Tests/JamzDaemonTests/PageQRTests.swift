import Foundation
@testable import JamzDaemon
import JamzNet
import JamzTestSupport
import Testing

/// The phone page's join QR (libqrencode): what it draws decodes, with zbar (Debian's
/// `zbarimg`, a decoder that shares no code with libqrencode), to the convoy's long join code.
@Suite struct PageQRTests {
    static func zbar(_ file: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/zbarimg")
        p.arguments = ["-q", "--raw", file]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func theJoinCodeQRDecodesToTheCode() throws {
        let dir = Fixtures.tempDir()
        for name in ["Road trip", "Käfer-Konvoi 🚐"] {
            let code = JoinCode.make(.random(name: name))
            let (size, dark) = try PageQR.matrix(code)
            #expect(size >= 21 && (size - 17) % 4 == 0 && dark.count == size * size)
            // The three finder patterns: dark 7 × 7 corners.
            #expect(dark[0] && dark[size - 1] && dark[(size - 1) * size])
            let file = dir.appendingPathComponent("qr.pbm").path
            try PageQR.pbm(code).write(toFile: file, atomically: true, encoding: .ascii)
            let (status, text) = try Self.zbar(file)
            #expect(status == 0 && text == code, "zbarimg: \(status) \(text)")
            let svg = try PageQR.svg(code)
            #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>") && svg.utf8.count < 8_000)
        }
        #expect(throws: PageQR.Failure.self) { try PageQR.matrix("") }
    }
}
