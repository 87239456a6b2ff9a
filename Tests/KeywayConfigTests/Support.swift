import KeywayConfig
import XCTest

/// A fresh appliance and an administrator's console session.
struct Console {
    var config = Configuration()
    var session = Session(canModify: true, mayShowSensitive: true)
    var executor = Executor()

    @discardableResult
    mutating func run(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> CommandOutput {
        try executor.run(text, on: &config, session: &session)
    }

    mutating func error(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do {
            _ = try executor.run(text, on: &config, session: &session)
            XCTFail("expected an error for: \(text)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }
}

enum Repository {
    /// The repository root, from this file's path (Tests/KeywayConfigTests/Support.swift).
    static var root: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    static func configs() throws -> [(String, String)] {
        let dir = root + "/Configs"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".rsc") }.sorted()
        return try names.map { ($0, try String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) }
    }
}
