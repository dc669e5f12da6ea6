// A deterministic JSON writer. Committed datasets and their manifest must come out byte for byte the same
// on every machine and Swift release, so key order, spacing and escaping are fixed here instead of being
// left to Foundation's JSONEncoder. Reading uses Foundation's JSONDecoder (Datasets.swift).

/// A JSON value with ordered object keys.
public indirect enum JSONValue: Equatable, Sendable {
    /// A string, escaped as JSON requires; non-ASCII is written as UTF-8.
    case string(String)
    /// An integer.
    case int(Int)
    /// A floating-point number; non-finite values are written as null.
    case double(Double)
    /// true or false.
    case bool(Bool)
    /// null.
    case null
    /// A list.
    case array([JSONValue])
    /// Keys are written in the order given.
    case object([(String, JSONValue)])

    /// Compact text on one line: no spaces, keys in their given order.
    public var compact: String {
        var out = ""
        write(into: &out, indent: nil, depth: 0)
        return out
    }

    /// Text indented by two spaces per level, for files people read (the manifest).
    public var pretty: String {
        var out = ""
        write(into: &out, indent: "  ", depth: 0)
        return out
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.compact == rhs.compact
    }

    private func write(into out: inout String, indent: String?, depth: Int) {
        switch self {
        case .string(let text): JSONValue.writeString(text, into: &out)
        case .int(let value): out += String(value)
        case .double(let value): out += value.isFinite ? "\(value)" : "null"
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            writeContainer(open: "[", close: "]", count: items.count, into: &out, indent: indent, depth: depth) { i, out in
                items[i].write(into: &out, indent: indent, depth: depth + 1)
            }
        case .object(let pairs):
            writeContainer(open: "{", close: "}", count: pairs.count, into: &out, indent: indent, depth: depth) { i, out in
                JSONValue.writeString(pairs[i].0, into: &out)
                out += indent == nil ? ":" : ": "
                pairs[i].1.write(into: &out, indent: indent, depth: depth + 1)
            }
        }
    }

    private func writeContainer(
        open: String, close: String, count: Int, into out: inout String, indent: String?, depth: Int,
        item: (Int, inout String) -> Void
    ) {
        out += open
        guard count > 0 else { return out += close }
        // Arrays of scalars stay on one line even when pretty-printing: digests and number lists read better.
        let scalarArray: Bool = {
            if case .array(let items) = self { return items.allSatisfy { !$0.isContainer } }
            return false
        }()
        for i in 0..<count {
            if i > 0 { out += "," }
            if let indent, !scalarArray {
                out += "\n" + String(repeating: indent, count: depth + 1)
            }
            item(i, &out)
        }
        if let indent, !scalarArray { out += "\n" + String(repeating: indent, count: depth) }
        out += close
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: return true
        default: return false
        }
    }

    private static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
