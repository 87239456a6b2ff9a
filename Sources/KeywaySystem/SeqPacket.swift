import CKeywayShim
import Glibc
import SystemPackage

/// One datagram received from a SOCK_SEQPACKET socket.
public struct ReceivedDatagram {
    public var bytes: [UInt8]
    public var descriptors: [Descriptor]
    /// The datagram or its control data did not fit and was cut: never trust such a message.
    public var truncated: Bool
}

public enum ReceiveResult {
    case datagram(ReceivedDatagram)
    case wouldBlock
    case closed
}

public enum SeqPacket {
    /// The largest datagram any Keyway channel carries.
    public static let maximumDatagram = 65536

    public static func pair() throws(SystemError) -> (Descriptor, Descriptor) {
        var fds: [Int32] = [-1, -1]
        _ = try retryingEINTR("socketpair") {
            socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
        }
        return (Descriptor(adopting: fds[0]), Descriptor(adopting: fds[1]))
    }

    public static func send(_ socket: Descriptor, _ bytes: [UInt8], descriptors: [Int32] = []) throws(SystemError) {
        try send(raw: socket.raw, bytes, descriptors: descriptors)
    }

    /// The same, on a descriptor someone else owns (a child's link to keywayd, shared with its audit log).
    public static func send(raw socket: Int32, _ bytes: [UInt8], descriptors: [Int32] = []) throws(SystemError) {
        let n = try retryingEINTR("sendmsg") {
            bytes.withUnsafeBytes { p in
                descriptors.withUnsafeBufferPointer { f in
                    kw_send_with_fds(socket, p.baseAddress, p.count, f.baseAddress, Int32(f.count))
                }
            }
        }
        if n != bytes.count { throw SystemError("sendmsg(short)", errno: .messageTooLong) }
    }

    public static func receive(_ socket: Descriptor, dontWait: Bool = true) throws(SystemError) -> ReceiveResult {
        var buffer = [UInt8](repeating: 0, count: maximumDatagram + 1)
        var fds = [Int32](repeating: -1, count: Int(KW_MAX_FDS))
        var count: Int32 = 0
        var flags: Int32 = 0
        var n = -1
        // A unix peer that exits with messages of ours unread leaves ECONNRESET on this end, and
        // recvmsg reports it once, before what the peer sent while it lived: those messages are
        // still queued (a child's last audit lines, say) and the next call reads them.
        for attempt in 0..<2 where n < 0 {
            do {
                n = try retryingEINTR("recvmsg") {
                    buffer.withUnsafeMutableBytes { p in
                        fds.withUnsafeMutableBufferPointer { f in
                            kw_recv_with_fds(socket.raw, p.baseAddress, p.count, f.baseAddress, Int32(f.count),
                                             &count, &flags, dontWait ? 1 : 0)
                        }
                    }
                }
            } catch {
                if error.errno == .wouldBlock { return attempt == 0 ? .wouldBlock : .closed }
                if error.errno == .connectionReset { if attempt == 0 { continue } else { return .closed } }
                throw error
            }
        }
        let received = fds.prefix(Int(count)).map { Descriptor(adopting: $0) }
        if n == 0 && received.isEmpty { return .closed }
        let truncated = n > maximumDatagram || (flags & Int32(MSG_TRUNC)) != 0
            || (flags & Int32(MSG_CTRUNC)) != 0
        buffer.removeLast(buffer.count - min(n, maximumDatagram))
        return .datagram(ReceivedDatagram(bytes: buffer, descriptors: received, truncated: truncated))
    }
}
