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
        let user: Any?
        do { user = try Yams.load(yaml: text) } catch {
            throw ConfigError(file: file, key: "", message: "is not valid YAML: \(error)")
        }
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
            let path = o[..<eq].split(separator: ".").map(String.init)
            let raw = String(o[o.index(after: eq)...])
            let value = (try? Yams.load(yaml: raw)).flatMap { $0 } ?? raw
            var nested: Any = value
            for key in path.reversed() { nested = [key: nested] }
            try overlay(nested as! [String: Any], onto: &tree, path: [], file: "--set")
        }
        let config = try decode(tree, file: file)
        do { try config.validate() } catch var e as ConfigError {
            e.file = file
            throw e
        }
        return config
    }

    /// The resolved config as YAML with snake_case keys, sorted.
    public static func yaml(_ config: TrainConfig) throws -> String {
        let data = try JSONEncoder().encode(config)
        let tree = try JSONSerialization.jsonObject(with: data)
        return try Yams.dump(object: snakeKeys(tree, path: []), sortKeys: true)
    }

    // MARK: - Tree operations

    static func defaultTree() throws -> [String: Any] {
        let data = try JSONEncoder().encode(TrainConfig())
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Lays `user` over `base`, converting snake_case keys and refusing unknown ones.
    static func overlay(_ user: [String: Any], onto base: inout [String: Any], path: [String], file: String) throws {
        let open = openMaps.contains(path.map(snake).joined(separator: "."))
        for (rawKey, value) in user {
            let key = open ? rawKey : camel(rawKey)
            let dotted = (path.map(snake) + [rawKey]).joined(separator: ".")
            guard open || base[key] != nil else {
                throw ConfigError(file: file, key: dotted, message: "is not a config key" + suggestion(for: rawKey, at: path, in: base))
            }
            if !open, let sub = base[key] as? [String: Any] {
                guard let userSub = value as? [String: Any] else {
                    throw ConfigError(file: file, key: dotted, message: "must be a mapping with keys \(sub.keys.map(snake).sorted().joined(separator: ", "))")
                }
                var merged = sub
                try overlay(userSub, onto: &merged, path: path + [key], file: file)
                base[key] = merged
            } else if let s = value as? String, base[key] is NSNumber, let d = Double(s) {
                base[key] = d  // YAML 1.1 reads 1e-4 (no dot) as a string
            } else {
                base[key] = value is NSNull ? base[key] : value
            }
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

    static func snakeKeys(_ tree: Any, path: [String]) -> Any {
        if let d = tree as? [String: Any] {
            let open = openMaps.contains(path.joined(separator: "."))
            var out: [String: Any] = [:]
            for (k, v) in d {
                let sk = open ? k : snake(k)
                out[sk] = snakeKeys(v, path: path + [sk])
            }
            return out
        }
        return tree
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
