import Foundation

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
        out += JSONText.string(text)
    }
}

/// JSON text pieces written without Foundation's encoder: fixed escaping, numbers that read back bit
/// for bit, and the lenient readers of JSONL files.
public enum JSONText {
    /// Swift's `description` of a Double is the shortest text that parses back to the same value, on every
    /// platform; non-finite values have no JSON spelling and become null.
    public static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }

    /// A JSON string literal; non-ASCII is written as UTF-8, control characters as \uXXXX.
    public static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// An object of already-encoded values, keys in the order given.
    public static func object(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// Parses one line as a JSON object, or nil when it is not one.
    public static func parseObject(_ line: Substring) -> [String: Any]? {
        guard let data = line.data(using: .utf8),
            let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else { return nil }
        return value as? [String: Any]
    }

    /// A step number: an integer in 0...10^15 (larger ones would overflow the charts' arithmetic), else nil.
    public static func step(_ value: Any?) -> Int? {
        guard let n = value as? NSNumber else { return nil }
        let d = n.doubleValue
        return d >= 0 && d <= 1e15 && d == d.rounded() ? Int(d) : nil
    }

    /// How Foundation's encoder writes NaN and infinities (JSON has no spelling for them), so that JSON
    /// output never fails on one; `nonFiniteDecoding` reads them back.
    public static let nonFiniteEncoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    public static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")

    /// A number from a parsed JSON value; null and non-numbers are NaN.
    public static func double(_ value: Any?) -> Double {
        (value as? NSNumber)?.doubleValue ?? .nan
    }
}

/// Where in the JSON a decoding error happened, outermost key first (for messages that name the key).
public func codingPath(of error: Error) -> [CodingKey] {
    switch error as? DecodingError {
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        return context.codingPath
    case .keyNotFound(let key, let context):
        return context.codingPath + [key]
    default:
        return []
    }
}
