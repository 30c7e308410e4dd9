import Foundation

/// Placeholder filled in below.
struct PulseBench {
    let seconds: Double
    let fixture: String
    let jamzd: String
    let work: String
    func run() throws {}
}
