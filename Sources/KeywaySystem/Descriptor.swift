import CKeywayShim
import Glibc
import SystemPackage

/// An owned file descriptor, closed when the last reference goes away.
public final class Descriptor: CustomStringConvertible {
    public let raw: Int32
    private var closed = false

    public init(adopting raw: Int32) { self.raw = raw }

    deinit { if !closed { Glibc.close(raw) } }

    public func close() {
        if !closed { closed = true; Glibc.close(raw) }
    }

    /// Gives up ownership without closing (e.g. after dup'ing it into a child).
    public func release() -> Int32 { closed = true; return raw }

    public var description: String { "fd \(raw)" }

    public func setNonBlocking() throws(SystemError) {
        let flags = try retryingEINTR("fcntl(F_GETFL)") { fcntl(raw, F_GETFL) }
        _ = try retryingEINTR("fcntl(F_SETFL)") { fcntl(raw, F_SETFL, flags | O_NONBLOCK) }
    }

    public func write(_ bytes: [UInt8]) throws(SystemError) -> Int {
        try retryingEINTR("write") { bytes.withUnsafeBytes { p in Glibc.write(raw, p.baseAddress, p.count) } }
    }

    /// A non-blocking read into a reused buffer: the byte count, or nil when nothing is waiting.
    public func read(into buffer: inout [UInt8]) -> Int? {
        let n = buffer.withUnsafeMutableBytes { p in Glibc.read(raw, p.baseAddress, p.count) }
        return n >= 0 ? n : nil
    }

    /// Reads up to `max` bytes; an empty result means end of file.
    public func read(max: Int) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = try retryingEINTR("read") {
            buffer.withUnsafeMutableBytes { p in Glibc.read(raw, p.baseAddress, p.count) }
        }
        buffer.removeLast(max - n)
        return buffer
    }
}
