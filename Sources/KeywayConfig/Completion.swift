/// Tab completion for the console: menus, commands, property names and print options.
public enum Completion {
    /// Candidates for the word being typed, given the console path and the words before it.
    public static func candidates(for line: String, path: [String]) -> [String] {
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let current = words.last ?? ""
        var menuPath = line.hasPrefix("/") ? [] : path
        var menu = MenuTree.resolve(menuPath)
        var verb: String?
        for w in words.dropLast() where !w.isEmpty {
            let word = w.hasPrefix("/") ? String(w.dropFirst()) : w
            if w.hasPrefix("/") && menuPath == path { menuPath = []; menu = MenuTree.root }
            if verb == nil, let child = menu?.child(word) { menu = child; menuPath.append(child.name) } else if verb == nil { verb = word }
        }
        let prefix = current.hasPrefix("/") ? String(current.dropFirst()) : current
        var options: [String]
        if let v = verb, ["add", "set"].contains(v), let kind = menu?.kind {
            options = Schema.properties(kind).map { $0.name + "=" }
        } else if verb == "print" {
            options = ["detail", "stats", "count-only", "show-sensitive", "where"]
        } else {
            options = (menu?.children.map(\.name) ?? []) + (menu?.kind != nil ? ["add", "set", "remove", "enable", "disable", "print", "export"] : ["export"])
        }
        return options.filter { $0.hasPrefix(prefix) }.map { (current.hasPrefix("/") ? "/" : "") + $0 }
    }

}
