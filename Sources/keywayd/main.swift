import ArgumentParser
import Glibc
import KeywayAudit
import KeywayHostNet
import KeywayPrivsep
import KeywaySystem

/// What keyway-monitor does when the configuration store exists but cannot be read or parsed.
enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on, off
}

enum BadStorePolicy: String, ExpressibleByArgument, CaseIterable {
    case refuse
    case lastGood = "last-good"
    case empty
}

struct Keywayd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keywayd",
        abstract: "Keyway IPsec appliance: the privileged parent that starts and supervises the sandboxed children.")

    @Option(name: .long, help: "RouterOS-style configuration script loaded at start.")
    var config = "/etc/keyway/keyway.rsc"

    @Option(name: .customLong("state-dir"), help: "Where the configuration store lives (keyway-monitor's chroot).")
    var stateDir = "/var/lib/keyway"

    @Option(name: .customLong("run-dir"), help: "Runtime directory; the control socket is DIR/control.sock.")
    var runDir = "/run/keyway"

    @Option(name: .long,
            help: "Base name of the children's unprivileged users, one each: NAME-ike, NAME-datapath, NAME-monitor.")
    var user = "keyway"

    @Option(name: .long, help: "Name of the TUN device plaintext is routed into.")
    var tun = "ipsec0"

    @Option(name: .long, help: "Syslog socket for audit lines (every process's, written by keywayd).")
    var syslog = "/dev/log"

    @Option(name: .customLong("syslog-format"),
            help: ArgumentHelp("local: syslog(3)'s format, which /dev/log's parsers (rsyslog, journald) read; "
                + "rfc5424: for a listener that parses RFC 5424."))
    var syslogFormat = SyslogFormat.local

    @Option(name: .customLong("on-bad-store"),
            help: "If STATE/config.rsc cannot be read or parsed: refuse (exit 1), last-good, or empty.")
    var onBadStore = BadStorePolicy.refuse

    @Option(name: .customLong("offloads"),
            help: ArgumentHelp("Segmentation and receive offloads (on|off): the TUN device with virtio-net headers, "
                + "TSO and checksum offloads, and UDP GSO/GRO for ESP in UDP, where the kernel allows them."))
    var offloads = Switch.on

    @Option(name: .customLong("tun-mtu"),
            help: ArgumentHelp("The TUN device's MTU: auto (the outer interfaces' MTU less the largest overhead of the "
                + "configured transforms) or a number from 576 to 65535."))
    var tunMTU = "auto"

    @Option(name: .customLong("children-dir"),
            help: ArgumentHelp("Where keyway-ike, keyway-datapath and keyway-monitor are (default: ../libexec/keyway "
                + "beside keywayd's directory if it holds them, as the package installs them; else keywayd's own "
                + "directory)."))
    var childrenDir: String?

    @Flag(name: .long, help: "Stay in the foreground (keywayd never daemonizes; systemd supervises it).")
    var foreground = false

    func validate() throws {
        guard !tun.isEmpty, tun.utf8.count < 16,
              tun.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw ValidationError("--tun '\(tun)': an interface name is 1 to 15 letters, digits, '-', '_' or '.'")
        }
        for (flag, path) in [("--state-dir", stateDir), ("--run-dir", runDir), ("--syslog", syslog),
                             ("--config", config),
                             ("--children-dir", childrenDir ?? "/")] {
            guard path.hasPrefix("/") else { throw ValidationError("\(flag) '\(path)': give an absolute path") }
        }
        guard stateDir != "/", runDir != "/" else { throw ValidationError("--state-dir and --run-dir cannot be /") }
        guard tunMTU == "auto" || fixedTunMTU != nil else {
            throw ValidationError("--tun-mtu '\(tunMTU)': give auto or a number from 576 to 65535")
        }
    }

    func run() throws {
        StandardStreams.lineBuffered()
        guard Users.effectiveUID == 0 else {
            StandardStreams.error("keywayd: must start as root (it opens the TUN device, raw sockets and port 500, "
                                  + "then drops privileges in its children)")
            throw ExitCode(1)
        }
        let users: RoleUsers
        do { users = try RoleUsers.resolve(base: user, lookup: Users.lookup) } catch {
            StandardStreams.error("keywayd: \(error)")
            throw ExitCode(1)
        }
        guard let own = Files.executableDirectory() else {
            StandardStreams.error("keywayd: cannot find its own directory (/proc/self/exe)")
            throw ExitCode(1)
        }
        let directory = childrenDir ?? ChildrenDirectory.choose(keywaydDirectory: own, exists: Files.exists)
        if !Files.exists(config) {
            StandardStreams.error("keywayd: no configuration script at \(config); a stored configuration is used if "
                                  + "there is one, else the appliance starts empty")
        }
        var settings = SupervisorSettings(executableDirectory: directory, users: users, runDirectory: runDir,
                                          stateDirectory: stateDir, syslogPath: syslog, tunName: tun)
        settings.configPath = config
        settings.syslogFormat = syslogFormat
        settings.monitorArguments = ["--on-bad-store=\(onBadStore.rawValue)"]
        settings.tunOffloads = offloads == .on
        settings.fixedTunMTU = fixedTunMTU
        let supervisor = Supervisor(settings: settings, hostKernel: KernelHost())
        do { try supervisor.prepare() } catch {
            StandardStreams.error("keywayd: \(error)")
            throw ExitCode(1)
        }
        let status = supervisor.run()
        throw ExitCode(status)
    }
}

extension Keywayd {
    /// `--tun-mtu N`, nil for auto or anything out of range (validate refuses that).
    var fixedTunMTU: Int32? {
        guard tunMTU.count <= 5, tunMTU.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int32(tunMTU),
              (576...65_535).contains(n) else { return nil }
        return n
    }
}

extension SyslogFormat: ExpressibleByArgument {}

// Bad arguments exit 2 (not ArgumentParser's 64), as scripts and systemd units expect.
do {
    var command = try Keywayd.parseAsRoot()
    try command.run()
} catch let exit as ExitCode {
    Glibc.exit(exit.rawValue)
} catch {
    let code = Keywayd.exitCode(for: error)
    if code == .success {
        StandardStreams.output(Keywayd.fullMessage(for: error))
        Glibc.exit(0)
    }
    StandardStreams.error(Keywayd.fullMessage(for: error))
    StandardStreams.error("Usage: \(Keywayd.usageString())")
    Glibc.exit(2)
}
