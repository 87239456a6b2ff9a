@testable import KeywayCrypto

func hex(_ s: String) -> [UInt8] {
    guard let b = Hex.decode(s) else { fatalError("bad hex in test: \(s)") }
    return b
}

func secret(_ s: String) -> Secret { Secret(hex(s)) }

extension CipherContext {
    /// In-place CBC/CTR over a copy, for known-answer tests.
    func apply(iv: [UInt8], _ data: [UInt8]) -> [UInt8]? {
        var buf = data
        let ok = iv.withUnsafeBufferPointer { i in
            buf.withUnsafeMutableBufferPointer { b in run(iv: i.baseAddress!, b.baseAddress!, b.count) }
        }
        return ok ? buf : nil
    }
}
