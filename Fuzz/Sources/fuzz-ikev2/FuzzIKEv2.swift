import KeywayIKE

/// Any datagram either decodes as an IKEv2 message or fails with an ISAKMPError; what decodes
/// (outer payloads, or an inner chain as a decrypted SK body would hold) encodes to bytes that
/// decode to the very same payloads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIKEv2(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let message = try? IKEv2Codec.decodeMessage(bytes) {
        let payloads = message.payloads.map(\.payload)
        check(payloads)
        // The minor version is ignored on receipt (RFC 7296 3.1) and always sent as 0.
        var received = Array(bytes.prefix(IKEv2Header.size))
        received[17] &= 0xf0
        guard message.header.encoded(totalLength: bytes.count) == received else {
            fatalError("IKEv2 header encode/decode disagree")
        }
    }
    // The same bytes as the inner chain of a decrypted SK payload, first type from the first byte.
    let first: UInt8 = bytes.first ?? 0
    if let inner = try? IKEv2Codec.decodeInner(first: first, body: Array(bytes.dropFirst())) {
        check(inner.map(\.payload))
    }
    return 0
}

func check(_ payloads: [IKEv2Payload]) {
    let (first, encoded) = IKEv2Codec.encode(payloads)
    guard let decoded = try? IKEv2Codec.decodeInner(first: first, body: encoded), decoded.map(\.payload) == payloads
    else {
        fatalError("IKEv2 encode/decode disagree")
    }
}
