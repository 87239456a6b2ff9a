import KeywayIKE

/// Any datagram either parses or fails with an ISAKMPError; what parses encodes to a chain that
/// decodes to the very same payloads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzISAKMP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let first: UInt8 = bytes.first ?? 0
    let body = Array(bytes.dropFirst())
    for padding in [false, true] {
        guard let payloads = try? ISAKMPCodec.decode(first: first, body: body, allowPadding: padding) else { continue }
        let (again, encoded) = ISAKMPCodec.encode(payloads)
        guard let decoded = try? ISAKMPCodec.decode(first: again, body: encoded, allowPadding: false), decoded == payloads else {
            fatalError("ISAKMP encode/decode disagree")
        }
    }
    _ = try? ISAKMPHeader.parse(bytes)
    return 0
}
