import KeywayCrypto

/// Receive offload for the TUN device, our side (sans-IO): consecutive TCP/IPv4 segments of one
/// flow in a batch of decrypted packets become one super-packet written with a GSO header, so the
/// kernel's TCP stack handles one packet where it would have handled dozens. The rules are the
/// kernel's own GRO rules: same addresses, ports and acknowledgement, adjacent sequence numbers,
/// identical TCP options and IP fields, only ACK (and PSH on the last) set, every segment but the
/// last of the same size, valid checksums, at most 64 KiB.
public struct TCPCoalescer: Sendable {
    /// Flows coalesced at once; a further one closes the oldest.
    public static let maximumRuns = 8
    static let regionSize = VirtioNetHeader.size + 65_535

    /// What to write to the TUN device, in order: `length` bytes at `start` of the pool (a packet
    /// no run takes, VirtioNetHeader.size bytes before it free for a zero header) or of `output`
    /// (a run, one packet or a super-packet, its header already in the bytes before it).
    public enum Write: Equatable, Sendable {
        case pool(start: Int, length: Int)
        case coalesced(start: Int, length: Int)
    }

    struct FlowKey: Equatable {
        var source: UInt32, destination: UInt32, ports: UInt32, acknowledgement: UInt32
    }

    struct Run {
        var key: FlowKey
        var region: Int
        var length: Int
        var segments: Int
        var nextSequence: UInt32
        var segmentSize: Int
        var headers: Int
        var closed: Bool
    }

    /// Super-packets are built here, each in a region with room for its header.
    public private(set) var output: [UInt8]
    private var runs: [Run] = []
    private var freeRegions: [Int]
    public private(set) var coalescedSegments: UInt64 = 0

    public init() {
        output = [UInt8](repeating: 0, count: Self.maximumRuns * Self.regionSize)
        freeRegions = Array(0..<Self.maximumRuns)
        runs.reserveCapacity(Self.maximumRuns)
    }

    /// Offers the decrypted packet at `pool.bytes[start..<start+length]`; `emit` receives what must
    /// be written before it can go on (a run it closes, or the packet itself when it joins none).
    public mutating func offer(_ pool: inout PacketPool, start: Int, length: Int,
                               emit: (Write, inout PacketPool, [UInt8]) -> Void) {
        guard let segment = Segment(pool.bytes, start: start, length: length) else {
            emit(.pool(start: start, length: length), &pool, output)
            return
        }
        if let i = runs.firstIndex(where: { $0.key == segment.key }) {
            if join(i, segment, &pool, start: start) { return }
            let run = runs.remove(at: i)
            finish(run, &pool, emit)
        }
        guard segment.coalescible else {
            emit(.pool(start: start, length: length), &pool, output)
            return
        }
        if freeRegions.isEmpty {
            finish(runs.removeFirst(), &pool, emit)
        }
        let region = freeRegions.removeLast()
        // The run's first packet moves to its region at once: nothing pending points into the pool,
        // whose bytes the next packet may overwrite (segments of one UDP GRO datagram lie back to back).
        PacketBytes.copy(pool.bytes, from: start, into: &output, at: region * Self.regionSize + VirtioNetHeader.size,
                         count: length)
        runs.append(Run(key: segment.key, region: region, length: length, segments: 1,
                        nextSequence: segment.sequence &+ UInt32(segment.payload), segmentSize: segment.payload,
                        headers: segment.headers, closed: segment.push || segment.payload == 0))
    }

    /// Everything still open, written out (at the end of a batch).
    public mutating func flush(_ pool: inout PacketPool, emit: (Write, inout PacketPool, [UInt8]) -> Void) {
        for run in runs { finish(run, &pool, emit) }
        runs.removeAll(keepingCapacity: true)
    }

    private mutating func join(_ i: Int, _ s: Segment, _ pool: inout PacketPool, start: Int) -> Bool {
        let run = runs[i]
        guard !run.closed, s.coalescible, s.sequence == run.nextSequence, s.headers == run.headers, s.payload > 0,
              s.payload <= run.segmentSize, run.length + s.payload <= 65_535 else { return false }
        let base = run.region * Self.regionSize + VirtioNetHeader.size
        // Headers (IP fields that matter and TCP options) must equal the first segment's.
        guard Self.sameHeaders(pool.bytes, start, output, base, ipHeader: 20, headers: s.headers) else { return false }
        PacketBytes.copy(pool.bytes, from: start + s.headers, into: &output, at: base + run.length, count: s.payload)
        runs[i].length += s.payload
        runs[i].segments += 1
        runs[i].nextSequence = s.sequence &+ UInt32(s.payload)
        // A shorter segment or PSH ends a run; PSH is carried on the super-packet.
        if s.payload < run.segmentSize || s.push {
            runs[i].closed = true
            if s.push { output[base + 20 + 13] |= TCPSegmentation.tcpPSH }
        }
        coalescedSegments += 1
        return true
    }

    private mutating func finish(_ run: Run, _ pool: inout PacketPool,
                                 _ emit: (Write, inout PacketPool, [UInt8]) -> Void) {
        freeRegions.append(run.region)
        let base = run.region * Self.regionSize + VirtioNetHeader.size
        guard run.segments > 1 else {
            VirtioNetHeader().write(into: &output, at: base - VirtioNetHeader.size)
            emit(.coalesced(start: base, length: run.length), &pool, output)
            return
        }
        IPv4Header.put16(&output, base + 2, UInt16(run.length))
        IPv4Header.setChecksum(&output, headerAt: base, length: 20)
        // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; the kernel completes it per segment.
        let source = IPv4Header.u32(output, base + 12), destination = IPv4Header.u32(output, base + 16)
        let pseudo = InternetChecksum.pseudoHeader(source: source, destination: destination, proto: 6,
                                                   length: run.length - 20)
        IPv4Header.put16(&output, base + 20 + 16, UInt16(pseudo))
        VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.Segmentation.tcpv4.rawValue,
                        headerLength: UInt16(run.headers), gsoSize: UInt16(run.segmentSize), checksumStart: 20,
                        checksumOffset: 16).write(into: &output, at: base - VirtioNetHeader.size)
        emit(.coalesced(start: base, length: run.length), &pool, output)
    }

    /// IP TOS, TTL and flags, and the TCP header from the data offset on (flags aside), as in the
    /// first segment; sequence, acknowledgement (part of the key), checksum and window may differ.
    static func sameHeaders(_ a: [UInt8], _ aStart: Int, _ b: [UInt8], _ bStart: Int, ipHeader: Int,
                            headers: Int) -> Bool {
        guard a[aStart + 1] == b[bStart + 1], a[aStart + 8] == b[bStart + 8],
              a[aStart + 6] & 0xe0 == b[bStart + 6] & 0xe0 else {
            return false
        }
        let t = ipHeader
        guard a[aStart + t + 12] == b[bStart + t + 12] else { return false }
        for k in (t + 20)..<headers where a[aStart + k] != b[bStart + k] { return false }
        return true
    }

    /// What GRO needs to know of one packet; nil for anything but TCP/IPv4.
    struct Segment {
        let key: FlowKey
        let sequence: UInt32
        let headers: Int
        let payload: Int
        let push: Bool
        let coalescible: Bool

        init?(_ p: [UInt8], start: Int, length: Int) {
            guard let ip = try? IPv4Header(p, at: start, length: length), ip.proto == 6, !ip.isFragment,
                  ip.totalLength == length, length >= ip.headerLength + 20 else { return nil }
            let t = start + ip.headerLength
            let tcpHeader = Int(p[t + 12] >> 4) * 4
            guard tcpHeader >= 20, ip.headerLength + tcpHeader <= length else { return nil }
            key = FlowKey(source: ip.source, destination: ip.destination, ports: IPv4Header.u32(p, t),
                          acknowledgement: IPv4Header.u32(p, t + 8))
            sequence = IPv4Header.u32(p, t + 4)
            headers = ip.headerLength + tcpHeader
            payload = length - headers
            let flags = p[t + 13]
            push = flags & TCPSegmentation.tcpPSH != 0
            // No IP options, only ACK (and PSH), a valid IP and TCP checksum.
            coalescible = ip.headerLength == 20 && flags & ~(TCPSegmentation.tcpACK | TCPSegmentation.tcpPSH) == 0
                && flags & TCPSegmentation.tcpACK != 0
                && InternetChecksum.sum(p, start: start, count: 20) == 0xffff
                && TCPSegmentation.tcpChecksumValid(p, ipStart: start, ipHeader: 20, total: length, source: ip.source,
                                                    destination: ip.destination)
        }
    }
}
