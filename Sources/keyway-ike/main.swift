import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// keyway-ike: ISAKMP on UDP 500 (issue 6). For now it holds its socket and keeps its links.
final class IKEBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.udp500] }
    private var socket: Descriptor?

    func start(runtime: ChildRuntime) { socket = runtime.granted[.udp500] }
    func pollInterests() -> [(fd: Int32, events: PollEvents)] { [] }
    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {}
    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {}
    func counters() -> [Counter] { [] }
}

ChildRuntime.run(role: .ike, behavior: IKEBehavior())
