import KeywaySystem

/// A child binary keywayd will not execute, and why.
public struct UntrustedExecutable: Error, Equatable, CustomStringConvertible {
    public let executable: String
    /// The file or the directory above it that is at fault.
    public let culprit: String
    public let problem: String

    public var description: String {
        "refusing to execute \(executable): \(culprit == executable ? "it" : "directory \(culprit)") \(problem)"
    }
}

/// keywayd runs its children as root (they drop privileges themselves), so whoever can replace a
/// child binary, or rename one of the directories above it, owns the appliance. Each child binary
/// must therefore be root's and writable by no one else, and so must every directory above it,
/// up to `/`. A root-owned directory with the sticky bit (like /tmp) may be writable by others:
/// they cannot rename or remove root's entries in it.
public enum ExecutableTrust {
    // st_mode bits (sys/stat.h), spelled out so the decision is pure.
    static let typeMask: UInt32 = 0o170000, regularFile: UInt32 = 0o100000, directory: UInt32 = 0o040000
    static let symbolicLink: UInt32 = 0o120000
    static let sticky: UInt32 = 0o1000, groupWrite: UInt32 = 0o020, otherWrite: UInt32 = 0o002

    /// Checks `path` (absolute, as keywayd spawns it) and every directory above it, with lstat.
    public static func verify(_ path: String) throws(UntrustedExecutable) {
        guard path.hasPrefix("/") else {
            throw UntrustedExecutable(executable: path, culprit: path, problem: "is not an absolute path")
        }
        var chain: [(String, Result<FileStatus, SystemError>)] = []
        for component in lineage(of: path) {
            do { chain.append((component, .success(try Files.status(component)))) } catch {
                chain.append((component, .failure(error)))
            }
        }
        try check(executable: path, chain: chain)
    }

    /// The path itself, then each directory above it, ending with `/`.
    static func lineage(of path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var out: [String] = []
        while !parts.isEmpty {
            out.append("/" + parts.joined(separator: "/"))
            parts.removeLast()
        }
        return out + ["/"]
    }

    /// The decision, from what lstat said about the file (first) and each directory above it.
    static func check(executable: String,
                      chain: [(String, Result<FileStatus, SystemError>)]) throws(UntrustedExecutable) {
        for (index, (path, result)) in chain.enumerated() {
            func refuse(_ problem: String) -> UntrustedExecutable {
                UntrustedExecutable(executable: executable, culprit: path, problem: problem)
            }
            let status: FileStatus
            switch result {
            case .success(let s): status = s
            case .failure(let error): throw refuse("cannot be examined (\(error.errno))")
            }
            let mode = UInt32(status.mode)
            let type = mode & typeMask
            let permissions = "mode " + octal(mode & 0o7777)
            if type == symbolicLink { throw refuse("is a symbolic link") }
            if index == 0 {
                guard type == regularFile else { throw refuse("is not a regular file") }
            } else {
                guard type == directory else { throw refuse("is not a directory") }
            }
            guard status.uid == 0 else { throw refuse("is owned by uid \(status.uid), not root") }
            // Others cannot rename or remove root's entries in a sticky directory.
            if index > 0 && mode & sticky != 0 { continue }
            if mode & otherWrite != 0 { throw refuse("is writable by others (\(permissions))") }
            if mode & groupWrite != 0 { throw refuse("is writable by its group (\(permissions))") }
        }
    }

    static func octal(_ value: UInt32) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
