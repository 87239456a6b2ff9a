import KeywayCrypto

/// Why an ESP packet was dropped, named by the statistics counter it bumps.
public enum DatapathDrop: Error, Equatable, Sendable {
    case header            // in-header-errors
    case noState           // in-no-states: unknown SPI
    case replay            // in-state-sequence-errors
    case integrity         // in-state-protocol-errors: ICV failed
    case padding           // in-state-protocol-errors: bad padding or next header
    case expired           // in-state-expired / out-state-expired
    case mode              // in-state-mode-errors: tunnel/transport mismatch
    case sequenceExhausted // out-state-sequence-errors

    public var counter: String {
        switch self {
        case .header: return "in-header-errors"
        case .noState: return "in-no-states"
        case .replay: return "in-state-sequence-errors"
        case .integrity, .padding: return "in-state-protocol-errors"
        case .expired: return "in-state-expired"
        case .mode: return "in-state-mode-errors"
        case .sequenceExhausted: return "out-state-sequence-errors"
        }
    }
}

/// Room a buffer keeps before and after a packet so that ESP or AH can be applied in place:
/// outer IPv4 header, ESP header and IV (or AH) before; padding, trailer and ICV after.
public enum PacketRoom {
    public static let headroom = 96
    public static let tailroom = 96
}

/// ESP (RFC 4303) in transport and tunnel mode over IPv4. Sans-IO, in place: a packet is sealed
/// and opened where it lies in a buffer, with no allocation (the headroom and tailroom around it
/// take the headers and the trailer).
public enum ESPCodec {
    static let headerLength = 8

    /// Seals the IPv4 packet at `buffer[start..<start+length]` in place. Transport mode moves the
    /// inner header back into the headroom (its protocol becomes 50); tunnel mode writes a new
    /// header from the SA's addresses there. Returns where the outer packet now lies. An outer
    /// header Keyway writes takes `identification` when given (one that may be fragmented must
    /// not reuse an inner packet's), else the inner packet's.
    public static func seal(_ buffer: inout [UInt8], start: Int, length: Int, sa: SecurityAssociation,
                            explicitIV: [UInt8]? = nil,
                            ttl: UInt8 = 64, dontFragment: Bool = false,
                            identification: UInt16? = nil) throws(DatapathDrop) -> (start: Int, length: Int) {
        guard let esp = sa.esp else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(buffer, at: start, length: length) } catch { throw .header }
        let (payloadStart, nextHeader): (Int, UInt8) = sa.tunnel ? (start, 4) : (start + ip.headerLength, ip.proto)
        let payload = ip.totalLength - (payloadStart - start)
        // Payload + pad + pad length + next header, aligned as the cipher needs.
        let padded = (payload + 2 + esp.alignment - 1) / esp.alignment * esp.alignment
        let padLength = padded - payload - 2
        let outerHeader = sa.tunnel ? 20 : ip.headerLength
        let espStart = payloadStart - headerLength - esp.ivLength
        let outerStart = espStart - outerHeader
        let espLength = headerLength + esp.ivLength + padded + esp.icvLength
        guard outerStart >= 0, espStart + espLength <= buffer.count else { throw .header }
        guard let seq = sa.nextSequence() else { throw .sequenceExhausted }
        if sa.tunnel {
            IPv4Header.write(into: &buffer, at: outerStart, tos: ip.tos, totalLength: outerHeader + espLength,
                             identification: identification ?? ip.identification,
                             flagsAndOffset: dontFragment ? 0x4000 : 0,
                             ttl: ttl, proto: 50,
                             source: sa.source, destination: sa.destination)
        } else {
            for i in 0..<ip.headerLength { buffer[outerStart + i] = buffer[start + i] }
            IPv4Header.put16(&buffer, outerStart + 2, UInt16(truncatingIfNeeded: outerHeader + espLength))
            if let identification { IPv4Header.put16(&buffer, outerStart + 4, identification) }
            buffer[outerStart + 9] = 50
            IPv4Header.setChecksum(&buffer, headerAt: outerStart, length: ip.headerLength)
        }
        IPv4Header.put32(&buffer, espStart, sa.spi)
        IPv4Header.put32(&buffer, espStart + 4, seq)
        let trailer = payloadStart + payload
        // RFC 4303 2.4: the default padding is 1, 2, 3, ...
        for i in 0..<padLength { buffer[trailer + i] = UInt8(truncatingIfNeeded: i + 1) }
        buffer[trailer + padLength] = UInt8(padLength)
        buffer[trailer + padLength + 1] = nextHeader
        do {
            try esp.seal(&buffer, offset: espStart, length: espLength, sequence: UInt64(seq), explicitIV: explicitIV)
        } catch {
            throw .integrity
        }
        return (outerStart, outerHeader + espLength)
    }

    /// Checks and decrypts the outer IPv4 + ESP packet at `buffer[start..<start+length]` in place
    /// and returns where the inner IPv4 packet lies (transport mode moves the header forward to
    /// meet the payload). The replay window advances only after the ICV verified.
    public static func open(_ buffer: inout [UInt8], start: Int, length: Int,
                            sa: SecurityAssociation) throws(DatapathDrop) -> (start: Int, length: Int) {
        guard let esp = sa.esp else { throw .noState }
        let ip: IPv4Header
        do { ip = try IPv4Header(buffer, at: start, length: length) } catch { throw .header }
        let e = start + ip.headerLength
        let espLength = ip.totalLength - ip.headerLength
        guard espLength >= headerLength + esp.ivLength + esp.icvLength + 2 else { throw .header }
        let seq = IPv4Header.u32(buffer, e + 4)
        guard sa.replay.check(seq) == .fresh else { throw .replay }
        let range: Range<Int>
        do { range = try esp.open(&buffer, offset: e, length: espLength) } catch {
            throw error == .authenticationFailed ? .integrity : .header
        }
        sa.replay.accept(seq)
        guard range.count >= 2 else { throw .padding }
        let nextHeader = buffer[range.upperBound - 1]
        let padLength = Int(buffer[range.upperBound - 2])
        let payloadEnd = range.upperBound - 2 - padLength
        guard payloadEnd >= range.lowerBound else { throw .padding }
        for i in 0..<padLength where buffer[payloadEnd + i] != UInt8(truncatingIfNeeded: i + 1) { throw .padding }
        if sa.tunnel {
            guard nextHeader == 4 else { throw .mode }
            do {
                let inner = try IPv4Header(buffer, at: range.lowerBound, length: payloadEnd - range.lowerBound)
                guard inner.totalLength == payloadEnd - range.lowerBound else { throw DatapathDrop.padding }
            } catch { throw .padding }
            return (range.lowerBound, payloadEnd - range.lowerBound)
        }
        guard nextHeader != 4 else { throw .mode }
        // The outer header becomes the inner one, just before the payload.
        let innerStart = range.lowerBound - ip.headerLength
        for i in stride(from: ip.headerLength - 1, through: 0, by: -1) { buffer[innerStart + i] = buffer[start + i] }
        let innerLength = payloadEnd - innerStart
        IPv4Header.put16(&buffer, innerStart + 2, UInt16(truncatingIfNeeded: innerLength))
        buffer[innerStart + 9] = nextHeader
        IPv4Header.setChecksum(&buffer, headerAt: innerStart, length: ip.headerLength)
        return (innerStart, innerLength)
    }

    /// Builds the outer packet for `inner` (a whole IPv4 packet) in a new array: for tests and
    /// the occasional slow path; the datapath seals in place.
    public static func encapsulate(_ inner: [UInt8], sa: SecurityAssociation, explicitIV: [UInt8]? = nil,
                                   ttl: UInt8 = 64, dontFragment: Bool = false) throws(DatapathDrop) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: PacketRoom.headroom + inner.count + PacketRoom.tailroom)
        for i in inner.indices { buffer[PacketRoom.headroom + i] = inner[i] }
        let (s, n) = try seal(&buffer, start: PacketRoom.headroom, length: inner.count, sa: sa, explicitIV: explicitIV,
                              ttl: ttl, dontFragment: dontFragment)
        return Array(buffer[s..<(s + n)])
    }

    /// Checks and decrypts `packet` (outer IPv4 + ESP) and returns the inner IPv4 packet as a new
    /// array (`packet` is decrypted in place).
    public static func decapsulate(_ packet: inout [UInt8], sa: SecurityAssociation) throws(DatapathDrop) -> [UInt8] {
        let (s, n) = try open(&packet, start: 0, length: packet.count, sa: sa)
        return Array(packet[s..<(s + n)])
    }
}
