import Glibc
import SystemPackage

public enum Files {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Creates the directory if needed and forces its mode and owner.
    /// Missing parents are created root-owned, mode 0755.
    public static func ensureDirectory(_ path: String, mode: mode_t, uid: uid_t = 0,
                                       gid: gid_t = 0) throws(SystemError) {
        var prefix = ""
        for part in path.split(separator: "/").dropLast() {
            prefix += "/" + part
            if mkdir(prefix, 0o755) < 0 && Glibc.errno != EEXIST { throw SystemError.last("mkdir(\(prefix))") }
        }
        if mkdir(path, mode) < 0 && Glibc.errno != EEXIST { throw SystemError.last("mkdir(\(path))") }
        _ = try retryingEINTR("chown(\(path))") { chown(path, uid, gid) }
        _ = try retryingEINTR("chmod(\(path))") { chmod(path, mode) }
    }

    /// Writes a small file in one call (sysctl knobs under /proc/sys).
    public static func writeSmall(_ path: String, _ text: String) throws(SystemError) {
        let fd = try retryingEINTR("open(\(path))") { open(path, O_WRONLY | O_CLOEXEC | O_TRUNC) }
        let d = Descriptor(adopting: fd)
        _ = try d.write(Array(text.utf8))
    }

    public static func remove(_ path: String) { unlink(path) }

    /// The directory of the running executable (children live beside keywayd).
    public static func executableDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }
}

extension Files {
    public static func openReadOnly(_ path: String) throws(SystemError) -> Descriptor {
        Descriptor(adopting: try retryingEINTR("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) })
    }

    /// Reads a descriptor to its end (at most `limit` bytes: a configuration, not a disk image).
    public static func readAll(_ fd: Descriptor, limit: Int = 4 << 20) throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        while out.count <= limit {
            let chunk = try fd.read(max: 65536)
            if chunk.isEmpty { return out }
            out += chunk
        }
        throw SystemError("read(limit \(limit))", errno: .fileTooLarge)
    }

    public static func readAll(_ path: String, limit: Int = 4 << 20) throws(SystemError) -> [UInt8] {
        try readAll(try openReadOnly(path), limit: limit)
    }

    /// Write to a temporary file, fsync it, rename it over `path`, fsync the directory: after a
    /// crash the file is either the old one or the new one, never half of each.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let temporary = path + ".tmp"
        let fd = Descriptor(adopting: try retryingEINTR("open(\(temporary))") {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        })
        var written = 0
        while written < bytes.count {
            let n = try retryingEINTR("write(\(temporary))") {
                bytes.withUnsafeBytes { p in
                    Glibc.write(fd.raw, p.baseAddress.map { $0 + written }, p.count - written)
                }
            }
            written += n
        }
        _ = try retryingEINTR("fsync(\(temporary))") { fsync(fd.raw) }
        fd.close()
        _ = try retryingEINTR("rename(\(temporary))") { rename(temporary, path) }
        let slash = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dir = Descriptor(adopting: try retryingEINTR("open(\(slash))") {
            open(slash.isEmpty ? "/" : slash, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        })
        _ = try retryingEINTR("fsync(\(slash))") { fsync(dir.raw) }
    }
}

/// What `lstat` says about a path: its owner and mode (type and permission bits).
public struct FileStatus: Sendable, Equatable {
    public let uid: uid_t
    public let mode: mode_t

    public init(uid: uid_t, mode: mode_t) {
        self.uid = uid
        self.mode = mode
    }
}

extension Files {
    /// The entry itself, never what a symbolic link points to.
    public static func status(_ path: String) throws(SystemError) -> FileStatus {
        var st = stat()
        _ = try retryingEINTR("lstat(\(path))") { lstat(path, &st) }
        return FileStatus(uid: st.st_uid, mode: st.st_mode)
    }
}
