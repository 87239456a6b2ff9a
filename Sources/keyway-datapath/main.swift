import KeywayPrivsep
import KeywaySystem
import KeywayWire

/// keyway-datapath: TUN, raw ESP/AH and UDP 4500 (issue 5). For now it holds its descriptors.
final class DatapathBehavior: ChildBehavior {
    var requiredDescriptors: Set<DescriptorKind> { [.tun, .rawESP, .rawAH, .udp4500] }
    private var held: [Descriptor] = []

    func start(runtime: ChildRuntime) {
        held = [DescriptorKind.tun, .rawESP, .rawAH, .udp4500].compactMap { runtime.granted[$0] }
    }
    func pollInterests() -> [(fd: Int32, events: PollEvents)] { [] }
    func handleReady(fd: Int32, events: PollEvents, runtime: ChildRuntime) {}
    func handle(_ envelope: Envelope, from peer: Role, runtime: ChildRuntime) {}
    func counters() -> [Counter] { [] }
}

ChildRuntime.run(role: .datapath, behavior: DatapathBehavior())
