import KeywayCrypto
import KeywayVocabulary

extension SecurityAssociation {
    /// What this SA adds to a packet (for a bundle, see Datapath.pathFit).
    public var ipsecOverhead: IPsecOverhead {
        IPsecOverhead(family: .ipv4, tunnel: tunnel,
                      esp: esp.map { (iv: $0.ivLength, icv: $0.icvLength, alignment: $0.alignment) },
                      ahLength: ah.map(AHCodec.headerSize) ?? 0, udp: udpEncapsulation != nil)
    }
}

/// What a validated or refused ICMP "fragmentation needed" did.
public enum ICMPOutcome: Equatable, Sendable {
    /// It lowered the path toward `destination` (about the SA `spi`).
    case lowered(destination: IPAddress, mtu: Int, reporter: IPAddress, spi: UInt32)
    /// Valid, but the path was already that small.
    case unchanged
    /// About ESP, AH or ESP in UDP, but refused (counted as pmtu-icmp-refused): worth an audit line.
    case refused(reason: String, reporter: IPAddress?)
    /// Someone else's ICMP.
    case ignored
}

/// Path MTU discovery for the outer path (RFC 4301 §8) and what follows from it for each packet:
/// MSS clamping, fragmentation as `dont-fragment` says, and "fragmentation needed" back to inner
/// senders.
extension Datapath {
    /// How far back a quoted sequence number may lie: an ICMP answers a packet just sent.
    public static let icmpSequenceWindow: UInt32 = 1 << 20

    /// A policy's SAs on their path now: what they add and the MTU toward their destination.
    struct PathFit {
        var destination: IPAddress
        var overhead: IPsecOverhead
        var mtu: Int

        func largestInner(headerLength: Int = 20) -> Int {
            overhead.largestInner(fitting: mtu, innerHeaderLength: headerLength)
        }
    }

    /// `esp` and `ah` as the policy applies them (AH over an ESP tunnel in transport mode).
    /// The SA the decision uses exists (an encrypt decision names ESP or AH, and the caller found
    /// its SAs), so the fallback destination is never taken.
    func pathFit(decision: SPD.Decision, esp: SecurityAssociation?, ah: SecurityAssociation?, now: UInt64) -> PathFit {
        pathFit(tunnel: decision.tunnel, esp: decision.useESP ? esp : nil, ah: decision.useAH ? ah : nil,
                fallback: 0, now: now)
    }

    func pathFit(tunnel: Bool, esp: SecurityAssociation?, ah: SecurityAssociation?, fallback: UInt32,
                 now: UInt64) -> PathFit {
        let destination = IPAddress.v4(IPv4Address((esp ?? ah)?.destination ?? fallback))
        let overhead = IPsecOverhead(family: .ipv4, tunnel: tunnel,
                                     esp: esp?.esp.map { (iv: $0.ivLength, icv: $0.icvLength,
                                                          alignment: $0.alignment) },
                                     ahLength: ah?.ah.map(AHCodec.headerSize) ?? 0,
                                     udp: esp?.udpEncapsulation != nil && ah == nil)
        return PathFit(destination: destination, overhead: overhead, mtu: paths.mtu(toward: destination, now: now))
    }

    // MARK: MSS clamping

    /// A SYN leaving through the tunnel: its MSS tells the far end what to send back, which
    /// comes over the peer's path; ours toward it is the best guess (and a Keyway peer clamps
    /// the same SYN again on its side with its own path).
    func clampMSS(_ buffer: inout [UInt8], start: Int, header: IPv4Header, policyID: Int, path: PathFit) {
        guard let limit = (tcpMSS[policyID] ?? .clampToPathMTU)
            .limit(largestInner: path.largestInner(headerLength: header.headerLength))
        else { return }
        if MSSClamp.clamp(&buffer, start: start, header: header, limit: limit) != nil { count("mss-clamped") }
    }

    /// A SYN arriving through the tunnel: its MSS tells our side what to send, which goes out
    /// over this policy's outbound SAs.
    func clampInboundMSS(_ buffer: inout [UInt8], start: Int, header: IPv4Header, policyID: Int, now: UInt64) {
        guard let pair = outbound[policyID], pair.esp != nil || pair.ah != nil else { return }
        let tunnel = pair.esp?.tunnel ?? pair.ah?.tunnel ?? true
        let path = pathFit(tunnel: tunnel, esp: pair.esp, ah: pair.ah, fallback: header.source, now: now)
        clampMSS(&buffer, start: start, header: header, policyID: policyID, path: path)
    }

    // MARK: packets that do not fit

    /// The sealed packet would exceed the path. Without DF on the outer packet it is fragmented
    /// (RFC 791) after sealing; with DF, an inner packet that carries DF is refused with a
    /// "fragmentation needed" to its sender (RFC 1191), and one that does not is split before
    /// sealing, so that every outer packet keeps DF and fits.
    func oversize(_ buffer: inout [UInt8], start: Int, header ip: IPv4Header, decision: SPD.Decision,
                  esp: SecurityAssociation?,
                  ah: SecurityAssociation?, outerDF: Bool, path: PathFit, capacity: Int,
                  now: UInt64) -> OutboundAction {
        let limit = start + max(0, min(capacity, buffer.count - start))
        let udp = decision.useESP && !decision.useAH ? esp?.udpEncapsulation : nil
        if !outerDF {
            let span: (start: Int, length: Int)
            do {
                // Fragments need one identification of ours; a host's own (transport mode) is kept unless 0.
                let identification = decision.tunnel || ip.identification == 0 ? nextIdentification() : nil
                span = try seal(&buffer, start: start, header: ip, decision: decision, esp: esp, ah: ah, outerDF: false,
                                identification: identification, now: now)
            } catch { return sealFailed(error, policyID: decision.id) }
            guard let run = IPv4Fragmenter.fragment(&buffer, packetAt: span.start, length: span.length, mtu: path.mtu,
                                                    into: span.start + span.length, limit: limit) else {
                return cannotFragment(decision.id)
            }
            count("out-fragmented")
            policyCounters[decision.id, default: PolicyCounters()].outTransformed += 1
            return .sendRun(run, destination: IPv4Header.u32(buffer, span.start + 16), proto: decision.useAH ? 51 : 50)
        }
        let mtu = path.largestInner(headerLength: ip.headerLength)
        if ip.dontFragment || !decision.tunnel {
            policyCounters[decision.id, default: PolicyCounters()].outDropped += 1
            count("out-frag-needed")
            guard FragmentationNeededReply.allowed(buffer, start: start, header: ip) else {
                return .tooBig(icmpStart: 0, icmpLength: 0, mtu: mtu)
            }
            guard icmpLimit.allow(.v4(IPv4Address(ip.source)), now: now) else {
                count("icmp-frag-needed-limited")
                return .tooBig(icmpStart: 0, icmpLength: 0, mtu: mtu)
            }
            guard let reply = FragmentationNeededReply.build(&buffer, packetAt: start, header: ip, mtu: mtu) else {
                return .tooBig(icmpStart: 0, icmpLength: 0, mtu: mtu)
            }
            count("icmp-frag-needed-sent")
            return .tooBig(icmpStart: reply.start, icmpLength: reply.length, mtu: mtu)
        }
        // dont-fragment=set, inner packet without DF: each piece gets the room sealing needs.
        let spacing = (PacketRoom.headroom + mtu + PacketRoom.tailroom + 7) / 8 * 8
        let region = start + ip.totalLength
        guard let pieces = IPv4Fragmenter.fragment(&buffer, packetAt: start, length: ip.totalLength, mtu: mtu,
                                                   into: region + PacketRoom.headroom, spacing: spacing,
                                                   limit: limit - PacketRoom.tailroom) else {
            return cannotFragment(decision.id)
        }
        var first = (start: 0, length: 0), last = first
        for i in 0..<pieces.count {
            guard let piece = try? IPv4Header(buffer, at: pieces.start(i), length: pieces.length(i)) else {
                return cannotFragment(decision.id)
            }
            do {
                var span = try seal(&buffer, start: pieces.start(i), header: piece, decision: decision, esp: esp,
                                    ah: ah, outerDF: true, identification: nil, now: now)
                if let udp {
                    guard let wrapped = wrapInUDP(&buffer, span, ports: udp) else { return cannotFragment(decision.id) }
                    span = wrapped
                }
                if i == 0 { first = span }
                last = span
            } catch { return sealFailed(error, policyID: decision.id) }
        }
        count("out-prefragmented")
        policyCounters[decision.id, default: PolicyCounters()].outTransformed += 1
        let run = PacketRun(start: first.start, stride: spacing, count: pieces.count, length: first.length,
                            lastLength: last.length)
        return .sendRun(run, destination: IPv4Header.u32(buffer, first.start + 16), proto: decision.useAH ? 51 : 50)
    }

    private func cannotFragment(_ policyID: Int) -> OutboundAction {
        policyCounters[policyID, default: PolicyCounters()].outDropped += 1
        count("out-frag-errors")
        return .drop(counter: "out-frag-errors")
    }

    /// ESP in UDP as a whole IPv4 packet for a raw socket (to carry DF, which the UDP socket
    /// never sets): the outer header moves eight bytes back for the UDP header (RFC 3948 §2.1:
    /// checksum zero). Nil without room.
    func wrapInUDP(_ buffer: inout [UInt8], _ span: (start: Int, length: Int),
                   ports: (local: UInt16, remote: UInt16)) -> (start: Int, length: Int)? {
        let h = Int(buffer[span.start] & 0x0f) * 4
        let s = span.start - 8
        guard s >= 0, span.length + 8 <= 65_535, h <= span.length else { return nil }
        PacketBytes.move(&buffer, from: span.start, to: s, count: h)
        let u = s + h
        IPv4Header.put16(&buffer, u, ports.local)
        IPv4Header.put16(&buffer, u + 2, ports.remote)
        IPv4Header.put16(&buffer, u + 4, UInt16(span.length - h + 8))
        IPv4Header.put16(&buffer, u + 6, 0)
        buffer[s + 9] = 17
        IPv4Header.put16(&buffer, s + 2, UInt16(span.length + 8))
        IPv4Header.setChecksum(&buffer, headerAt: s, length: h)
        return (s, span.length + 8)
    }

    // MARK: ICMP from the network

    /// keywayd's look-up of the local interfaces toward each peer.
    public func setLocalPaths(defaultMTU: Int, paths list: [(IPAddress, Int)]) {
        paths.setLocal(defaultMTU: defaultMTU, paths: list)
    }

    /// An ICMP packet from the raw ICMP socket (untrusted). A "fragmentation needed" lowers a
    /// path only when it quotes a packet we sent: an outbound SA we hold (destination, protocol,
    /// SPI, our address, for ESP in UDP our ports), a sequence number that SA has used lately,
    /// DF set, and a length the reported MTU is smaller than. A forged one changes nothing; a
    /// valid one never lowers a path below the floor (576 for IPv4).
    public func processICMP(_ buffer: [UInt8], start: Int, length: Int, now: UInt64) -> ICMPOutcome {
        let report: FragmentationNeeded
        do { report = try FragmentationNeeded(buffer, start: start, length: length) } catch {
            guard error.isOurs else { return .ignored }
            return refuseICMP(error.reason, nil)
        }
        let q = report.quoted
        guard case .v4(let destination) = q.destination, case .v4(let source) = q.source else {
            return refuseICMP("address family", report.reporter)
        }
        let key = SAKey(destination: destination.value, proto: q.ipsecProtocol.rawValue, spi: q.spi)
        guard let sa = outboundByKey[key] else {
            // ESP and AH for other hosts on this machine is not ours to judge.
            guard outboundSources.contains(source.value) else { return .ignored }
            return refuseICMP("no outbound SA with SPI \(String(q.spi, radix: 16)) toward \(destination)",
                              report.reporter)
        }
        guard sa.source == source.value else { return refuseICMP("quoted source is not the SA's", report.reporter) }
        if q.proto == 17 {
            guard let ports = sa.udpEncapsulation, ports.local == q.sourcePort, ports.remote == q.destinationPort else {
                return refuseICMP("quoted UDP ports are not the SA's", report.reporter)
            }
        } else if sa.udpEncapsulation != nil, q.proto == 50 {
            return refuseICMP("the SA sends ESP in UDP", report.reporter)
        }
        let sent = sa.sequence
        guard q.sequence >= 1, q.sequence <= sent, sent - q.sequence < Self.icmpSequenceWindow else {
            return refuseICMP("sequence number \(q.sequence) was not sent lately (last \(sent))", report.reporter)
        }
        guard q.dontFragment else { return refuseICMP("quotes a packet without DF", report.reporter) }
        let reported = report.nextHopMTU == 0 ? PathMTURule.plateau(below: q.totalLength) : report.nextHopMTU
        guard reported < q.totalLength else {
            return refuseICMP("names \(reported) for a packet of \(q.totalLength) bytes", report.reporter)
        }
        guard let mtu = paths.lower(toward: q.destination, to: reported, now: now) else {
            count("pmtu-icmp-unchanged")
            return .unchanged
        }
        count("pmtu-lowered")
        return .lowered(destination: q.destination, mtu: mtu, reporter: report.reporter, spi: q.spi)
    }

    private func refuseICMP(_ reason: String, _ reporter: IPAddress?) -> ICMPOutcome {
        count("pmtu-icmp-refused")
        return .refused(reason: reason, reporter: reporter)
    }

    /// What has aged out grows back (the periodic tick).
    @discardableResult
    public func agePaths(now: UInt64) -> [IPAddress] { paths.age(now: now) }
}
