import KeywayVocabulary

/// Who may hold connections on the control socket, and for how long, so that no local user can
/// keep root and group `keyway` out. Pure: the caller's identity and the loop's clock come in.
///
/// - A caller with no access is refused at once (its reason written, the socket closed); it never
///   counts toward any limit.
/// - Connections in all, and per uid (root excepted), are limited; operators who may only look
///   can never take the slots kept for administrators.
/// - A connection silent for `idleTimeout` is closed.
public struct ControlAdmission: Sendable {
    public enum Access: Sendable, Equatable {
        /// root and group keyway: may change the configuration.
        case administrator
        /// group keyway-read: may only look.
        case reader
        case noAccess
    }

    public struct Limits: Sendable, Equatable {
        /// Connections at once, in all.
        public var capacity: Int
        /// Connections at once from one uid (root has no limit of its own).
        public var perUID: Int
        /// Slots readers can never take, whatever they hold.
        public var reservedForAdministrators: Int
        /// A connection that sent nothing for this long (nanoseconds) is closed.
        public var idleTimeout: UInt64

        public init(capacity: Int, perUID: Int, reservedForAdministrators: Int, idleTimeout: UInt64) {
            self.capacity = capacity
            self.perUID = perUID
            self.reservedForAdministrators = max(1, min(reservedForAdministrators, capacity))
            self.idleTimeout = idleTimeout
        }

        /// 64 connections, 8 per uid, 8 kept for administrators, closed after 15 minutes of silence
        /// (the interactive console reconnects once, transparently, when it finds its connection closed).
        public static let standard = Limits(capacity: 64, perUID: 8, reservedForAdministrators: 8,
                                            idleTimeout: 15 * 60 * 1_000_000_000)
    }

    public enum Decision: Sendable, Equatable {
        case admit
        /// Write this reason to the caller and close the connection at once.
        case refuse(String)
    }

    struct Connection: Sendable {
        let uid: UInt32
        let access: Access
        var lastActivity: UInt64
    }

    public let limits: Limits
    private var connections: [Int32: Connection] = [:]

    public init(limits: Limits = .standard) { self.limits = limits }

    public var count: Int { connections.count }

    /// Decides on a new connection (identified by its descriptor) from `uid` with `access`, at `now`.
    public mutating func admit(_ id: Int32, uid: UInt32, access: Access, now: UInt64) -> Decision {
        connections[id] = nil    // a reused descriptor is a new connection
        guard access != .noAccess else {
            return .refuse("permission denied: uid \(uid) is not root and not in group keyway or keyway-read")
        }
        guard connections.count < limits.capacity else {
            return .refuse("too many control connections (\(limits.capacity) at once); try again later")
        }
        if access == .reader {
            let readers = connections.values.filter { $0.access == .reader }.count
            guard readers < limits.capacity - limits.reservedForAdministrators else {
                return .refuse("too many control connections from read-only operators; "
                               + "the other \(limits.reservedForAdministrators) are kept for administrators")
            }
        }
        if uid != 0 {
            let mine = connections.values.filter { $0.uid == uid }.count
            guard mine < limits.perUID else {
                return .refuse("too many control connections from uid \(uid) (at most \(limits.perUID) at once); "
                               + "close one and try again")
            }
        }
        connections[id] = Connection(uid: uid, access: access, lastActivity: now)
        return .admit
    }

    /// The connection sent something.
    public mutating func activity(_ id: Int32, now: UInt64) {
        connections[id]?.lastActivity = now
    }

    /// The connection is gone (closed by either side).
    public mutating func remove(_ id: Int32) {
        connections[id] = nil
    }

    /// Connections silent for the idle timeout at `now`, to be closed.
    public func idle(now: UInt64) -> [Int32] {
        connections.filter { now >= $0.value.lastActivity && now - $0.value.lastActivity >= limits.idleTimeout }
            .keys.sorted()
    }

    /// When the next connection falls idle, if any.
    public var nextIdleDeadline: UInt64? {
        connections.values.map { $0.lastActivity.saturatingAdd(limits.idleTimeout) }.min()
    }
}
