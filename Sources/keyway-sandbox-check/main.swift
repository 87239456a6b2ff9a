import Glibc
import KeywayPrivsep
import KeywaySystem
import KeywayWire

// keyway-sandbox-check ROLE USER ROOT SYSCALL
// Enters ROLE's real sandbox (the same code and allowlist as the child), then issues SYSCALL
// with no arguments. A forbidden syscall must kill the process with SIGSYS; if it returns,
// this tool says so and exits 3. Used by the tests; harmless to keep installed.
StandardStreams.lineBuffered()
let args = CommandLine.arguments
guard args.count == 5,
      let role = ["ike": Role.ike, "datapath": .datapath, "monitor": .monitor][args[1]],
      let user = Users.lookup(args[2]),
      let nr = Seccomp.syscallNumber(args[4]) else {
    StandardStreams.error("usage: keyway-sandbox-check ike|datapath|monitor USER ROOT SYSCALL")
    exit(2)
}
do {
    try Sandbox.enter(role: role, uid: user.uid, gid: user.gid, root: args[3])
} catch {
    StandardStreams.error("\(error)")
    exit(1)
}
StandardStreams.error("sandboxed as \(role); calling \(args[4]) (\(nr))")
let rc = Seccomp.rawSyscall(nr)
StandardStreams.error("\(args[4]) returned \(rc) errno \(errno): the filter did not kill the process")
exit(3)
