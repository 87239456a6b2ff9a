import KeywayAudit
import KeywayConfig
import KeywayCrypto
import KeywayMonitor
import KeywaySystem

/// The running configuration and its persistence in the state directory (this process's chroot).
/// A change is written (atomically) before it replaces the running configuration and before
/// anything is pushed: what runs is always what a restart would load. A good load is kept as the
/// last-good copy.
final class ConfigStore {
    static let path = "/config.rsc"
    static let lastGoodPath = "/config.last-good.rsc"
    /// Where an unusable store is kept when the operator chose to start without it.
    static let unusablePath = "/config.unusable.rsc"
    /// A store or --config script of the largest configuration the console accepts (ScaleLimits:
    /// 100,000 policies, 10,000 peers and manual SAs, with their keys) is some 20 MB.
    static let maximumBytes = 64 << 20

    /// What to do when `config.rsc` exists but cannot be read or parsed (keywayd --on-bad-store).
    enum BadStorePolicy: String, CaseIterable {
        /// Do not start: keyway-monitor exits with Supervisor.storeRefusedStatus before saying hello.
        case refuse
        /// Run `config.last-good.rsc` if that is usable (refuse otherwise).
        case lastGood = "last-good"
        /// Run with no configuration at all, said loudly.
        case empty

        static let option = "--on-bad-store="

        /// keyway-monitor's command line as keywayd writes it: nothing, or `--on-bad-store=VALUE`.
        static func parse(arguments: [String]) -> Result<BadStorePolicy, StoreError> {
            var policy = BadStorePolicy.refuse
            for argument in arguments {
                guard argument.hasPrefix(option),
                      let value = BadStorePolicy(rawValue: String(argument.dropFirst(option.count))) else {
                    let choices = allCases.map(\.rawValue).joined(separator: "|")
                    return .failure(.init("unknown argument '\(argument)': expected \(option)\(choices)"))
                }
                policy = value
            }
            return .success(policy)
        }
    }

    struct StoreError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Why a console command changed nothing: the command itself, or the store that could not take it.
    enum CommandFailure: Error {
        case command(ConfigError)
        case notSaved(String)
    }

    private(set) var config = Configuration() { didSet { generation += 1 } }
    private(set) var generation: UInt64 = 0
    /// Called after every change that took effect, to push it to the other processes.
    var onChange: (() -> Void)?
    private let audit: AuditLog
    private var executor = Executor(unavailability: { algorithm in
        do { try algorithm.checkAvailable(); return nil } catch { return "\(error)" }
    })
    /// Live datapath state for installed-sa, policy stats and statistics printouts.
    var live = LiveRuntime()
    /// Called during long work (see Executor.progress).
    var keepAlive: () -> Void = {} { didSet { executor.progress = keepAlive } }

    init(audit: AuditLog) { self.audit = audit }

    /// At start, before the monitor says hello: the stored configuration; with no store at all, the
    /// --config script keywayd passed. A store that exists but cannot be used is handled as the
    /// operator chose. Returns why the monitor must not start, or nil. Never half-applied.
    func load(seed: Descriptor?, onBadStore: BadStorePolicy) -> String? {
        if Files.exists(Self.path) {
            let failure: String
            switch read(Self.path) {
            case .success(let loaded):
                config = loaded
                saveLastGood()
                return nil
            case .failure(let why):
                failure = "config.rsc in the state directory cannot be used: \(why)"
            }
            switch onBadStore {
            case .refuse:
                return failure
            case .lastGood:
                guard Files.exists(Self.lastGoodPath) else { return failure + "; and there is no config.last-good.rsc" }
                switch read(Self.lastGoodPath) {
                case .failure(let why): return failure + "; and config.last-good.rsc cannot be used either: \(why)"
                case .success(let loaded): config = loaded
                }
                keepUnusableStore()
                loudly("\(failure); running the last good copy config.last-good.rsc (--on-bad-store=last-good)")
            case .empty:
                keepUnusableStore()
                loudly("\(failure); STARTING EMPTY (--on-bad-store=empty): "
                       + "nothing is protected until an administrator configures Keyway")
            }
            do { try save(config) } catch {
                audit.event(.critical, msgID: "config-save", "could not save the configuration: \(error)")
            }
            return nil
        }
        guard let seed else {
            audit.event(.notice, msgID: "config-load", "no stored configuration and no --config script: starting empty")
            return nil
        }
        do {
            let seeded = try parse(Files.readAll(seed, limit: Self.maximumBytes), source: .operatorInput,
                                   name: "the --config script")
            try save(seeded)
            config = seeded
            saveLastGood()
            audit.event(.notice, msgID: "config-load", "configuration seeded from the --config script",
                        [("policies", String(config.policies.count)), ("peers", String(config.peers.count))])
        } catch {
            audit.event(.critical, msgID: "config-load",
                        "the --config script was not applied, nothing of it runs: \(error)")
        }
        return nil
    }

    /// SIGHUP: read the store again; on failure keep running with what is loaded.
    func reload() {
        switch read(Self.path) {
        case .success(let loaded):
            config = loaded
            audit.event(.notice, msgID: "config-load", "configuration reloaded from \(Self.path)")
            onChange?()
        case .failure:
            audit.event(.critical, msgID: "config-load", "reload failed; the running configuration stays as it was")
        }
    }

    private func read(_ path: String) -> Result<Configuration, StoreError> {
        do {
            return .success(try parse(Files.readAll(path, limit: Self.maximumBytes), source: .store, name: path))
        } catch {
            audit.event(.error, msgID: "config-load", "\(path): \(error)")
            return .failure(StoreError("\(error)"))
        }
    }

    /// A whole script applied to an empty configuration: all of it, or an error. A store written
    /// before a rule existed loads with the offending values clamped or marked unusable, each said.
    private func parse(_ bytes: [UInt8], source: CommandSource, name: String) throws -> Configuration {
        var fresh = Configuration()
        var session = Session(canModify: true, mayShowSensitive: true)
        var loader = executor
        loader.source = source
        let out = try loader.run(String(decoding: bytes, as: UTF8.self), on: &fresh, session: &session)
        for repair in out.repairs {
            audit.event(.warning, msgID: "config-load", "\(name) \(repair)")
        }
        return fresh
    }

    /// Runs console input for a session. A changed configuration is saved first; only once it is
    /// on disk does it replace the running one and get pushed. If it cannot be saved, nothing changes.
    func run(_ text: String, session: inout Session) -> Result<CommandOutput, CommandFailure> {
        executor.runtime = live
        var working = config
        // A flush changes the live view the next printout shows.
        defer { if let view = executor.runtime as? LiveRuntime { live = view } }
        let out: CommandOutput
        do { out = try executor.run(text, on: &working, session: &session) } catch {
            return .failure(.command(error))
        }
        keepAlive()
        if working != config {
            do { try save(working) } catch {
                audit.event(.critical, msgID: "config-save",
                            "could not save the configuration; the change was refused: \(error)")
                return .failure(.notSaved("the configuration could not be saved to config.rsc "
                                          + "in the state directory (\(error)); nothing was changed"))
            }
            config = working
            keepAlive()
        }
        if out.changed { onChange?() }
        return .success(out)
    }

    private func save(_ configuration: Configuration) throws(SystemError) {
        try Files.writeAtomically(Self.path, Array(Exporter.export(configuration, showSensitive: true).utf8))
    }

    private func saveLastGood() {
        do {
            try Files.writeAtomically(Self.lastGoodPath, Array(Exporter.export(config, showSensitive: true).utf8))
        } catch {
            audit.event(.error, msgID: "config-save", "could not save the last good copy: \(error)")
        }
    }

    /// A critical audit line, and the same on keywayd's standard error.
    private func loudly(_ message: String) {
        StandardStreams.error("keyway-monitor: \(message)")
        audit.event(.critical, msgID: "config-load", message)
    }

    /// The operator's unusable file is not lost when the store is rewritten: kept beside it.
    private func keepUnusableStore() {
        do {
            try Files.writeAtomically(Self.unusablePath, Files.readAll(Self.path, limit: Self.maximumBytes))
            audit.event(.notice, msgID: "config-load", "the unusable store is kept as config.unusable.rsc")
        } catch {
            audit.event(.error, msgID: "config-load",
                        "could not keep a copy of the unusable store (\(error)); it is replaced")
        }
    }
}
