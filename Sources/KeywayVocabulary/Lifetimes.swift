/// A span of whole seconds. Conversions and arithmetic saturate instead of trapping, so no
/// configured or peer-supplied value can overflow a process.
public struct Seconds: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// The longest lifetime Keyway configures, accepts from a peer or installs: one week.
    public static let maximumLifetime = Seconds(604_800)

    public var milliseconds: UInt64 {
        let (ms, overflow) = value.multipliedReportingOverflow(by: 1000)
        return overflow ? .max : ms
    }

    /// The soft limit of a hard lifetime (RouterOS: 80%), computed without overflow.
    public var eightyPercent: Seconds { Seconds(value / 10 * 8 + value % 10 * 8 / 10) }

    /// At most `limit`.
    public func capped(at limit: Seconds) -> Seconds { self < limit ? self : limit }

    public static func < (a: Seconds, b: Seconds) -> Bool { a.value < b.value }

    public var description: String { "\(value)s" }
}

extension UInt64 {
    /// `self + other`, or UInt64.max where that would overflow (deadlines far in the future).
    public func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// 80% of a count (soft byte limits), without overflow.
    public var eightyPercent: UInt64 { self / 10 * 8 + self % 10 * 8 / 10 }
}
