import KeywayVocabulary
import KeywayCrypto


/// Soft and hard limits; soft defaults to 80% of hard (RouterOS shows e.g. add-lifetime=24m/30m).
/// Add-lifetimes count from installation, use-lifetimes from the first packet.
public struct Lifetime: Equatable, Sendable {
    public var hardSeconds: UInt64? { get { Self.limit(hs) } set { hs = newValue ?? .max } }
    public var softSeconds: UInt64? { get { Self.limit(ss) } set { ss = newValue ?? .max } }
    public var hardBytes: UInt64? { get { Self.limit(hb) } set { hb = newValue ?? .max } }
    public var softBytes: UInt64? { get { Self.limit(sb) } set { sb = newValue ?? .max } }
    public var useHardSeconds: UInt64? { get { Self.limit(uhs) } set { uhs = newValue ?? .max } }
    public var useSoftSeconds: UInt64? { get { Self.limit(uss) } set { uss = newValue ?? .max } }

    // Six plain words, UInt64.max for "no limit" (never reached): an SA held six optionals, 48
    // bytes more, and there may be 20,000 of them.
    private var hs: UInt64 = .max, ss: UInt64 = .max, hb: UInt64 = .max, sb: UInt64 = .max
    private var uhs: UInt64 = .max, uss: UInt64 = .max
    private static func limit(_ v: UInt64) -> UInt64? { v == .max ? nil : v }

    public init(hardSeconds: UInt64? = nil, hardBytes: UInt64? = nil, softSeconds: UInt64? = nil,
                softBytes: UInt64? = nil,
                useHardSeconds: UInt64? = nil, useSoftSeconds: UInt64? = nil) {
        self.hardSeconds = hardSeconds
        self.hardBytes = hardBytes
        self.softSeconds = softSeconds ?? hardSeconds.map(\.eightyPercent)
        self.softBytes = softBytes ?? hardBytes.map(\.eightyPercent)
        self.useHardSeconds = useHardSeconds
        self.useSoftSeconds = useSoftSeconds ?? useHardSeconds.map(\.eightyPercent)
    }
}

public enum SAState: String, Sendable { case larval, mature, dying, dead }

/// One direction of an IPsec SA, keyed once; time is always passed in (seconds, any epoch).
public final class SecurityAssociation {
    public let spi: UInt32
    public let proto: IPsecProtocol
    public let source: UInt32
    public let destination: UInt32
    public let tunnel: Bool
    public let esp: ESPTransform?
    public let ah: AHTransform?
    public let lifetime: Lifetime
    public let addTime: UInt64
    public private(set) var firstUse: UInt64?
    public private(set) var state: SAState = .mature
    public private(set) var bytes: UInt64 = 0
    public private(set) var packets: UInt64 = 0
    public var replay: ReplayWindow
    /// ESP in UDP (RFC 3948): our port and the peer's.
    public let udpEncapsulation: (local: UInt16, remote: UInt16)?
    /// Outbound: the last sequence number sent.
    public private(set) var sequence: UInt32 = 0

    public init(spi: UInt32, proto: IPsecProtocol, source: UInt32, destination: UInt32, tunnel: Bool,
                esp: ESPTransform? = nil, ah: AHTransform? = nil, lifetime: Lifetime = Lifetime(),
                replayWindow: UInt32 = 32,
                initialSequence: UInt32 = 0, udpEncapsulation: (local: UInt16, remote: UInt16)? = nil, now: UInt64) {
        self.udpEncapsulation = udpEncapsulation
        self.spi = spi; self.proto = proto; self.source = source; self.destination = destination; self.tunnel = tunnel
        self.sequence = initialSequence
        self.esp = esp; self.ah = ah; self.lifetime = lifetime; self.addTime = now
        self.replay = ReplayWindow(size: replayWindow)
    }

    /// The next outbound sequence number, or nil when the 32-bit space is spent (RFC 4303 3.3.3:
    /// never wrap; the SA must be replaced).
    public func nextSequence() -> UInt32? {
        guard sequence < UInt32.max, state != .dead else { return nil }
        sequence += 1
        if sequence == UInt32.max - (UInt32.max / 10) && state == .mature { state = .dying }
        return sequence
    }

    public enum Event: Equatable, Sendable { case soft, hard }

    /// Accounts a processed packet; returns an expiry event if this crossed a limit.
    public func account(bytes n: Int, now: UInt64) -> Event? {
        if firstUse == nil { firstUse = now }
        bytes += UInt64(n)
        packets += 1
        return check(now: now)
    }

    /// Time- and byte-based expiry. Called per packet and from the periodic timer.
    public func check(now: UInt64) -> Event? {
        let age = now >= addTime ? now - addTime : 0
        // Unused SAs have no use-age: their use-lifetime has not started.
        let useAge = firstUse.map { now >= $0 ? now - $0 : 0 }
        func reached(_ limit: UInt64?, _ value: UInt64?) -> Bool {
            guard let limit, let value else { return false }
            return value >= limit
        }
        if state != .dead, reached(lifetime.hardSeconds, age) || reached(lifetime.hardBytes, bytes)
                           || reached(lifetime.useHardSeconds, useAge) {
            state = .dead
            return .hard
        }
        if state == .mature, reached(lifetime.softSeconds, age) || reached(lifetime.softBytes, bytes)
                             || reached(lifetime.useSoftSeconds, useAge) {
            state = .dying
            return .soft
        }
        return nil
    }
}
