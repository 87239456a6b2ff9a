/// The processes (and the control client) that speak the protocol.
public enum Role: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case parent = 0
    case ike = 1
    case datapath = 2
    case monitor = 3
    case client = 4

    public var description: String {
        switch self {
        case .parent: return "keywayd"
        case .ike: return "keyway-ike"
        case .datapath: return "keyway-datapath"
        case .monitor: return "keyway-monitor"
        case .client: return "keyway"
        }
    }

    /// The sandboxed children, in start order.
    public static let children: [Role] = [.monitor, .ike, .datapath]

    /// Which children a child talks to directly (DESIGN.md: IKE↔datapath, monitor↔both).
    public var peers: [Role] {
        switch self {
        case .ike: return [.datapath, .monitor]
        case .datapath: return [.ike, .monitor]
        case .monitor: return [.ike, .datapath]
        case .parent, .client: return []
        }
    }
}

/// What a descriptor passed with `FdGrant` is for.
public enum DescriptorKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ikeLink = 1, datapathLink, monitorLink
    case syslog, udp500, udp4500, tun, rawESP, rawAH, control
    /// The --config script, opened read-only by keywayd: seeds an empty configuration store.
    case configScript
    /// The TUN device opened with virtio-net headers, checksum and TCP segmentation offloads on.
    case tunWithOffloads
    /// A raw ICMP socket that passes only "destination unreachable": path MTU discovery.
    case rawICMP

    public static func link(to role: Role) -> DescriptorKind? {
        switch role {
        case .ike: return .ikeLink
        case .datapath: return .datapathLink
        case .monitor: return .monitorLink
        case .parent, .client: return nil
        }
    }

    public var linkedRole: Role? {
        switch self {
        case .ikeLink: return .ike
        case .datapathLink: return .datapath
        case .monitorLink: return .monitor
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .ikeLink: return "link to keyway-ike"
        case .datapathLink: return "link to keyway-datapath"
        case .monitorLink: return "link to keyway-monitor"
        case .syslog: return "syslog socket"
        case .udp500: return "UDP 500"
        case .udp4500: return "UDP 4500"
        case .tun: return "TUN device"
        case .tunWithOffloads: return "TUN device (offloads)"
        case .rawESP: return "raw ESP socket"
        case .rawAH: return "raw AH socket"
        case .control: return "control socket"
        case .configScript: return "configuration script"
        case .rawICMP: return "raw ICMP socket"
        }
    }
}
