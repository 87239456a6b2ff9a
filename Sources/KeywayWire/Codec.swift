/// Appends big-endian fields in declared order.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(reserving capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xff)) }
    public mutating func u32(_ v: UInt32) {
        for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xff)) }
    }
    public mutating func u64(_ v: UInt64) {
        for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xff)) }
    }
    public mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }
    /// A u32 length, then the bytes.
    public mutating func data(_ v: [UInt8]) { u32(UInt32(v.count)); bytes.append(contentsOf: v) }
    public mutating func string(_ v: String) { data(Array(v.utf8)) }
    public mutating func count(_ n: Int) { u16(UInt16(clamping: n)) }
    /// A count of a list that grows with the configuration (beyond what 16 bits hold).
    public mutating func count32(_ n: Int) { u32(UInt32(clamping: n)) }
}

/// Reads fields in declared order; every read is bounds-checked and throws a typed error.
public struct WireReader: Sendable {
    private let bytes: [UInt8]
    private var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8]) { self.init(bytes, from: 0, to: bytes.count) }

    init(_ bytes: [UInt8], from: Int, to: Int) {
        self.bytes = bytes
        self.offset = from
        self.end = to
    }

    public var remaining: Int { end - offset }

    private mutating func take(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard n <= remaining else { throw .shortBody(needed: n, remaining: remaining) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    public mutating func u8() throws(WireError) -> UInt8 {
        guard remaining >= 1 else { throw .shortBody(needed: 1, remaining: remaining) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(WireError) -> UInt16 {
        try take(2).reduce(0) { ($0 << 8) | UInt16($1) }
    }

    public mutating func u32() throws(WireError) -> UInt32 {
        try take(4).reduce(0) { ($0 << 8) | UInt32($1) }
    }

    public mutating func u64() throws(WireError) -> UInt64 {
        try take(8).reduce(0) { ($0 << 8) | UInt64($1) }
    }

    public mutating func bool(_ field: String) throws(WireError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let v: throw .invalidEnum(field: field, value: UInt32(v))
        }
    }

    public mutating func data(limit: Int) throws(WireError) -> [UInt8] {
        let n = Int(try u32())
        guard n <= limit else { throw .overlongLength(declared: n, limit: limit) }
        return Array(try take(n))
    }

    public mutating func string(_ field: String, limit: Int = 4096) throws(WireError) -> String {
        let raw = try data(limit: limit)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidText(field: field) }
        return s
    }

    /// An array count, checked against its limit before anything is allocated.
    public mutating func count(limit: Int) throws(WireError) -> Int {
        let n = Int(try u16())
        guard n <= limit else { throw .overlongLength(declared: n, limit: limit) }
        return n
    }

    /// A u32 array count (lists that grow with the configuration), checked against its limit
    /// before anything is allocated.
    public mutating func count32(limit: Int) throws(WireError) -> Int {
        let n = Int(try u32())
        guard n <= limit else { throw .overlongLength(declared: n, limit: limit) }
        return n
    }

    public mutating func enumeration<E: RawRepresentable>(_ field: String,
                                                          _: E.Type) throws(WireError) -> E where E.RawValue == UInt8 {
        let v = try u8()
        guard let e = E(rawValue: v) else { throw .invalidEnum(field: field, value: UInt32(v)) }
        return e
    }

    public func expectEnd() throws(WireError) {
        if remaining != 0 { throw .trailingBytes(count: remaining) }
    }
}
