/// Packet buffers allocated once: `slotCount` slots of `slotSize` bytes in one array, each with
/// PacketRoom's headroom and tailroom around the packet, so that a packet can be read, sealed or
/// opened, and written without a copy or an allocation. Sans-IO: the process hands the array to
/// its system calls.
public struct PacketPool: Sendable {
    public let slotCount: Int
    /// Bytes a packet may occupy in one slot (the room around it not counted).
    public let packetCapacity: Int
    public var bytes: [UInt8]

    public init(slotCount: Int, packetCapacity: Int) {
        self.slotCount = max(1, slotCount)
        self.packetCapacity = max(0, packetCapacity)
        bytes = [UInt8](repeating: 0,
                        count: self.slotCount * (PacketRoom.headroom + self.packetCapacity + PacketRoom.tailroom))
    }

    public var slotSize: Int { PacketRoom.headroom + packetCapacity + PacketRoom.tailroom }

    /// Where slot `i`'s packet starts (after its headroom).
    public func start(_ slot: Int) -> Int { slot * slotSize + PacketRoom.headroom }

    /// The packet starts of every slot, for a batch receive.
    public var starts: [Int] { (0..<slotCount).map(start) }
}
