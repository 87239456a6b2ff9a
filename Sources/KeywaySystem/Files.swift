import Glibc
import SystemPackage

public enum Files {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Creates the directory if needed and forces its mode and owner.
    /// Missing parents are created root-owned, mode 0755.
    public static func ensureDirectory(_ path: String, mode: mode_t, uid: uid_t = 0, gid: gid_t = 0) throws(SystemError) {
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
