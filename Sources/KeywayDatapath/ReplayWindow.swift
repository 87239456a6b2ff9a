/// Anti-replay (RFC 4303 appendix A) with RFC 6479's ring of 64-bit blocks: checking and
/// advancing cost O(1) whatever the window size, and no bit shifting of the whole window.
public struct ReplayWindow: Sendable, Equatable {
    public enum Verdict: Equatable, Sendable {
        case fresh
        case replayed
        case tooOld
        case zero
    }

    /// Packets this far behind the highest one seen are still accepted (once each).
    public let size: UInt32
    private var blocks: [UInt64]
    private var highest: UInt32 = 0

    public init(size: UInt32 = 32) {
        let clamped = max(32, min(size, 1 << 16))
        self.size = clamped
        // One block more than the window needs, so the block being filled never overlaps the oldest.
        let count = Int((clamped + 63) / 64) + 1
        var n = 1
        while n < count { n <<= 1 }
        blocks = [UInt64](repeating: 0, count: n)
    }

    public var highestSequence: UInt32 { highest }

    /// Before the ICV is checked: may this sequence number be genuine?
    public func check(_ seq: UInt32) -> Verdict {
        if seq == 0 { return .zero }
        if seq > highest { return .fresh }
        if highest - seq >= size { return .tooOld }
        let bit = UInt64(1) << UInt64(seq & 63)
        return blocks[blockIndex(seq)] & bit != 0 ? .replayed : .fresh
    }

    /// After the ICV verified: record the packet (never before, or a forgery could shift the window).
    public mutating func accept(_ seq: UInt32) {
        guard check(seq) == .fresh else { return }
        if seq > highest {
            let oldBlock = highest >> 6
            let newBlock = seq >> 6
            // Clear the blocks the window moves into (at most the whole ring).
            let steps = min(UInt64(newBlock) - UInt64(oldBlock), UInt64(blocks.count))
            var b = UInt64(oldBlock)
            for _ in 0..<steps {
                b += 1
                blocks[Int(b & UInt64(blocks.count - 1))] = 0
            }
            highest = seq
        }
        blocks[blockIndex(seq)] |= UInt64(1) << UInt64(seq & 63)
    }

    private func blockIndex(_ seq: UInt32) -> Int { Int((seq >> 6) & UInt32(blocks.count - 1)) }
}
