import Glibc
import KeywayPrivsep
import KeywaySystem
import KeywayWire

// keyway-sandbox-check ROLE USER ROOT PROBE
// Enters ROLE's real sandbox (the same code and allowlist as the child), then runs PROBE: a
// syscall name (called with no arguments) or one of
//   mmap-exec       mmap(PROT_READ|PROT_EXEC) of anonymous memory
//   mprotect-exec   mprotect(PROT_READ|PROT_EXEC) of a page just mapped read-write
//   fcntl-setown    fcntl(3, F_SETOWN, getpid())
//   allocations     small and large allocations, array growth, read-write mmap and mprotect,
//                   fcntl F_GETFL/F_SETFL on descriptor 3 (its link): what a child does all day
// A forbidden call must kill the process with SIGSYS; if the probe returns, this tool says so
// and exits 3. Used by the tests; harmless to keep installed.
StandardStreams.lineBuffered()
let args = CommandLine.arguments
let probes = ["mmap-exec", "mprotect-exec", "fcntl-setown", "allocations"]
guard args.count == 5,
      let role = ["ike": Role.ike, "datapath": .datapath, "monitor": .monitor][args[1]],
      let user = Users.lookup(args[2]),
      probes.contains(args[4]) || Seccomp.syscallNumber(args[4]) != nil,
      let mmap = Seccomp.syscallNumber("mmap"), let mprotect = Seccomp.syscallNumber("mprotect"),
      let munmap = Seccomp.syscallNumber("munmap"), let fcntl = Seccomp.syscallNumber("fcntl") else {
    StandardStreams.error("usage: keyway-sandbox-check ike|datapath|monitor USER ROOT "
                          + "SYSCALL|\(probes.joined(separator: "|"))")
    exit(2)
}
do {
    try Sandbox.enter(role: role, uid: user.uid, gid: user.gid, root: args[3])
} catch {
    StandardStreams.error("\(error)")
    exit(1)
}
StandardStreams.error("sandboxed as \(role); probing \(args[4])")
let page = 4096
let anonymous = Int(MAP_PRIVATE | MAP_ANONYMOUS)
let rc: Int
switch args[4] {
case "mmap-exec":
    rc = Seccomp.rawSyscall(mmap, 0, page, Int(PROT_READ | PROT_EXEC), anonymous, -1, 0)
case "mprotect-exec":
    let address = Seccomp.rawSyscall(mmap, 0, page, Int(PROT_READ | PROT_WRITE), anonymous, -1, 0)
    guard address > 0 else { StandardStreams.error("read-write mmap failed: \(address)"); exit(4) }
    rc = Seccomp.rawSyscall(mprotect, address, page, Int(PROT_READ | PROT_EXEC))
case "fcntl-setown":
    rc = Seccomp.rawSyscall(fcntl, 3, Int(F_SETOWN), Int(getpid()))
case "allocations":
    var failures: [String] = []
    // Large blocks come from mmap, small ones from brk; growth goes through mremap.
    var large = [UInt8](repeating: 1, count: 8 << 20)
    large[large.count - 1] = 2
    var grown: [UInt64] = []
    for i in 0..<200_000 { grown.append(UInt64(i)) }
    var small: [[UInt8]] = []
    for i in 0..<10_000 { small.append([UInt8](repeating: UInt8(i & 255), count: 16 + i % 512)) }
    if large.reduce(0, { $0 &+ Int($1) }) != (8 << 20) + 1 || grown.last != 199_999 || small.count != 10_000 {
        failures.append("contents")
    }
    large = []
    small = []
    let address = Seccomp.rawSyscall(mmap, 0, page, Int(PROT_READ | PROT_WRITE), anonymous, -1, 0)
    if address <= 0 { failures.append("mmap read-write: \(address)") }
    if Seccomp.rawSyscall(mprotect, address, page, Int(PROT_READ)) != 0 { failures.append("mprotect read-only") }
    if Seccomp.rawSyscall(munmap, address, page) != 0 { failures.append("munmap") }
    let flags = Seccomp.rawSyscall(fcntl, 3, Int(F_GETFL))
    if flags < 0 || Seccomp.rawSyscall(fcntl, 3, Int(F_SETFL), flags | Int(O_NONBLOCK)) != 0 {
        failures.append("fcntl F_GETFL/F_SETFL")
    }
    if !failures.isEmpty { StandardStreams.error("allocations failed: \(failures.joined(separator: ", "))"); exit(4) }
    rc = 0
default:
    rc = Seccomp.rawSyscall(Seccomp.syscallNumber(args[4]) ?? -1)
}
StandardStreams.error("\(args[4]) returned \(rc): the filter did not kill the process")
exit(3)
