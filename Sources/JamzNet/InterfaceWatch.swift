import CBluetooth  // also where <sys/socket.h>'s SOCK_/MSG_ constants may come from (its headers include it)
import CLinuxNet
import Foundation
import JamzPlatform
import Glibc
import Synchronization

/// The kernel's notices of network interfaces and IPv4 addresses coming, going and changing:
/// an rtnetlink socket (NETLINK_ROUTE, groups RTMGRP_LINK | RTMGRP_IPV4_IFADDR) read on a thread
/// of its own that sleeps in poll() until the kernel says something (never a periodic look,
/// never the concurrency pool). Wireless-extension notices (an RTM_NEWLINK that only carries
/// IFLA_WIRELESS, sent on Wi-Fi scans) change nothing here and are left out.
public final class InterfaceWatch: Sendable {
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable { case link, linkGone, address, addressGone
            /// The kernel dropped notices (the socket's buffer overflowed, ENOBUFS): anything
            /// may have changed.
            case lost
        }
        public var kind: Kind
        public var index: Int32 = 0
        /// IFLA_IFNAME of a link notice.
        public var name: String?
        /// IFF_UP and IFF_RUNNING of a link notice.
        public var running: Bool?
        /// IFA_LOCAL (else IFA_ADDRESS) of an address notice, dotted.
        public var address: String?

        public var description: String {
            switch kind {
            case .lost: return "notices lost"
            case .link: return "link \(name ?? "#\(index)") \(running == true ? "running" : "not running")"
            case .linkGone: return "link \(name ?? "#\(index)") gone"
            case .address, .addressGone:
                return "address \(address ?? "?") \(kind == .address ? "on" : "gone from") interface #\(index)"
            }
        }
    }

    private let fd: Int32
    private let stopFD: Int32
    private let stopped = Mutex(false)

    /// Opens and binds the socket on the calling thread (it belongs to that thread's network
    /// namespace) and starts reading it; `changed` is called on the watch's thread with each
    /// datagram's notices. Throws if rtnetlink cannot be had (a sandbox without it).
    public init(_ changed: @escaping @Sendable ([Change]) -> Void) throws {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        addr.nl_groups = UInt32(RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw POSIXError(.init(rawValue: e) ?? .EIO)
        }
        let stopFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        guard stopFD >= 0 else {
            let e = errno
            close(fd)
            throw POSIXError(.init(rawValue: e) ?? .EIO)
        }
        self.fd = fd
        self.stopFD = stopFD
        // Linux threads inherit their maker's name (an event loop's): it says whose it is.
        NamedThread.start("jamz-netlink", stackSize: 256 << 10) { [self] in read(changed) }
    }

    /// Ends the thread (at once: it is woken through an eventfd) and closes the socket.
    public func stop() {
        guard stopped.withLock({ s in defer { s = true }; return !s }) else { return }
        var one: UInt64 = 1
        _ = retryingEINTR { write(stopFD, &one, MemoryLayout<UInt64>.size) }
    }

    deinit {
        close(fd)
        close(stopFD)
    }

    private func read(_ changed: ([Change]) -> Void) {
        // A notice of a link with many attributes is a few KB; a datagram is never split.
        var buf = [UInt8](repeating: 0, count: 32 << 10)
        while !stopped.withLock({ $0 }) {
            var set = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            let r = retryingEINTR { poll(&set, 2, -1) }
            if set[1].revents != 0 { break }
            if r < 0 {
                // Not expected (EINVAL, ENOMEM): one last look, and no more notices.
                changed([Change(kind: .lost)])
                return
            }
            let n = retryingEINTR { buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, Int32(MSG_DONTWAIT)) } }
            if n < 0 {
                switch errno {
                case EAGAIN: continue
                case ENOBUFS: changed([Change(kind: .lost)]); continue      // overflowed: look anyway
                default: changed([Change(kind: .lost)]); return
                }
            }
            let changes = Self.parse(buf[..<n])
            if !changes.isEmpty { changed(changes) }
        }
    }

    /// The link and IPv4 address notices in one rtnetlink datagram (a walk of its nlmsghdrs,
    /// each with its ifinfomsg or ifaddrmsg and rtattrs, 4-byte aligned as the kernel lays them).
    public static func parse(_ bytes: ArraySlice<UInt8>) -> [Change] {
        let align = Int(jamz_nlmsg_alignto())
        func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
        let header = aligned(MemoryLayout<nlmsghdr>.size)
        var out: [Change] = []
        bytes.withUnsafeBytes { b in
            var off = 0
            while off + MemoryLayout<nlmsghdr>.size <= b.count {
                let h = b.loadUnaligned(fromByteOffset: off, as: nlmsghdr.self)
                let len = Int(h.nlmsg_len)
                guard len >= MemoryLayout<nlmsghdr>.size, off + len <= b.count else { break }
                let body = UnsafeRawBufferPointer(rebasing: b[(off + header)..<(off + len)])
                switch Int(h.nlmsg_type) {
                case Int(RTM_NEWLINK), Int(RTM_DELLINK):
                    if let c = link(body, gone: Int(h.nlmsg_type) == Int(RTM_DELLINK)) { out.append(c) }
                case Int(RTM_NEWADDR), Int(RTM_DELADDR):
                    if let c = address(body, gone: Int(h.nlmsg_type) == Int(RTM_DELADDR)) { out.append(c) }
                case Int(NLMSG_OVERRUN):
                    out.append(Change(kind: .lost))
                default:
                    break
                }
                off += aligned(len)
            }
        }
        return out
    }

    private static func link(_ body: UnsafeRawBufferPointer, gone: Bool) -> Change? {
        guard body.count >= MemoryLayout<ifinfomsg>.size else { return nil }
        let info = body.loadUnaligned(as: ifinfomsg.self)
        var c = Change(kind: gone ? .linkGone : .link, index: info.ifi_index)
        let up = UInt32(IFF_UP) | UInt32(IFF_RUNNING)
        c.running = info.ifi_flags & up == up
        var wireless = false, other = false
        attributes(body, after: MemoryLayout<ifinfomsg>.size) { type, value in
            switch type {
            case Int(IFLA_IFNAME): c.name = String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
            case Int(IFLA_WIRELESS): wireless = true
            default: other = true
            }
        }
        // A wireless-extension event (scan results and the like): nothing about the link changed.
        if wireless && !gone && info.ifi_change == 0 && !other { return nil }
        return c
    }

    private static func address(_ body: UnsafeRawBufferPointer, gone: Bool) -> Change? {
        guard body.count >= MemoryLayout<ifaddrmsg>.size else { return nil }
        let info = body.loadUnaligned(as: ifaddrmsg.self)
        guard Int32(info.ifa_family) == AF_INET else { return nil }
        var c = Change(kind: gone ? .addressGone : .address, index: Int32(bitPattern: info.ifa_index))
        var local: String?, addr: String?
        attributes(body, after: MemoryLayout<ifaddrmsg>.size) { type, value in
            guard value.count == 4 else { return }
            let dotted = value.map(String.init).joined(separator: ".")
            if type == Int(IFA_LOCAL) { local = dotted } else if type == Int(IFA_ADDRESS) { addr = dotted }
        }
        c.address = local ?? addr
        return c
    }

    /// Each rtattr (type, value) after the fixed part of a message's body.
    private static func attributes(_ body: UnsafeRawBufferPointer, after fixed: Int, _ each: (Int, UnsafeRawBufferPointer) -> Void) {
        let align = Int(jamz_rta_alignto())
        func aligned(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
        let header = aligned(MemoryLayout<rtattr>.size)
        var off = aligned(fixed)
        while off + MemoryLayout<rtattr>.size <= body.count {
            let a = body.loadUnaligned(fromByteOffset: off, as: rtattr.self)
            let len = Int(a.rta_len)
            guard len >= MemoryLayout<rtattr>.size, off + len <= body.count else { return }
            each(Int(a.rta_type), UnsafeRawBufferPointer(rebasing: body[(off + header)..<(off + len)]))
            off += aligned(len)
        }
    }
}
