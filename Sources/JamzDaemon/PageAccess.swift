import Foundation
import JamzStore
import Synchronization

/// Who may use the phone page: a session is made by the pairing PIN (or the convoy's join code)
/// and is a random 128-bit token held in memory only (a restart logs every phone out).
/// Failed PINs are rate-limited per client address and in all, and counted. A session remembers
/// which secret made it: the join code is shown in every convoy car's QR, so its holder plays
/// along but may not move this car to another convoy (`Role`).
final class PageAccess: Sendable {
    /// The 6-digit pairing PIN (configured, else random per boot).
    let pin: String
    let counters: Counters
    /// After this many failures from one address, one attempt per `slowEvery` seconds.
    static let freeFailures = 5
    static let slowEvery: Double = 10
    /// At most this many failures in all per minute (a guesser with many addresses).
    static let globalPerMinute = 30
    static let maxSessions = 64

    private struct State {
        var sessions: [String: (created: Double, role: Role)] = [:]   // token -> created (monotonic s)
        var failures: [String: (count: Int, last: Double)] = [:]
        var recent: [Double] = []              // instants of recent failures, for the global cap
    }
    private let state = Mutex(State())

    init(pin: String?, counters: Counters) {
        self.pin = pin ?? PageAccess.randomPIN()
        self.counters = counters
    }

    static func randomPIN() -> String {
        var g = SystemRandomNumberGenerator()
        return String(format: "%06d", Int.random(in: 0..<1_000_000, using: &g))
    }

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt64
        return String(format: "%016llx%016llx", a, b)
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// What made a session: the car's PIN (its people) or the convoy's join code (anyone in the
    /// convoy: what they could do from their own car, not the group commands).
    enum Role: String, Sendable, Equatable {
        case pin
        case convoyCode = "convoy-code"
    }

    enum Login: Equatable {
        case session(String, Role)
        case wrong
        /// Too many failures: try again in this many seconds.
        case limited(Int)
    }

    /// One login attempt from `client` with `secret`; `joinCode` is the convoy's code, if any.
    func login(secret: String, joinCode: String?, client: String, now: Double = PageAccess.now()) -> Login {
        let s = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        let byPIN = PageAccess.equal(s, pin)
        let good = byPIN || (joinCode.map { !$0.isEmpty && PageAccess.equal(s, $0) } ?? false)
        let result: Login = state.withLock { st in
            st.recent.removeAll { now - $0 > 60 }
            if st.recent.count >= PageAccess.globalPerMinute, let first = st.recent.first {
                return .limited(max(1, Int((60 - (now - first)).rounded(.up))))
            }
            if let f = st.failures[client], f.count >= PageAccess.freeFailures, now - f.last < PageAccess.slowEvery {
                return .limited(max(1, Int((PageAccess.slowEvery - (now - f.last)).rounded(.up))))
            }
            guard good else {
                let c = (st.failures[client]?.count ?? 0) + 1
                st.failures[client] = (c, now)
                st.recent.append(now)
                if st.failures.count > 1024 { st.failures.removeAll() }
                return .wrong
            }
            st.failures[client] = nil
            if st.sessions.count >= PageAccess.maxSessions, let oldest = st.sessions.min(by: { $0.value.created < $1.value.created }) {
                st.sessions[oldest.key] = nil
            }
            let token = PageAccess.randomToken()
            let role: Role = byPIN ? .pin : .convoyCode
            st.sessions[token] = (now, role)
            return .session(token, role)
        }
        switch result {
        case .session: counters.add("page.logins")
        case .wrong: counters.add("page.login_failures")
        case .limited: counters.add("page.login_limited")
        }
        return result
    }

    /// The session named by a request's Cookie header, if it is a live one.
    func valid(cookieHeader: String?) -> Bool { role(cookieHeader: cookieHeader) != nil }

    /// What made the session named by a request's Cookie header (nil: no live session).
    func role(cookieHeader: String?) -> Role? {
        guard let token = PageAccess.token(cookieHeader) else { return nil }
        return state.withLock { $0.sessions[token]?.role }
    }

    static let cookieName = "jamz_session"

    static func token(_ cookieHeader: String?) -> String? {
        guard let h = cookieHeader else { return nil }
        for part in h.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces)
            if kv.hasPrefix(cookieName + "=") { return String(kv.dropFirst(cookieName.count + 1)) }
        }
        return nil
    }

    static func setCookie(_ token: String) -> String {
        "\(cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict"
    }

    /// Compares in time independent of where the strings differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var d: UInt8 = 0
        for i in x.indices { d |= x[i] ^ y[i] }
        return d == 0
    }
}
