import KeywaySystem
import SystemPackage

/// A route keywayd installs into its TUN device, in its own table.
public struct KernelRoute: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 destination, host order.
    public var address: UInt32
    /// 0...32; anything longer is refused by HostNetwork.
    public var prefixLength: UInt8
    /// The source address local traffic should take (IPv4, host order); 0: none.
    public var preferredSource: UInt32

    public init(address: UInt32, prefixLength: UInt8, preferredSource: UInt32 = 0) {
        self.address = address
        self.prefixLength = prefixLength
        self.preferredSource = preferredSource
    }

    /// The destination with its host bits cleared, as the kernel stores it.
    public var network: UInt32 {
        prefixLength == 0 ? 0 : address & (~UInt32(0) << UInt32(32 - Int(min(prefixLength, 32))))
    }

    public var description: String { HostNetwork.prefix(address, prefixLength) }
}

/// One change to the kernel's routing configuration.
public enum RoutingChange: Equatable, Sendable {
    /// `ip route replace PREFIX dev IFINDEX table TABLE [src SOURCE]`.
    case replaceRoute(KernelRoute, table: UInt32, interfaceIndex: Int32)
    /// `ip route del PREFIX table TABLE [dev IFINDEX]`; no index: whatever the device.
    case deleteRoute(KernelRoute, table: UInt32, interfaceIndex: Int32?)
    /// `ip rule add not fwmark MARK table TABLE priority PRIORITY`.
    case addRule(notMark: UInt32, table: UInt32, priority: UInt32)
    case deleteRule(notMark: UInt32, table: UInt32, priority: UInt32)
    /// `ip link set dev IFINDEX txqueuelen PACKETS`.
    case setQueueLength(interfaceIndex: Int32, packets: UInt32)
    /// `ip link set dev IFINDEX mtu BYTES`.
    case setMTU(interfaceIndex: Int32, bytes: UInt32)
}

/// What nftables made of a script.
public enum NftablesOutcome: Equatable, Sendable {
    case applied
    /// Refused, with nftables' own messages.
    case refused(String)
    /// No nftables context could be made.
    case unavailable
}

/// The kernel interfaces HostNetwork changes the host through. keywayd passes the real one
/// (KeywayHostNet's `KernelHost`: rtnetlink via libmnl, libnftables); the tests a recording fake.
public protocol HostKernel: AnyObject {
    /// One batch: every change sent at once, then the kernel's answer to each (nil: done).
    func apply(_ changes: [RoutingChange]) -> [Errno?]
    /// The routes in `table` (none when the table does not exist).
    func routes(inTable table: UInt32) throws(SystemError) -> [KernelRoute]
    /// Runs an nftables script as one transaction.
    func runNftables(_ script: String) -> NftablesOutcome
    func interfaceIndex(_ name: String) throws(SystemError) -> Int32
    /// The MTU an IPv4 packet to each destination carrying `mark` leaves with (its route's, else
    /// its interface's), from the routing table itself, no cached path MTU; one answer each.
    func pathMTUs(toward destinations: [UInt32], mark: UInt32) -> [Result<Int, SystemError>]
}
