import CKeywayHostNet
import KeywayPrivsep
import KeywaySystem
import SystemPackage

/// The real `HostKernel`: rtnetlink batches built with libmnl and nftables transactions through
/// libnftables, the pointer work all in CKeywayHostNet (this file only passes arrays and
/// strings). Only keywayd links this module, so the children never load either library.
public final class KernelHost: HostKernel {
    /// The most routes one listing returns; HostNetwork lists again until the table is empty.
    static let listLimit = 4096

    public init() {}

    public func apply(_ changes: [RoutingChange]) -> [Errno?] {
        var answers: [Errno?] = []
        // HostNetwork never asks for more than one batch takes; a larger list goes in several.
        let limit = Int(KW_RT_MAX_BATCH)
        for start in stride(from: 0, to: changes.count, by: limit) {
            let operations = changes[start..<min(changes.count, start + limit)].map(Self.operation)
            var errors = [Int32](repeating: 0, count: operations.count)
            _ = kw_rt_apply(operations, Int32(operations.count), &errors)
            answers += errors.map { $0 == 0 ? nil : Errno(rawValue: $0) }
        }
        return answers
    }

    public func routes(inTable table: UInt32) throws(SystemError) -> [KernelRoute] {
        var listed = [kw_rt_op](repeating: kw_rt_op(), count: Self.listLimit)
        let count = kw_rt_list(table, &listed, Int32(listed.count))
        if count < 0 { throw SystemError("RTM_GETROUTE(table \(table))", errno: Errno(rawValue: -count)) }
        return listed.prefix(Int(count)).map {
            KernelRoute(address: $0.destination, prefixLength: $0.prefix_length, preferredSource: $0.source)
        }
    }

    public func runNftables(_ script: String) -> NftablesOutcome {
        var messages = [CChar](repeating: 0, count: 8192)
        let rc = kw_nft_run(script, &messages, messages.count)
        let text = String(decoding: messages.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch rc {
        case 0: return .applied
        case 1: return .refused(text)
        default: return .unavailable
        }
    }

    public func interfaceIndex(_ name: String) throws(SystemError) -> Int32 { try Tun.interfaceIndex(name: name) }

    public func pathMTUs(toward destinations: [UInt32], mark: UInt32) -> [Result<Int, SystemError>] {
        guard !destinations.isEmpty else { return [] }
        var mtus = [Int32](repeating: 0, count: destinations.count)
        _ = kw_rt_path_mtus(destinations, Int32(destinations.count), mark, &mtus)
        return zip(destinations, mtus).map { d, mtu in
            mtu >= 0 ? .success(Int(mtu))
                : .failure(SystemError("RTM_GETROUTE(\(d >> 24).\(d >> 16 & 255).\(d >> 8 & 255).\(d & 255))",
                                       errno: Errno(rawValue: -mtu)))
        }
    }

    /// The netlink request one change becomes, with NLM_F_ACK (the tests read it back); nil
    /// when the change cannot be expressed.
    public static func message(for change: RoutingChange, sequence: UInt32) -> [UInt8]? {
        var operation = operation(change)
        var buffer = [UInt8](repeating: 0, count: Int(KW_RT_MESSAGE_MAX))
        let length = kw_rt_build(&operation, sequence, &buffer, buffer.count)
        return length < 0 ? nil : Array(buffer.prefix(Int(length)))
    }

    static func operation(_ change: RoutingChange) -> kw_rt_op {
        var op = kw_rt_op()
        switch change {
        case .replaceRoute(let route, let table, let index):
            op.kind = Int32(KW_RT_ROUTE_REPLACE.rawValue)
            op.table = table
            op.destination = route.network
            op.prefix_length = route.prefixLength
            op.source = route.preferredSource
            op.ifindex = index
        case .deleteRoute(let route, let table, let index):
            op.kind = Int32(KW_RT_ROUTE_DELETE.rawValue)
            op.table = table
            op.destination = route.network
            op.prefix_length = route.prefixLength
            op.ifindex = index ?? 0
        case .addRule(let mark, let table, let priority), .deleteRule(let mark, let table, let priority):
            if case .addRule = change {
                op.kind = Int32(KW_RT_RULE_ADD.rawValue)
            } else {
                op.kind = Int32(KW_RT_RULE_DELETE.rawValue)
            }
            op.mark = mark
            op.table = table
            op.priority = priority
        case .setQueueLength(let index, let packets):
            op.kind = Int32(KW_RT_LINK_TXQUEUELEN.rawValue)
            op.ifindex = index
            op.value = packets
        case .setMTU(let index, let bytes):
            op.kind = Int32(KW_RT_LINK_MTU.rawValue)
            op.ifindex = index
            op.value = bytes
        }
        return op
    }
}
