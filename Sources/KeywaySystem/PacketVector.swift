import CKeywayShim
import Glibc

/// recvmmsg and sendmmsg straight into and out of a caller's packet buffer (a PacketPool's
/// bytes): one system call moves up to `capacity` packets, nothing is copied, and nothing is
/// allocated per call (the pointer and length arrays are kept).
public final class PacketVector {
    public let capacity: Int
    private var pointers: [UnsafeMutableRawPointer?]
    private var sizes: [Int]
    private var lengths: [Int]
    private var starts: [Int]
    private var addresses: [UInt32]
    private var ports: [UInt16]
    private var locals: [UInt32]
    private var segmentSizes: [UInt16]
    /// Packets received, or queued for sending.
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = max(1, min(capacity, Int(KW_MAX_BATCH)))
        pointers = Array(repeating: nil, count: self.capacity)
        sizes = Array(repeating: 0, count: self.capacity)
        lengths = Array(repeating: 0, count: self.capacity)
        starts = Array(repeating: 0, count: self.capacity)
        addresses = Array(repeating: 0, count: self.capacity)
        ports = Array(repeating: 0, count: self.capacity)
        locals = Array(repeating: 0, count: self.capacity)
        segmentSizes = Array(repeating: 0, count: self.capacity)
    }

    /// Non-blocking recvmmsg into `buffer` at `slotStarts[i]`, at most `room` bytes each: how
    /// many arrived (0 when none was waiting). `length(i)` and `start(i)` say where each lies.
    public func receive(from fd: Descriptor, into buffer: inout [UInt8], slotStarts: [Int], room: Int) -> Int {
        receiving(into: &buffer, slotStarts: slotStarts, room: room) { slots, sizes, lengths, n in
            kw_recv_batch(fd.raw, slots, sizes, lengths, n)
        }
    }

    /// recvmmsg on a UDP socket (IP_PKTINFO on): as `receive`, and `source(i)`, `sourcePort(i)`
    /// and `local(i)` say who sent each datagram and to which of our addresses. With UDP_GRO on,
    /// `segmentSize(i)` tells how the kernel joined consecutive datagrams into datagram i (each
    /// that long but the last; 0: a single one, as always without UDP_GRO).
    public func receiveUDPCoalesced(from fd: Descriptor, into buffer: inout [UInt8], slotStarts: [Int],
                                    room: Int) -> Int {
        receiving(into: &buffer, slotStarts: slotStarts, room: room) { slots, sizes, lengths, n in
            addresses.withUnsafeMutableBufferPointer { a in
                ports.withUnsafeMutableBufferPointer { o in
                    locals.withUnsafeMutableBufferPointer { loc in
                        segmentSizes.withUnsafeMutableBufferPointer { g in
                            kw_recv_udp_gro(fd.raw, slots, sizes, lengths, a.baseAddress, o.baseAddress,
                                            loc.baseAddress, g.baseAddress, n)
                        }
                    }
                }
            }
        }
    }

    /// Points the slots into `buffer` (none may run past it) and runs one recvmmsg `body` on the
    /// slot, size and length arrays; `count` becomes how many arrived.
    private func receiving(into buffer: inout [UInt8], slotStarts: [Int], room: Int,
                           _ body: (UnsafePointer<UnsafeMutableRawPointer?>, UnsafePointer<Int>,
                                    UnsafeMutablePointer<Int>, Int32) -> Int32) -> Int {
        let n = min(capacity, slotStarts.count)
        for i in 0..<n where slotStarts[i] < 0 || slotStarts[i] + room > buffer.count { count = 0; return 0 }
        let received = buffer.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -1 }
            for i in 0..<n { pointers[i] = base + slotStarts[i]; sizes[i] = room; starts[i] = slotStarts[i] }
            return pointers.withUnsafeBufferPointer { p in
                sizes.withUnsafeBufferPointer { s in
                    lengths.withUnsafeMutableBufferPointer { l in
                        guard let pb = p.baseAddress, let sb = s.baseAddress, let lb = l.baseAddress else { return -1 }
                        return UnsafeRawPointer(pb).withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: n) {
                            body($0, sb, lb, Int32(n))
                        }
                    }
                }
            }
        }
        count = received > 0 ? Int(received) : 0
        return count
    }

    public func segmentSize(_ i: Int) -> Int { i >= 0 && i < count ? Int(segmentSizes[i]) : 0 }

    public func source(_ i: Int) -> UInt32 { i >= 0 && i < count ? addresses[i] : 0 }
    public func sourcePort(_ i: Int) -> UInt16 { i >= 0 && i < count ? ports[i] : 0 }
    public func local(_ i: Int) -> UInt32 { i >= 0 && i < count ? locals[i] : 0 }

    public func start(_ i: Int) -> Int { i >= 0 && i < count ? starts[i] : 0 }
    public func length(_ i: Int) -> Int { i >= 0 && i < count ? lengths[i] : 0 }

    /// Queues `buffer[start..<start+length]` for `destination`:`port`; false when full.
    public func append(start: Int, length: Int, to destination: UInt32, port: UInt16 = 0) -> Bool {
        guard count < capacity, start >= 0, length >= 0 else { return false }
        starts[count] = start; lengths[count] = length
        addresses[count] = destination.bigEndian; ports[count] = port.bigEndian; locals[count] = 0
        count += 1
        return true
    }

    /// Queues a UDP datagram (`buffer[start..<start+length]`) to `destination`:`port` from our
    /// address `source` (host order; 0: the kernel picks by route).
    public func append(start: Int, length: Int, to destination: UInt32, port: UInt16, from source: UInt32) -> Bool {
        guard append(start: start, length: length, to: destination, port: port) else { return false }
        locals[count - 1] = source.bigEndian
        return true
    }

    /// What a UDP send did: packets the kernel refused, and whether it refused segmentation
    /// itself (the route's device cannot segment UDP; send unsegmented from then on).
    public struct UDPSendResult: Equatable {
        public var refused: Int
        public var segmentationRefused: Bool
        /// Messages the kernel took (fewer than the packets when it segments them).
        public var messages: Int
    }

    /// sendmmsg on a UDP socket, each datagram from the source it was queued with (IP_PKTINFO).
    /// With `segmenting`, consecutive datagrams to one destination of one size go as one message
    /// the kernel cuts apart (UDP_SEGMENT). Full buffers drop the rest, as `send` does.
    @discardableResult
    public func sendUDP(on fd: Descriptor, from buffer: [UInt8], segmenting: Bool) -> UDPSendResult {
        defer { count = 0 }
        var sent = 0, refused = 0, segmentationRefused = false, messages = 0
        let pointed = pointingInto(buffer) {
            var oversized = false
            for _ in 0..<(2 * capacity) where sent + refused < count {
                let first = sent + refused
                var packets: Int32 = 0
                let segment: Int32 = segmenting && !segmentationRefused && !oversized ? 1 : 0
                let n = withVectors(from: first) { slots, lengths, addresses, ports, sources, remaining in
                    kw_send_udp_vector(fd.raw, slots, lengths, addresses, ports, sources, remaining, segment, &packets)
                }
                if n > 0 { sent += Int(packets); messages += Int(n); continue }
                if errno == EAGAIN || errno == ENOBUFS { break }
                // EIO: the device cannot segment; the same packets go again one by one.
                if segment == 1 && errno == EIO { segmentationRefused = true; continue }
                // EINVAL: segments larger than the interface's MTU (a fixed TUN MTU above it), which
                // the kernel fragments only when they go one by one: this flush's rest does.
                if segment == 1 && (errno == EINVAL || errno == EMSGSIZE) { oversized = true; continue }
                refused += 1
            }
        }
        guard pointed else { return UDPSendResult(refused: count, segmentationRefused: false, messages: 0) }
        return UDPSendResult(refused: count - sent, segmentationRefused: segmentationRefused, messages: messages)
    }

    /// Points each queued packet into `buffer` and runs `body` while the pointers are valid; false
    /// (and `body` not run) when a queued packet lies beyond the buffer.
    private func pointingInto(_ buffer: [UInt8], _ body: () -> Void) -> Bool {
        for i in 0..<count where starts[i] + lengths[i] > buffer.count { return false }
        return buffer.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return false }
            for i in 0..<count { pointers[i] = UnsafeMutableRawPointer(mutating: base + starts[i]) }
            body()
            return true
        }
    }

    /// The arrays of the queued packets from `first` on, as sendmmsg's shims take them.
    private func withVectors(from first: Int,
                             _ body: (UnsafePointer<UnsafeRawPointer?>, UnsafePointer<Int>, UnsafePointer<UInt32>,
                                      UnsafePointer<UInt16>, UnsafePointer<UInt32>, Int32) -> Int32) -> Int32 {
        pointers.withUnsafeBufferPointer { p in
            lengths.withUnsafeBufferPointer { l in
                addresses.withUnsafeBufferPointer { a in
                    ports.withUnsafeBufferPointer { o in
                        locals.withUnsafeBufferPointer { s -> Int32 in
                            guard let pb = p.baseAddress, let lb = l.baseAddress, let ab = a.baseAddress,
                                  let ob = o.baseAddress, let sb = s.baseAddress else { return -1 }
                            let remaining = count - first
                            return UnsafeRawPointer(pb + first).withMemoryRebound(to: UnsafeRawPointer?.self,
                                                                                  capacity: remaining) {
                                body($0, lb + first, ab + first, ob + first, sb + first, Int32(remaining))
                            }
                        }
                    }
                }
            }
        }
    }

    /// sendmmsg of everything queued from `buffer`; returns how many packets the kernel refused.
    /// A full socket buffer drops the rest rather than blocking the datapath; a packet refused for
    /// its own sake (no route) is skipped so it does not hold back the others.
    @discardableResult
    public func send(on fd: Descriptor, from buffer: [UInt8]) -> Int {
        defer { count = 0 }
        var sent = 0, refused = 0
        let pointed = pointingInto(buffer) {
            for _ in 0..<(2 * capacity) where sent + refused < count {
                let n = withVectors(from: sent + refused) { slots, lengths, addresses, ports, _, remaining in
                    kw_send_batch(fd.raw, slots, lengths, addresses, ports, remaining)
                }
                if n > 0 { sent += Int(n); continue }
                if errno == EAGAIN || errno == ENOBUFS { break }
                refused += 1
            }
        }
        return pointed ? count - sent : count
    }
}

extension Tun {
    /// Opens the TUN device with virtio-net headers and asks for checksum and TCP segmentation
    /// offloads; nil offloads when the kernel refuses them (the device is then opened plainly).
    public static func openWithOffloads(name: String) throws(SystemError) -> (Descriptor, String, offloads: [String]) {
        var actual = [CChar](repeating: 0, count: 16)
        let fd = kw_tun_open_vnet(name, &actual, 1)
        if fd >= 0 {
            // IPv4 only: the datapath carries no IPv6 yet, so TSO6 super-packets would only be dropped.
            let wanted = UInt32(KW_TUN_F_CSUM | KW_TUN_F_TSO4)
            if kw_tun_set_offload(fd, wanted) == 0 {
                let realName = String(decoding: actual.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) },
                                      as: UTF8.self)
                return (Descriptor(adopting: fd), realName, ["csum", "tso4", "gro"])
            }
            close(fd)
        }
        let (plain, realName) = try open(name: name)
        return (plain, realName, [])
    }
}

extension PacketIO {
    /// One non-blocking read into `buffer[offset...]`, at most `maximum` bytes; nil when nothing waits.
    public static func read(_ fd: Descriptor, into buffer: inout [UInt8], at offset: Int, maximum: Int) -> Int? {
        guard offset >= 0, maximum > 0, offset + maximum <= buffer.count else { return nil }
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return -1 }
            return Glibc.read(fd.raw, base + offset, maximum)
        }
        return n >= 0 ? n : nil
    }

    /// One write of `buffer[offset..<offset+count]`; false when the kernel refused it.
    public static func write(_ fd: Descriptor, _ buffer: [UInt8], at offset: Int, count: Int) -> Bool {
        guard offset >= 0, count >= 0, offset + count <= buffer.count else { return false }
        let n = buffer.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress else { return -1 }
            return Glibc.write(fd.raw, base + offset, count)
        }
        return n == count
    }
}

/// Reads and writes of whole packets on descriptors (TUN).
public enum PacketIO {}
