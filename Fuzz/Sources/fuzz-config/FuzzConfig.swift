import KeywayConfig

/// Any text either runs or fails with a ConfigError (never a crash), and a configuration it
/// builds exports to a script that rebuilds the same configuration.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size < 4096 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var config = Configuration()
    var session = Session(canModify: true, mayShowSensitive: true)
    var executor = Executor()
    guard (try? executor.run(text, on: &config, session: &session)) != nil else { return 0 }
    let script = Exporter.export(config, showSensitive: true)
    var again = Configuration()
    var fresh = Session(canModify: true, mayShowSensitive: true)
    do { _ = try executor.run(script, on: &again, session: &fresh) } catch {
        fatalError("export does not parse back: \(error)\n\(script)")
    }
    if Exporter.export(again, showSensitive: true) != script { fatalError("export is not stable:\n\(script)") }
    return 0
}
