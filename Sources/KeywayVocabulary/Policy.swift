/// `/ip ipsec policy action`.
public enum PolicyAction: String, Sendable, CaseIterable {
    case none, discard, encrypt
}

/// `/ip ipsec policy level`: what happens when a policy has no SA.
public enum PolicyLevel: String, Sendable, CaseIterable {
    /// Send in plaintext (optional protection).
    case use
    /// Drop and ask IKE for SAs.
    case require
    /// As require, with SAs of its own.
    case unique
}

/// `/ip ipsec policy dont-fragment`: the outer header's DF bit in tunnel mode.
public enum DontFragment: String, Sendable, CaseIterable {
    case clear, inherit, set
}

/// The IPsec protocols, by IP protocol number.
public enum IPsecProtocol: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case esp = 50
    case ah = 51

    public var description: String { self == .esp ? "esp" : "ah" }
}

/// IP protocol names as RouterOS accepts them.
public enum IPProtocolNames {
    public static let byName: [String: UInt8] = ["icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "udp": 17, "gre": 47,
                                                 "ipsec-esp": 50, "ipsec-ah": 51, "icmpv6": 58, "ospf": 89, "sctp": 132]
}

/// `/ip ipsec peer exchange-mode`: the IKEv1 phase 1 exchanges, or IKEv2 (RouterOS v6+: `ike2`).
public enum ExchangeMode: String, Sendable, CaseIterable {
    case main, aggressive, base, ike2
}

/// `/ip ipsec peer proposal-check`: what a phase 2 lifetime mismatch means.
public enum ProposalCheck: String, Sendable, CaseIterable {
    case claim, exact, obey, strict
}
