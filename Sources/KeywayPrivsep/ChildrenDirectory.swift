/// Where keywayd finds its children. Installed, keywayd is /usr/sbin/keywayd and the children are
/// in /usr/libexec/keyway (they are no commands of their own); built or copied, they sit beside it.
public enum ChildrenDirectory {
    public static func choose(keywaydDirectory: String, exists: (String) -> Bool) -> String {
        var parts = keywaydDirectory.split(separator: "/").map(String.init)
        if !parts.isEmpty { parts.removeLast() }
        let libexec = "/" + (parts + ["libexec", "keyway"]).joined(separator: "/")
        return exists(libexec + "/keyway-ike") ? libexec : keywaydDirectory
    }
}
