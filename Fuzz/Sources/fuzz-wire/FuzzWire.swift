import KeywayWire

/// Any byte string either decodes or throws a WireError; whatever decodes re-encodes to the
/// very same bytes (the codec is canonical) and passes the allowlist check without crashing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let envelope = try? Frame.decode(bytes) else { return 0 }
    let again = Frame.encode(envelope.message, requestID: envelope.requestID)
    if again != bytes { fatalError("decode/encode is not canonical for \(envelope.message.type)") }
    for sender in Role.allCases {
        for receiver in Role.allCases { _ = try? Frame.decode(bytes, from: sender, to: receiver) }
    }
    return 0
}
