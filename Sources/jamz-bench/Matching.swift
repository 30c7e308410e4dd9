import Foundation

/// The fixture decoded by mpg123 at the output rate (S16 stereo): what the sinks should carry.
func decodeReference(_ fixture: String, work: String) throws -> [Int16] {
    let out = work + "/ref.raw"
    let c = try Child.spawn("/bin/sh", ["-c", "mpg123 -q -r 44100 -e s16 -s \"$0\" > \"$1\"", fixture, out])
    _ = c.wait()
    let d = try Data(contentsOf: URL(fileURLWithPath: out))
    return d.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
}

/// The reference frame (within ±range of `around`) where capture frames at `at` match best.
func bestMatch(_ cap: [Int16], at: Int, in ref: [Int16], around: Int, range: Int, length: Int = 1024) -> Int {
    var best = (Int.max, around)
    for o in max(0, around - range)...min(ref.count / 2 - length, around + range) {
        var err = 0
        for i in 0..<(length * 2) {
            err += Swift.abs(Int(cap[at * 2 + i]) - Int(ref[o * 2 + i]))
            if err >= best.0 { break }
        }
        if err < best.0 { best = (err, o) }
    }
    return best.1
}
