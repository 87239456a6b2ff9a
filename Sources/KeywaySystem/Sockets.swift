import CKeywayShim
import Glibc
import SystemPackage

/// Privileged and local sockets that keywayd opens before handing them to children.
public enum Sockets {
    /// A UDP socket bound to INADDR_ANY:port, carrying `mark` (SO_MARK needs CAP_NET_ADMIN).
    /// Deliberately without SO_REUSEADDR: with it, any local user could bind the same port on one
    /// of our addresses (setting the option too) and read IKE or ESP in UDP meant for keywayd.
    /// UDP has no TIME_WAIT, so a restarted keywayd binds again as soon as the old one is gone.
    public static func udpBound(port: UInt16, mark: UInt32) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(udp)") {
            socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        try setMark(fd, mark)
        try setNeverDontFragment(fd)
        // IKE needs to know which of our addresses a datagram came to.
        _ = try retryingEINTR("setsockopt(IP_PKTINFO)") { kw_enable_pktinfo(fd.raw) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr = in_addr(s_addr: INADDR_ANY)
        _ = try retryingEINTR("bind(udp \(port))") {
            withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    bind(fd.raw, sa, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return fd
    }

    /// Asks the kernel to join consecutive datagrams of one flow into one read (UDP_GRO); false
    /// when it cannot (each datagram is then read on its own).
    public static func enableReceiveCoalescing(_ fd: Descriptor) -> Bool { kw_enable_udp_gro(fd.raw) == 0 }

    /// A raw IPv4 socket for one IP protocol (50 ESP, 51 AH), carrying `mark`.
    public static func raw(protocol proto: Int32, mark: UInt32) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(raw \(proto))") {
            socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), proto)
        })
        try setMark(fd, mark)
        try setHeaderIncluded(fd)
        try setNeverDontFragment(fd)
        // Bursts of a TCP window arrive faster than one loop turn drains them: without room the
        // kernel drops them and TCP backs off. FORCE ignores rmem_max (needs CAP_NET_ADMIN).
        try setBufferSizes(fd, bytes: 8 << 20)
        return fd
    }

    /// IP_PMTUDISC_OMIT (linux/in.h; not in Glibc's module): the kernel never sets DF on what this
    /// socket sends, fragments at the interface MTU what exceeds it, and takes no path MTU from
    /// ICMP for it — a forged "fragmentation needed" cannot shrink Keyway's paths in the kernel
    /// either. On raw sockets with IP_HDRINCL our own header (its DF bit) is sent as it is.
    public static func setNeverDontFragment(_ fd: Descriptor) throws(SystemError) {
        var omit: Int32 = 5
        _ = try retryingEINTR("setsockopt(IP_MTU_DISCOVER)") {
            setsockopt(fd.raw, Int32(IPPROTO_IP), IP_MTU_DISCOVER, &omit, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// A raw ICMP socket that receives only "destination unreachable" (ICMP_FILTER drops every
    /// other type in the kernel): the datapath reads fragmentation-needed from it. Receive only.
    public static func rawICMPErrors() throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(raw icmp)") {
            socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_ICMP))
        })
        // SOL_RAW, ICMP_FILTER (linux/icmp.h): a bit set drops that type; only type 3 passes.
        var filter: UInt32 = ~(UInt32(1) << 3)
        _ = try retryingEINTR("setsockopt(ICMP_FILTER)") {
            setsockopt(fd.raw, 255, 1, &filter, socklen_t(MemoryLayout<UInt32>.size))
        }
        var size: Int32 = 1 << 20
        _ = try retryingEINTR("setsockopt(SO_RCVBUF)") {
            setsockopt(fd.raw, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        return fd
    }

    public static func setBufferSizes(_ fd: Descriptor, bytes: Int32) throws(SystemError) {
        var size = bytes
        _ = try retryingEINTR("setsockopt(SO_RCVBUFFORCE)") {
            setsockopt(fd.raw, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        _ = try retryingEINTR("setsockopt(SO_SNDBUFFORCE)") {
            setsockopt(fd.raw, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    public static func setMark(_ fd: Descriptor, _ mark: UInt32) throws(SystemError) {
        _ = try retryingEINTR("setsockopt(SO_MARK)") { kw_set_mark(fd.raw, mark) }
    }

    /// A listening AF_UNIX SOCK_SEQPACKET socket at `path`, replacing a stale one.
    public static func unixListener(path: String, mode: mode_t, group: gid_t?) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(unix)") {
            socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        unlink(path)
        let (addr, len) = try unixAddress(path)
        _ = try retryingEINTR("bind(\(path))") { withSockaddr(addr) { sa in bind(fd.raw, sa, len) } }
        _ = try retryingEINTR("chmod(\(path))") { chmod(path, mode) }
        if let group { _ = try retryingEINTR("chown(\(path))") { chown(path, 0, group) } }
        _ = try retryingEINTR("listen") { listen(fd.raw, 16) }
        return fd
    }

    /// Connects a SOCK_SEQPACKET client to `path`.
    public static func unixConnect(path: String) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(unix)") {
            socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        let (addr, len) = try unixAddress(path)
        _ = try retryingEINTR("connect(\(path))") { withSockaddr(addr) { sa in connect(fd.raw, sa, len) } }
        return fd
    }

    /// A datagram socket connected to a syslog socket such as /dev/log.
    public static func unixDatagramConnected(path: String) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(unix dgram)") {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        let (addr, len) = try unixAddress(path)
        _ = try retryingEINTR("connect(\(path))") { withSockaddr(addr) { sa in connect(fd.raw, sa, len) } }
        return fd
    }

    /// A bound datagram socket (tests use it as a syslog listener).
    public static func unixDatagramBound(path: String) throws(SystemError) -> Descriptor {
        let fd = Descriptor(adopting: try retryingEINTR("socket(unix dgram)") {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        })
        unlink(path)
        let (addr, len) = try unixAddress(path)
        _ = try retryingEINTR("bind(\(path))") { withSockaddr(addr) { sa in bind(fd.raw, sa, len) } }
        return fd
    }

    /// An unconnected datagram socketpair end, for tests standing in for syslog.
    public static func datagramPair() throws(SystemError) -> (Descriptor, Descriptor) {
        var fds: [Int32] = [-1, -1]
        _ = try retryingEINTR("socketpair(dgram)") {
            socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (Descriptor(adopting: fds[0]), Descriptor(adopting: fds[1]))
    }

    public static func accept(_ listener: Descriptor) throws(SystemError) -> Descriptor? {
        let rc = kw_accept_nonblocking(listener.raw)
        if rc < 0 {
            let e = Glibc.errno
            if e == EAGAIN || e == EINTR || e == ECONNABORTED { return nil }
            throw SystemError("accept4", errno: Errno(rawValue: e))
        }
        return Descriptor(adopting: rc)
    }

    public struct PeerCredentials: Sendable, Equatable {
        public let pid: pid_t
        public let uid: uid_t
        public let gid: gid_t
    }

    public static func peerCredentials(_ fd: Descriptor) throws(SystemError) -> PeerCredentials {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        _ = try retryingEINTR("getsockopt(SO_PEERCRED)") { kw_peercred(fd.raw, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    /// The supplementary groups of the process that connected (SO_PEERGROUPS), as they were
    /// when it called connect(): what /etc/group says of it now, not when keywayd started.
    public static func peerGroups(_ fd: Descriptor) throws(SystemError) -> [UInt32] {
        var capacity = 64
        for _ in 0..<3 {
            var groups = [gid_t](repeating: 0, count: capacity)
            let n = groups.withUnsafeMutableBufferPointer { kw_peergroups(fd.raw, $0.baseAddress, Int32(capacity)) }
            if n >= 0 { return groups.prefix(Int(n)).map { UInt32($0) } }
            guard n < -1, Glibc.errno == ERANGE else { throw SystemError.last("getsockopt(SO_PEERGROUPS)") }
            // NGROUPS_MAX is 65536.
            capacity = min(65_536, Int(-n - 1))
        }
        throw SystemError("getsockopt(SO_PEERGROUPS)", errno: .outOfRange)
    }

    /// What one datagram write did.
    public enum DatagramOutcome: Sendable, Equatable {
        case sent
        /// The receiver's queue is full: try the same socket again later.
        case wouldBlock
        /// The receiver is gone (restarted, or never there): connect again.
        case failed(Int32)
    }

    public static func sendDatagramOutcome(fd: Int32, _ bytes: [UInt8]) -> DatagramOutcome {
        let n = bytes.withUnsafeBytes { p in
            Glibc.send(fd, p.baseAddress, p.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
        }
        if n == bytes.count { return .sent }
        let e = n < 0 ? Glibc.errno : EMSGSIZE
        return e == EAGAIN || e == ENOBUFS || e == EINTR ? .wouldBlock : .failed(e)
    }

    private static func unixAddress(_ path: String) throws(SystemError) -> (sockaddr_un, socklen_t) {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { throw SystemError("sockaddr_un(\(path))", errno: .fileNameTooLong) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return (addr, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
    }

    private static func withSockaddr(_ addr: sockaddr_un, _ body: (UnsafePointer<sockaddr>) -> Int32) -> Int32 {
        withUnsafePointer(to: addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0) } }
    }
}

/// The TUN device that plaintext for protected destinations is routed into.
public enum Tun {
    public static func open(name: String) throws(SystemError) -> (Descriptor, String) {
        var actual = [CChar](repeating: 0, count: 16)
        let fd = kw_tun_open(name, &actual)
        if fd < 0 { throw SystemError.last("TUNSETIFF(\(name))") }
        let realName = String(decoding: actual.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (Descriptor(adopting: fd), realName)
    }

    public static func setUp(name: String, mtu: Int32) throws(SystemError) {
        if kw_if_set_up(name, mtu) < 0 { throw SystemError.last("SIOCSIFFLAGS(\(name))") }
    }

    /// The interface's index, which routes and link changes name it by.
    public static func interfaceIndex(name: String) throws(SystemError) -> Int32 {
        let index = kw_if_index(name)
        if index <= 0 { throw SystemError.last("SIOCGIFINDEX(\(name))") }
        return index
    }
}

extension Sockets {
    /// Raw sockets carry whole IPv4 packets, our header included (IP_HDRINCL).
    public static func setHeaderIncluded(_ fd: Descriptor) throws(SystemError) {
        var one: Int32 = 1
        _ = try retryingEINTR("setsockopt(IP_HDRINCL)") {
            setsockopt(fd.raw, Int32(IPPROTO_IP), IP_HDRINCL, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Sends one datagram to an IPv4 address (port 0 for raw sockets). False when the kernel refused it.
    /// Sends `bytes` from `offset` on (a packet's payload without copying it out).
    public static func send(_ fd: Descriptor, _ bytes: [UInt8], from offset: Int = 0, to address: UInt32,
                            port: UInt16 = 0) -> Bool {
        guard offset >= 0, offset <= bytes.count else { return false }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr = in_addr(s_addr: address.bigEndian)
        let n = bytes.withUnsafeBytes { p in
            withUnsafePointer(to: &addr) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    Glibc.sendto(fd.raw, p.baseAddress.map { $0 + offset }, p.count - offset, Int32(MSG_DONTWAIT), sa,
                                 socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        return n == bytes.count - offset
    }

    /// Sends one UDP datagram (`bytes` from `offset` on) to `address`:`port` from our address
    /// `source` (IP_PKTINFO; 0: the kernel picks by route). False when the kernel refused it.
    public static func sendUDP(_ fd: Descriptor, _ bytes: [UInt8], from offset: Int = 0, source: UInt32,
                               to address: UInt32, port: UInt16) -> Bool {
        guard offset >= 0, offset <= bytes.count else { return false }
        let n = bytes.withUnsafeBytes { p in
            kw_send_udp_from(fd.raw, p.baseAddress.map { $0 + offset }, p.count - offset, source, address, port)
        }
        return n == bytes.count - offset
    }

    /// A non-blocking receive on a UDP socket with IP_PKTINFO: byte count, the sender and the
    /// local address the datagram was sent to (0 if the kernel did not say), or nil.
    public static func receiveUDP(_ fd: Descriptor, into buffer: inout [UInt8])
        -> (count: Int, source: UInt32, port: UInt16, destination: UInt32)? {
        var src: UInt32 = 0, dst: UInt32 = 0
        var port: UInt16 = 0
        let n = buffer.withUnsafeMutableBytes { p in kw_recv_udp(fd.raw, p.baseAddress, p.count, &src, &port, &dst) }
        guard n >= 0 else { return nil }
        return (n, src, port, dst)
    }

    /// One datagram without blocking, or nil when none is waiting.
    public static func receive(_ fd: Descriptor, into buffer: inout [UInt8]) -> Int? {
        let n = buffer.withUnsafeMutableBytes { p in Glibc.recv(fd.raw, p.baseAddress, p.count, Int32(MSG_DONTWAIT)) }
        return n >= 0 ? n : nil
    }
}
