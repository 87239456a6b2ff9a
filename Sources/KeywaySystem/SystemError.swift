import Glibc
import SystemPackage

/// A failed system call: which call, and the errno it returned.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Errno

    public init(_ call: String, errno: Errno) {
        self.call = call
        self.errno = errno
    }

    /// The current thread's errno, captured right after a failing call.
    public static func last(_ call: String) -> SystemError {
        SystemError(call, errno: Errno(rawValue: Glibc.errno))
    }

    public var description: String { "\(call): \(errno)" }
}

/// Runs a call that returns -1 on failure, retrying on EINTR.
@inline(__always)
public func retryingEINTR<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let e = Glibc.errno
        if e == EINTR { continue }
        throw SystemError(call, errno: Errno(rawValue: e))
    }
}
