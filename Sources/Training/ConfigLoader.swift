// Loading a TrainConfig from YAML, strictly: an unknown key is an error that suggests the nearest
// valid key, a wrong type names the key and the type expected, and `--set a.b=v` overrides any key.
//
// The defaults are the tree of TrainConfig() as JSON; the user's YAML tree (snake_case keys) is
// checked against it and laid over it, then decoded. So every key has a default, and the resolved
// config is that merged tree, written back as YAML.

import Foundation
import Tasks
import Yams

public enum ConfigLoader {
    /// Maps whose keys are names chosen by the user (reward functions), not config fields.
    static let openMaps: Set<String> = ["grpo.rewards.weights"]

    /// Reads `url`, applies `overrides` ("key.path=value", the value in YAML syntax), and validates.
    public static func load(_ url: URL, overrides: [String] = []) throws -> TrainConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError(file: url.path, key: "", message: "cannot be read: \(error.localizedDescription)")
        }
        return try parse(text, file: url.path, overrides: overrides)
    }

    /// Parses YAML text (see `load`).
    public static func parse(_ text: String, file: String = "config", overrides: [String] = []) throws -> TrainConfig {
        var tree = try defaultTree()
        let user = try loadYAML(text, file: file, key: "")
        if let user, !(user is NSNull) {
            guard let dict = user as? [String: Any] else {
                throw ConfigError(file: file, key: "", message: "must be a mapping of sections (model:, data:, sft:, grpo:, …)")
            }
            try overlay(dict, onto: &tree, path: [], file: file)
        }
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw ConfigError(file: "--set", key: o, message: "must look like section.key=value, e.g. grpo.beta=0.02")
            }
            let path = o[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else {
                throw ConfigError(file: "--set", key: o, message: "has an empty key name; it must look like section.key=value, e.g. grpo.beta=0.02")
            }
            let raw = String(o[o.index(after: eq)...])
            var value: Any = raw
            if let parsed = try? loadYAML(raw, file: "--set", key: String(o[..<eq])) { value = parsed }
            var nested: [String: Any] = [path[path.count - 1]: value]
            for key in path.dropLast().reversed() { nested = [key: nested] }
            try overlay(nested, onto: &tree, path: [], file: "--set")
        }
        let config = try decode(tree, file: file)
        do { try config.validate() } catch var e as ConfigError {
            e.file = file
            throw e
        }
        return config
    }

    /// Most values (scalars, lists, maps) a config's YAML may hold once its aliases are expanded: a
    /// real config has a few hundred, and a "billion laughs" alias bomb is refused before it grows.
    static let yamlValueBudget = 20_000

    /// `text` parsed as YAML into plain values, refusing alias expansion past `yamlValueBudget` and
    /// mapping keys that are not plain scalars (`? [a, b]`), each with a message naming the file.
    static func loadYAML(_ text: String, file: String, key: String) throws -> Any? {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ConfigError(file: file, key: key, message: "is not valid YAML: \(error)")
        }
        guard let node else { return nil }
        var budget = yamlValueBudget
        func walk(_ n: Node) throws {
            budget -= 1
            if budget < 0 {
                throw ConfigError(file: file, key: key, message: "expands to more than \(yamlValueBudget) values (YAML aliases referring to aliases?); a config needs a few hundred, so write the values out")
            }
            switch n {
            case .scalar, .alias: break
            case .sequence(let seq): for v in seq { try walk(v) }
            case .mapping(let map):
                for (k, v) in map {
                    guard case .scalar = k else {
                        throw ConfigError(file: file, key: key, message: "has a mapping key that is not a plain name (a YAML complex key such as `? [a, b]`); keys are names like grpo or learning_rate")
                    }
                    try walk(v)
                }
            }
        }
        try walk(node)
        return node.any
    }

    /// The resolved config as YAML with snake_case keys, sorted.
    public static func yaml(_ config: TrainConfig) throws -> String {
        try Yams.dump(object: plain(config), sortKeys: true)
    }

    /// A config value as plain YAML types, read through Mirror so that Bool stays Bool and a
    /// Float prints as written (0.1, not 0.10000000149).
    static func plain(_ value: Any) -> Any {
        switch value {
        case let b as Bool: return b
        case let i as Int: return i
        case let u as UInt64: return Int(truncatingIfNeeded: u)
        case let f as Float: return Double("\(f)")!
        case let d as Double: return d
        case let s as String: return s
        case let choice as any ConfigChoice: return choice.rawValue
        case let a as [Any]: return a.map(plain)
        case let m as [String: Double]: return m
        default:
            var out: [String: Any] = [:]
            for child in Mirror(reflecting: value).children {
                guard let label = child.label else { continue }
                out[snake(label)] = plain(child.value)
            }
            return out
        }
    }

    // MARK: - Tree operations

    static func defaultTree() throws -> [String: Any] {
        let data = try JSONEncoder().encode(TrainConfig())
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Lays `user` over `base`, converting snake_case keys and refusing unknown ones. `schema` is
    /// the default value at this level, whose Swift types say what each key accepts.
    static func overlay(_ user: [String: Any], onto base: inout [String: Any], path: [String], file: String,
                        schema: Any = TrainConfig()) throws {
        let open = openMaps.contains(path.map(snake).joined(separator: "."))
        if open {  // a user map replaces the default one whole
            base = user
            return
        }
        let fields = Dictionary(Mirror(reflecting: schema).children.compactMap { c in c.label.map { ($0, c.value) } }) { a, _ in a }
        for (rawKey, value) in user {
            let key = camel(rawKey)
            let dotted = (path.map(snake) + [rawKey]).joined(separator: ".")
            guard let field = fields[key], base[key] != nil else {
                throw ConfigError(file: file, key: dotted, message: "is not a config key" + suggestion(for: rawKey, at: path, in: base))
            }
            if let sub = base[key] as? [String: Any] {
                guard let userSub = value as? [String: Any] else {
                    throw ConfigError(file: file, key: dotted, message: "must be a mapping with keys \(sub.keys.map(snake).sorted().joined(separator: ", "))")
                }
                var merged = sub
                try overlay(userSub, onto: &merged, path: path + [key], file: file, schema: field)
                base[key] = merged
            } else if !(value is NSNull) {
                base[key] = try typed(value, like: field, key: dotted, file: file)
            }
        }
    }

    /// `value` (as Yams read it) converted to the JSON form of the field's Swift type, or an error
    /// naming the key and the type expected.
    static func typed(_ value: Any, like field: Any, key: String, file: String) throws -> Any {
        func fail(_ what: String) -> ConfigError {
            ConfigError(file: file, key: key, message: "must be \(what), not '\(value)'")
        }
        func number(_ v: Any) -> Double? {
            switch v {
            case let b as Bool: _ = b; return nil
            case let i as Int: return Double(i)
            case let d as Double: return d
            case let s as String: return Double(s)  // YAML 1.1 reads 1e-4 (no dot) as a string
            default: return nil
            }
        }
        func integer(_ v: Any) -> Int? {
            if v is Bool { return nil }
            if let i = v as? Int { return i }
            if let d = number(v), d == d.rounded(), abs(d) < 9e15 { return Int(d) }
            return nil
        }
        switch field {
        case is Bool:
            guard let b = value as? Bool else { throw fail("true or false") }
            return b
        case is Int, is UInt64:
            guard let i = integer(value), !(field is UInt64 && i < 0) else { throw fail("an integer") }
            return i
        case is Float, is Double:
            guard let d = number(value), d.isFinite else { throw fail("a number") }
            return d
        case let choice as any ConfigChoice:
            let names = type(of: choice).spellings
            guard let s = value as? String, names.contains(s) else {
                throw ConfigError(file: file, key: key, message: "is '\(value)'; use \(type(of: choice).spellingList)")
            }
            return s
        case is String:
            guard let s = value as? String else { throw fail("a string (quote it)") }
            return s
        case _ where type(of: field) == [String].self:  // exact types: an empty [Int] also casts to [String]
            guard let a = value as? [Any], let s = a.map({ $0 as? String }) as? [String] else { throw fail("a list of strings") }
            return s
        case _ where type(of: field) == [Int].self:
            guard let a = value as? [Any], let s = a.map(integer) as? [Int] else { throw fail("a list of integers") }
            return s
        case _ where type(of: field) == [Double].self:
            guard let a = value as? [Any], let s = a.map(number) as? [Double] else { throw fail("a list of numbers") }
            return s
        default:
            return value
        }
    }

    static func suggestion(for key: String, at path: [String], in siblings: [String: Any]) -> String {
        if let near = Spelling.nearest(key, in: siblings.keys.map(snake)) {
            return "; did you mean '\((path.map(snake) + [near]).joined(separator: "."))'?"
        }
        // The key may belong to another section: grpo.learning_rat → sft? Search every path.
        let all = allPaths(try! defaultTree(), prefix: [])
        if let hit = all.first(where: { $0.last == key }) {
            return "; '\(key)' is a key of '\(hit.dropLast().joined(separator: "."))'"
        }
        return siblings.isEmpty ? "" : "; valid keys here: \(siblings.keys.map(snake).sorted().joined(separator: ", "))"
    }

    static func allPaths(_ tree: [String: Any], prefix: [String]) -> [[String]] {
        tree.flatMap { k, v -> [[String]] in
            let p = prefix + [snake(k)]
            if let d = v as? [String: Any] { return [p] + allPaths(d, prefix: p) }
            return [p]
        }
    }

    static func decode(_ tree: [String: Any], file: String) throws -> TrainConfig {
        let data = try JSONSerialization.data(withJSONObject: tree)
        do {
            return try JSONDecoder().decode(TrainConfig.self, from: data)
        } catch let DecodingError.typeMismatch(type, ctx) {
            throw ConfigError(file: file, key: dotted(ctx.codingPath), message: "must be \(describe(type))")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw ConfigError(file: file, key: dotted(ctx.codingPath), message: "has a value out of range: \(ctx.debugDescription)")
        } catch let DecodingError.valueNotFound(type, ctx) {
            throw ConfigError(file: file, key: dotted(ctx.codingPath), message: "must be \(describe(type)), not null")
        }
    }

    static func dotted(_ path: [CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? snake($0.stringValue) }.joined(separator: ".")
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [Any].Type: return "a list"
        default: return "a \(type)"
        }
    }

    /// "maxCompletionLength" → "max_completion_length".
    static func snake(_ s: String) -> String {
        var out = ""
        for c in s {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// "max_completion_length" → "maxCompletionLength".
    static func camel(_ s: String) -> String {
        let parts = s.split(separator: "_", omittingEmptySubsequences: false)
        return parts.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
    }
}
