extension PacketPipeline {
    /// An ICMP error the engine built in `outbound`, just before a packet it refused, as a TUN
    /// write: with offloads, a zero virtio-net header goes in the ten bytes before it.
    public func replyWrite(start: Int, length: Int) -> TunWrite? {
        let header = offloads ? VirtioNetHeader.size : 0
        guard start - header >= 0, length > 0, start + length <= outbound.bytes.count else { return nil }
        if offloads { VirtioNetHeader().write(into: &outbound.bytes, at: start - header) }
        return TunWrite(offset: start - header, count: length + header)
    }
}
