import CKeywayShim
import Glibc

/// A fixed set of packet slots for recvmmsg/sendmmsg: one system call moves up to `capacity`
/// datagrams. Memory is allocated once; packets are copied into and out of the slots.
public final class PacketBatch {
    public let capacity: Int
    public let slotSize: Int
    private let storage: UnsafeMutableRawPointer
    private var slots: [UnsafeMutableRawPointer?]
    private var capacities: [Int]
    private var lengths: [Int]
    private var addresses: [UInt32]
    private var ports: [UInt16]
    /// Received packets, or packets queued for sending.
    public private(set) var count = 0

    public init(capacity: Int = 64, slotSize: Int = 65536) {
        self.capacity = max(1, min(capacity, Int(KW_MAX_BATCH)))
        self.slotSize = slotSize
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * slotSize, alignment: 16)
        slots = (0..<self.capacity).map { [storage, slotSize] in storage + $0 * slotSize }
        capacities = [Int](repeating: slotSize, count: self.capacity)
        lengths = [Int](repeating: 0, count: self.capacity)
        addresses = [UInt32](repeating: 0, count: self.capacity)
        ports = [UInt16](repeating: 0, count: self.capacity)
    }

    deinit { storage.deallocate() }

    /// Non-blocking recvmmsg: how many datagrams arrived (0 when none was waiting).
    public func receive(from fd: Descriptor) -> Int {
        let n = slots.withUnsafeBufferPointer { s in
            capacities.withUnsafeBufferPointer { c in
                lengths.withUnsafeMutableBufferPointer { l in
                    kw_recv_batch(fd.raw, s.baseAddress, c.baseAddress, l.baseAddress, Int32(capacity))
                }
            }
        }
        count = n > 0 ? Int(n) : 0
        return count
    }

    /// A copy of received packet `i`.
    public func packet(_ i: Int) -> [UInt8] {
        guard i >= 0, i < count, let slot = slots[i] else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: slot, count: lengths[i]))
    }

    /// Queues a packet for `send`; false when the batch is full or the packet too large.
    public func append(_ bytes: [UInt8], to address: UInt32, port: UInt16 = 0) -> Bool {
        guard count < capacity, bytes.count <= slotSize, let slot = slots[count] else { return false }
        bytes.withUnsafeBytes { p in if let base = p.baseAddress { slot.copyMemory(from: base, byteCount: p.count) } }
        lengths[count] = bytes.count
        addresses[count] = address.bigEndian
        ports[count] = port.bigEndian
        count += 1
        return true
    }

    private func sendFrom(_ start: Int, on fd: Descriptor) -> Int32 {
        let remaining = Int32(count - start)
        return slots.withUnsafeBufferPointer { s in
            lengths.withUnsafeBufferPointer { l in
                addresses.withUnsafeBufferPointer { a in
                    ports.withUnsafeBufferPointer { p in
                        guard let sb = s.baseAddress, let lb = l.baseAddress, let ab = a.baseAddress, let pb = p.baseAddress else { return -1 }
                        return UnsafeRawPointer(sb + start).withMemoryRebound(to: UnsafeRawPointer?.self, capacity: Int(remaining)) { raw in
                            kw_send_batch(fd.raw, raw, lb + start, ab + start, pb + start, remaining)
                        }
                    }
                }
            }
        }
    }

    /// sendmmsg of everything queued; returns how many packets the kernel refused. A full socket
    /// buffer drops the rest of the batch rather than blocking the datapath; a packet refused
    /// for its own sake (no route) is skipped so it does not hold back the others.
    @discardableResult
    public func send(on fd: Descriptor) -> Int {
        var sent = 0, refused = 0
        for _ in 0..<(2 * capacity) where sent + refused < count {
            let start = sent + refused
            let n = sendFrom(start, on: fd)
            if n > 0 { sent += Int(n); continue }
            if errno == EAGAIN || errno == ENOBUFS { break }
            refused += 1
        }
        let dropped = count - sent
        count = 0
        return dropped
    }
}
