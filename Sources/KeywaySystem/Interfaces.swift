import Glibc

/// The host's own addresses, read from the kernel (getifaddrs).
public enum Interfaces {
    /// Every IPv4 address configured on any interface, loopback included, in host byte order.
    public static func ipv4Addresses() -> [UInt32] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(first) }
        var out: [UInt32] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            if let sa = entry.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                let value = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                }
                if !out.contains(value) { out.append(value) }
            }
            cursor = entry.pointee.ifa_next
        }
        return out
    }
}
