/// A request from another process that the configuration does not allow. It changes nothing; the
/// receiver audits it naming the sender's role and this reason, and counts it.
public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}
