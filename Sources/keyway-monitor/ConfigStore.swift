import KeywayAudit
import KeywayConfig
import KeywayCrypto
import KeywaySystem

/// The running configuration and its persistence in the state directory (this process's chroot).
/// Every change is written atomically; a good load is kept as the last-good copy.
final class ConfigStore {
    static let path = "/config.rsc"
    static let lastGoodPath = "/config.last-good.rsc"

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

    init(audit: AuditLog) { self.audit = audit }

    /// At start: the stored configuration; failing that, the last good copy (said loudly);
    /// with no store at all, the --config script keywayd passed. Never half-applied.
    func load(seed: Descriptor?) {
        if Files.exists(Self.path) {
            if loadFile(Self.path) {
                saveLastGood()
                return
            }
            audit.event(.critical, msgID: "config-load", "stored configuration \(Self.path) is unusable; starting from the last good copy")
            if Files.exists(Self.lastGoodPath), loadFile(Self.lastGoodPath) {
                persist()
                return
            }
            audit.event(.critical, msgID: "config-load", "no usable configuration: starting EMPTY; nothing is protected until an administrator configures Keyway")
            return
        }
        guard let seed else {
            audit.event(.notice, msgID: "config-load", "no stored configuration and no --config script: starting empty")
            return
        }
        do {
            config = try parse(Files.readAll(seed), source: .operatorInput, name: "the --config script")
            persist()
            saveLastGood()
            audit.event(.notice, msgID: "config-load", "configuration seeded from the --config script",
                        [("policies", String(config.policies.count)), ("peers", String(config.peers.count))])
        } catch {
            audit.event(.critical, msgID: "config-load", "the --config script was rejected, nothing of it applied: \(error)")
        }
    }

    /// SIGHUP: read the store again; on failure keep running with what is loaded.
    func reload() {
        if loadFile(Self.path) {
            audit.event(.notice, msgID: "config-load", "configuration reloaded from \(Self.path)")
            onChange?()
        } else {
            audit.event(.critical, msgID: "config-load", "reload failed; the running configuration stays as it was")
        }
    }

    private func loadFile(_ path: String) -> Bool {
        do {
            config = try parse(Files.readAll(path), source: .store, name: path)
            return true
        } catch {
            audit.event(.error, msgID: "config-load", "\(path): \(error)")
            return false
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

    /// Runs console input for a session; commits and persists only if every command succeeded.
    func run(_ text: String, session: inout Session) -> Result<CommandOutput, ConfigError> {
        executor.runtime = live
        var working = config
        // A flush changes the live view the next printout shows.
        defer { if let view = executor.runtime as? LiveRuntime { live = view } }
        do {
            let out = try executor.run(text, on: &working, session: &session)
            if out.changed {
                config = working
                persist()
                onChange?()
            }
            return .success(out)
        } catch {
            return .failure(error)
        }
    }

    private func persist() {
        let text = Exporter.export(config, showSensitive: true)
        do { try Files.writeAtomically(Self.path, Array(text.utf8)) } catch {
            audit.event(.critical, msgID: "config-save", "could not save the configuration: \(error)")
        }
    }

    private func saveLastGood() {
        do { try Files.writeAtomically(Self.lastGoodPath, Array(Exporter.export(config, showSensitive: true).utf8)) } catch {
            audit.event(.error, msgID: "config-save", "could not save the last good copy: \(error)")
        }
    }
}
