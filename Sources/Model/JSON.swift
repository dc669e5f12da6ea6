// Small JSON helpers shared by the safetensors, tokenizer and config readers and writers.

import Foundation

/// A JSON string literal for `s`.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// Where in the JSON a decoding error happened, outermost key first.
func codingPath(of error: Error) -> [CodingKey] {
    switch error as? DecodingError {
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        return context.codingPath
    case .keyNotFound(let key, let context):
        return context.codingPath + [key]
    default:
        return []
    }
}
